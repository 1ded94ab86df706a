"""Unit tests of the post-mortem renderer and metrics (plugin_utils/render/postmortem.py)."""
import datetime
import re

import pytest
from markdown_it import MarkdownIt

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files
from ansible_collections.sre.incident_response.plugins.plugin_utils.render.postmortem import (
    SECTIONS,
    IncidentRecord,
    PostmortemRenderer,
    compute_metrics,
    is_significant,
    md_text,
    postmortem_filename,
    render_to_dir,
)
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor

ACTION_ITEM_RE = re.compile(r'^.+ - Owner: @[\w.-]+ - Due: \d{4}-\d{2}-\d{2}$')
TIMELINE_RE = re.compile(r'^\d{2}:\d{2} - .+')


def parse_sections(text):
    """Structure of a post-mortem: (title, {section: [(block type, text)]}). Fails on raw HTML."""
    tokens = MarkdownIt('commonmark').parse(text)
    assert not [t for t in tokens if t.type == 'html_block'], 'raw HTML block in the Markdown'
    for token in tokens:
        for child in token.children or []:
            assert child.type != 'html_inline', 'raw inline HTML: %r' % token.content
    title, sections, current, in_item = None, {}, None, 0
    for index, token in enumerate(tokens):
        if token.type == 'heading_open':
            content = tokens[index + 1].content
            if token.tag == 'h1':
                assert title is None, 'more than one h1'
                title = content
            else:
                assert token.tag == 'h2', 'unexpected heading level %s' % token.tag
                current = content
                assert current not in sections, 'duplicate section %s' % current
                sections[current] = []
        elif token.type == 'list_item_open':
            in_item += 1
        elif token.type == 'list_item_close':
            in_item -= 1
        elif token.type == 'inline' and current and tokens[index - 1].type != 'heading_open':
            sections[current].append(('item' if in_item else 'paragraph', token.content))
        elif token.type == 'fence' and current:
            sections[current].append(('code', token.content))
    return title, sections


def ts(minutes, base=datetime.datetime(2026, 11, 27, 14, 30, tzinfo=datetime.timezone.utc)):
    return files.isoformat(base + datetime.timedelta(minutes=minutes))


def sample_record():
    incident = {'id': 'INC-20261127-1430-ab12', 'title': 'Orders fail after deploy', 'severity': 'SEV2',
                'started_at': ts(0), 'impact': 'Checkout returns 500 for most users', 'commander': 'On-call IC'}
    events = [
        files.make_event('INC-20261127-1430-ab12', 'play', 'Play started: Triage', data={'phase': 'start', 'run': 'r1',
                                                                                         'first_in_run': True}, ts=ts(1)),
        files.make_event('INC-20261127-1430-ab12', 'declared', 'Incident declared', ts=ts(3)),
        files.make_event('INC-20261127-1430-ab12', 'severity', 'Severity SEV2', data={'severity': 'SEV2'}, ts=ts(3)),
        files.make_event('INC-20261127-1430-ab12', 'task', 'Check: ok', host='app-backend',
                         data={'status': 'ok', 'run': 'r1'}, ts=ts(4)),
        files.make_event('INC-20261127-1430-ab12', 'finding', 'app.errors: 120 errors on /api/orders', host='app-backend',
                         data={'check': 'app.errors', 'status': 'crit'}, ts=ts(5)),
        files.make_event('INC-20261127-1430-ab12', 'finding', 'redis ok', host='app-redis',
                         data={'check': 'redis.memory', 'status': 'ok'}, ts=ts(5)),
        files.make_event('INC-20261127-1430-ab12', 'comms', 'INCIDENT DECLARED posted', ts=ts(6)),
        files.make_event('INC-20261127-1430-ab12', 'diagnosis', 'error_spike_after_deploy first', ts=ts(7)),
        files.make_event('INC-20261127-1430-ab12', 'approval', 'rollback approved by alice', ts=ts(10)),
        files.make_event('INC-20261127-1430-ab12', 'action', 'rollback applied', data={'status': 'failed'}, ts=ts(11)),
        files.make_event('INC-20261127-1430-ab12', 'action', 'rollback applied again', data={'status': 'ok'}, ts=ts(12)),
        files.make_event('INC-20261127-1430-ab12', 'verify', 'health ok', data={'ok': True}, ts=ts(14)),
        files.make_event('INC-20261127-1430-ab12', 'comms', 'INCIDENT UPDATE posted', ts=ts(50)),
        files.make_event('INC-20261127-1430-ab12', 'resolved', 'Incident resolved', ts=ts(75)),
    ]
    findings = [
        {'check': 'app.errors', 'host': 'app-backend', 'status': 'crit', 'summary': '120 errors', 'ts': ts(5)},
        {'check': 'deploy.recent', 'host': 'app-backend', 'status': 'warn', 'summary': 'deployed 1.1.0 at 14:28'},
        {'check': 'redis.memory', 'host': 'app-redis', 'status': 'ok', 'summary': 'fine'},
    ]
    diagnosis = {'hypotheses': [{'pattern': 'error_spike_after_deploy', 'likely_cause': 'Bug in the new code',
                                 'confidence': 0.9, 'evidence': ['app-backend/app.errors', 'app-backend/deploy.recent'],
                                 'first_action': 'ansible-playbook playbooks/remediate.yml -e remediation_action=rollback'}]}
    return IncidentRecord(incident, list(reversed(events)), findings, diagnosis)


def test_metrics_from_the_timeline():
    metrics = compute_metrics(sample_record())
    assert metrics['started_at'] == ts(0)
    assert metrics['time_to_acknowledge'] == 180
    assert metrics['time_to_mitigate'] == 14 * 60  # the verify event, not the failed action
    assert metrics['time_to_resolve'] == 75 * 60 and metrics['duration'] == 75 * 60
    assert metrics['acknowledge_met'] is True  # 3 min < 15 min for SEV2
    assert metrics['max_update_gap'] == 44 * 60 and metrics['comms_count'] == 2
    assert metrics['runs'] == 1


def test_metrics_unresolved_and_explicitly_unknown_ack():
    record = sample_record()
    record.events = [e for e in record.events if e['kind'] != 'resolved']
    record.incident['acknowledged_at'] = None
    metrics = compute_metrics(record)
    assert metrics['resolved'] is False and metrics['time_to_resolve'] is None
    assert metrics['time_to_acknowledge'] is None
    assert metrics['duration'] == 50 * 60  # up to the last event


def test_significant_events():
    assert is_significant({'kind': 'finding', 'data': {'status': 'crit'}})
    assert not is_significant({'kind': 'finding', 'data': {'status': 'ok'}})
    assert is_significant({'kind': 'task', 'data': {'status': 'failed'}})
    assert not is_significant({'kind': 'task', 'data': {'status': 'failed', 'ignored': True}})
    assert not is_significant({'kind': 'task', 'data': {'status': 'changed'}})
    assert is_significant({'kind': 'play', 'data': {'phase': 'start', 'first_in_run': True}})
    assert not is_significant({'kind': 'play', 'data': {'phase': 'end'}})
    assert is_significant({'kind': 'play', 'data': {'phase': 'end', 'interrupted': True}})
    for kind in ('declared', 'approval', 'action', 'verify', 'comms', 'note', 'resolved', 'plan'):
        assert is_significant({'kind': kind, 'data': {}})


def test_render_has_every_section_filled_and_parses():
    text = PostmortemRenderer().render(sample_record(), final=True)
    title, sections = parse_sections(text)
    assert title == 'Post-mortem: Orders fail after deploy'
    assert list(sections) == list(SECTIONS)
    for name, blocks in sections.items():
        assert blocks, 'section %s is empty' % name
    summary = dict(b[1].split(':** ', 1) for b in sections['Summary'] if b[0] == 'item')
    assert summary['**Date'] == '2026-11-27'
    assert summary['**Severity'].startswith('SEV2 (P2)')
    assert summary['**Duration'] == '1 h 15 min'
    assert summary['**Impact'] == 'Checkout returns 500 for most users'
    timeline = [b[1] for b in sections['Timeline'] if b[0] == 'item']
    assert all(TIMELINE_RE.match(line) for line in timeline), timeline
    assert timeline[0].startswith('14:31 - Run: Play started')
    assert timeline[-1] == '15:45 - Incident resolved'
    assert not any('Check: ok' in line or 'redis ok' in line for line in timeline)  # not significant
    assert any('app.errors' in line for line in timeline)
    root = ' '.join(b[1] for b in sections['Root cause'])
    assert 'Suspected' in root and 'Bug in the new code' in root
    whys = [b for b in sections['Five whys'] if b[0] == 'item']
    assert len(whys) == 5 and all('to fill' in b[1] for b in whys)
    assert any('deployment fell inside the incident window' in b[1] for b in sections['Contributing factors'])
    assert any('within the SEV2 response target' in b[1] for b in sections['What went well'])
    assert any('above the SEV2 cadence' in b[1] for b in sections['What could be improved'])
    response = ' '.join(b[1] for b in sections['Response times'])
    assert 'Time to acknowledge: 3 min (target for SEV2: &lt; 15 min) - met' in response or \
        'Time to acknowledge: 3 min (target for SEV2: < 15 min) - met' in response
    assert 'Time to mitigate: 14 min' in response and 'Time to resolve: 1 h 15 min' in response
    items = [b[1] for b in sections['Action items']]
    assert all(ACTION_ITEM_RE.match(i) for i in items), items
    assert any('app.errors' in i and i.startswith('Proposed') for i in items)  # crit finding => proposed item
    assert any('Due: 2026-12-04' in i for i in items)  # SEV2: 7 days after resolution
    requirement = sections['Post-mortem requirement'][0][1]
    assert 'within 48 hours' in requirement and '2026-11-29 15:45 UTC' in requirement


def test_render_uses_given_inputs():
    inputs = {'root_cause': 'Missing async context manager in the new endpoint',
              'five_whys': ['Users saw 500s', 'DB timed out', 'Pool exhausted', 'Connections leaked', 'No context manager'],
              'contributing_factors': ['No alert on pool usage'],
              'went_well': ['Rollback was quick'], 'could_be_improved': ['Canary deploys'],
              'action_items': [{'measure': 'Add a pool usage alert', 'owner': 'dba', 'due': '2026-12-01'},
                               'Add a regression test for app.errors'],
              'default_owner': '@backend-oncall'}
    text = PostmortemRenderer().render(sample_record(), inputs=inputs, final=True)
    _title, sections = parse_sections(text)
    assert sections['Root cause'] == [('paragraph', 'Missing async context manager in the new endpoint')]
    assert [b[1] for b in sections['Five whys']] == inputs['five_whys']
    assert sections['Contributing factors'] == [('item', 'No alert on pool usage')]
    assert ('item', 'Rollback was quick') in sections['What went well']
    items = [b[1] for b in sections['Action items']]
    assert items[0] == 'Add a pool usage alert - Owner: @dba - Due: 2026-12-01'
    assert items[1] == 'Add a regression test for app.errors - Owner: @backend-oncall - Due: 2026-12-04'
    assert not any(i.startswith('Proposed') and 'app.errors' in i for i in items)  # covered by a given item


@pytest.mark.parametrize('sev,needle', [
    ('SEV1', 'required within 48 hours'), ('SEV2', 'required within 48 hours'),
    ('SEV3', 'lightweight review'), ('SEV4', 'no post-mortem is required'),
])
def test_requirement_note_by_severity(sev, needle):
    record = sample_record()
    record.incident['severity'] = sev
    record.events = [e for e in record.events if e['kind'] != 'severity']
    _title, sections = parse_sections(PostmortemRenderer().render(record))
    assert needle in sections['Post-mortem requirement'][0][1]


def test_draft_of_an_unresolved_incident_says_so():
    record = sample_record()
    record.events = [e for e in record.events if e['kind'] != 'resolved']
    text = PostmortemRenderer().render(record, final=False)
    assert 'Status: Draft' in text and 'so far' in text and 'not resolved yet' in text


def test_markdown_escaping_and_redaction():
    record = sample_record()
    record.events.append(files.make_event('INC-1', 'note', '<script>alert(1)</script> *bold* [link](x) `tick`',
                                          ts=ts(20)))
    record.events.sort(key=lambda e: e['ts'])
    record.incident['impact'] = 'password=hunter2hunter and lab-pg-S3cret-4f9a leaked'
    text = PostmortemRenderer(redactor=Redactor(literals=['lab-pg-S3cret-4f9a'])).render(record)
    parse_sections(text)  # no raw HTML
    assert 'hunter2hunter' not in text and 'lab-pg-S3cret-4f9a' not in text
    html = MarkdownIt('commonmark').render(text)
    assert '<script>' not in html and '<em>bold</em>' not in html and '<a href' not in html
    assert md_text('a\nb   c') == 'a b c'


BAD_MD = '# heading <img src=x onerror=alert(1)> [x](https://evil.example/) | cell | `tick`\n\n> quote\n- item'


def test_outside_text_in_every_place_stays_one_line_of_text():
    """Root cause at the start of its line, the diagnosis pattern in a code span, a due date, a log line in the
    timeline: none can start a heading, a quote, a list, a table, HTML or a link."""
    record = sample_record()
    record.diagnosis[0]['pattern'] = 'x`\n\n# injected heading\n\n`y'
    record.diagnosis[0]['confidence'] = BAD_MD
    record.events.append(files.make_event('INC-1', 'note', BAD_MD, ts=ts(20)))
    record.events.sort(key=lambda e: e['ts'])
    inputs = {'action_items': [{'measure': BAD_MD, 'owner': BAD_MD, 'due': '2026-12-01\n\n# due heading'}],
              'five_whys': [BAD_MD], 'went_well': [BAD_MD], 'contributing_factors': [BAD_MD], 'commander': BAD_MD}
    for given in ({'root_cause': BAD_MD}, {}):
        text = PostmortemRenderer().render(record, inputs=dict(inputs, **given))
        title, sections = parse_sections(text)
        assert list(sections) == list(SECTIONS)  # no heading added
        tokens = MarkdownIt('commonmark').enable('table').parse(text)
        kinds = {t.type for t in tokens} | {c.type for t in tokens for c in (t.children or [])}
        assert not kinds & {'blockquote_open', 'table_open', 'link_open', 'image', 'html_inline', 'html_block'}, kinds
        assert 'injected heading' in text and 'due heading' in text


def test_secrets_are_redacted_before_they_are_escaped_or_cut():
    secret = 'Zq9*<S3cret>_k'
    record = sample_record()
    record.incident['impact'] = 'leaked %s here' % secret
    record.events.append(files.make_event('INC-1', 'note', 'x' * 233 + 'Zq9S3cretTail', ts=ts(20)))
    record.events.sort(key=lambda e: e['ts'])
    text = PostmortemRenderer(redactor=Redactor(literals=[secret, 'Zq9S3cretTail'])).render(record)
    plain = MarkdownIt('commonmark').render(text)
    assert 'S3cret' not in plain and 'Zq9' not in plain, [ln for ln in text.splitlines() if 'Zq9' in ln]
    assert 'leaked ******** here' in plain


def test_render_to_dir_is_idempotent_and_named_by_start_date(tmp_path):
    record = sample_record()
    dest, changed, dummy = render_to_dir(str(tmp_path), record, final=True)
    assert dest.endswith('postmortem-2026-11-27.md') and changed
    dest2, changed2, dummy = render_to_dir(str(tmp_path), record, final=True)
    assert dest2 == dest and not changed2
    assert postmortem_filename('2024-01-15T23:59:00+00:00') == 'postmortem-2024-01-15.md'
    assert postmortem_filename('2024-01-15T23:30:00-02:00') == 'postmortem-2024-01-16.md'  # UTC date


def test_load_from_an_incident_directory(tmp_path):
    path = tmp_path / 'INC-L'
    record = sample_record()
    files.write_json_atomic(str(path / 'incident.json'), record.incident)
    files.append_jsonl(str(path / 'timeline.jsonl'), record.events)
    files.write_json_atomic(str(path / 'findings.json'), record.findings)
    files.write_json_atomic(str(path / 'diagnosis.json'), [{'pattern': 'backend_down', 'likely_cause': 'crash'}])
    with open(str(path / 'timeline.jsonl'), 'a') as handle:
        handle.write('{"torn": ')  # a crash mid-line is ignored
    loaded = IncidentRecord.load(str(path))
    assert loaded.incident_id == 'INC-20261127-1430-ab12'
    assert len(loaded.events) == len(record.events)
    assert loaded.diagnosis[0]['pattern'] == 'backend_down'
    assert loaded.severity == 'SEV2'
    assert [f['check'] for f in loaded.crit_findings()] == ['app.errors']


def test_runs_after_the_resolution_do_not_change_the_final_document():
    record = sample_record()
    before = PostmortemRenderer().render(record, final=True)
    record.events.append(files.make_event('INC-20261127-1430-ab12', 'play', 'Play started: Resolve the incident',
                                          data={'phase': 'start', 'run': 'r9', 'first_in_run': True}, ts=ts(90)))
    record.events.append(files.make_event('INC-20261127-1430-ab12', 'comms', 'late message', ts=ts(95)))
    assert PostmortemRenderer().render(record, final=True) == before


def test_a_run_that_never_ended_is_flagged():
    record = sample_record()
    record.events.append(files.make_event('INC-20261127-1430-ab12', 'play', 'Play started: Triage',
                                          data={'phase': 'start', 'run': 'r2', 'first_in_run': True}, ts=ts(20)))
    record.events.append(files.make_event('INC-20261127-1430-ab12', 'play', 'Play ended: Triage',
                                          data={'phase': 'end', 'run': 'r2', 'stats': {}}, ts=ts(21)))
    record.events.append(files.make_event('INC-20261127-1430-ab12', 'play', 'Play started: Resolve',
                                          data={'phase': 'start', 'run': 'r3', 'first_in_run': True}, ts=ts(74)))
    record.events.sort(key=lambda e: e['ts'])
    _title, sections = parse_sections(PostmortemRenderer().render(record, final=True))
    lines = [b[1] for b in sections['Timeline']]
    flagged = [line for line in lines if 'did not finish' in line]
    assert flagged == ['14:31 - Run: Play started: Triage - the run did not finish (killed or crashed)']  # r1 only


def task_events_of_both_forms():
    """Task events as they are on disk: an old run (one event per host result), a compact run (one event per task,
    a detailed event per failure), and a detailed failure whose compact event a SIGKILL never let be written."""
    from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.timeline import compact_task_event, task_event
    iid = 'INC-20261127-1430-ab12'
    old = [task_event(iid, 'app-backend', 'Old check', 'ok', duration=1.0, run_id='old', ts=ts(20)),
           task_event(iid, 'app-db', 'Old check', 'failed', duration=2.0, result={'msg': 'old boom'}, run_id='old', ts=ts(20)),
           task_event(iid, 'app-redis', 'Old check', 'failed', result={'msg': 'ignored'}, run_id='old',
                      ignore_errors=True, ts=ts(20))]
    new = [task_event(iid, 'app-db', 'New probe', 'unreachable', duration=3.0, result={'msg': 'ssh timeout'},
                      run_id='new', task_id='t1', detail=True, ts=ts(21)),
           compact_task_event(iid, {'task': 'New probe', 'run': 'new', 'task_id': 't1'},
                              {'app-backend': {'status': 'changed', 'duration_s': 1.5},
                               'app-db': {'status': 'unreachable', 'duration_s': 3.0}}, ts=ts(21)),
           task_event(iid, 'app-redis', 'Killed step', 'failed', result={'msg': 'killed run'}, run_id='killed',
                      task_id='t9', detail=True, ts=ts(22))]
    return old + new


def test_task_events_of_both_forms_read_the_same():
    from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.timeline import task_results
    events = task_events_of_both_forms()
    assert [(r['task'], r['host'], r['status'], r.get('msg'), r.get('ignored')) for r in task_results(events)] == [
        ('Old check', 'app-backend', 'ok', None, None), ('Old check', 'app-db', 'failed', 'old boom', None),
        ('Old check', 'app-redis', 'failed', 'ignored', True),
        ('New probe', 'app-backend', 'changed', None, None), ('New probe', 'app-db', 'unreachable', 'ssh timeout', None),
        ('Killed step', 'app-redis', 'failed', 'killed run', None)]
    record = sample_record()
    record.events = sorted(record.events + events, key=lambda e: e['ts'])
    metrics = compute_metrics(record)
    assert metrics['failed_tasks'] == 3  # old failure, new unreachable host, the killed run's failure; not the ignored one
    text = PostmortemRenderer().render(record, final=True)
    _title, sections = parse_sections(text)
    failed = [b[1] for b in sections['Timeline'] if 'Task failed' in b[1]]
    assert len(failed) == 3, failed
    assert any('old boom' in line and '(app-db)' in line for line in failed)
    assert any('ssh timeout' in line and '(app-db)' in line for line in failed)
    assert not any('New probe: ok' in b[1] for b in sections['Timeline'])  # the compact event is no timeline entry
    assert '3 automation steps failed or hosts were unreachable' in text
