"""Done-when of the timeline issue, against the real lab.

Triage a faulty lab, SIGKILL a second run mid-way, resolve: the timeline is valid JSON Lines with the
events of every run in order, the post-mortem has every section filled with durations that match the
timeline, and no planted secret (lab passwords, a webhook token) is anywhere in the incident directory.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files
from ansible_collections.sre.incident_response.plugins.module_utils.timefmt import duration as fmt_duration
from ansible_collections.sre.incident_response.plugins.plugin_utils.render.postmortem import SECTIONS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'unit'))
from test_postmortem import ACTION_ITEM_RE, TIMELINE_RE, parse_sections  # noqa: E402  (the Markdown structure checker)

VENV_BIN = os.path.join(ROOT, '.venv', 'bin')
PLANTED_TOKEN = 'PlantedHookTok3n77'
PLANTED_HOOK = 'http://127.0.0.1:9/services/TPL4NT01/BPL4NT02/' + PLANTED_TOKEN


def env():
    out = dict(os.environ)
    out['PATH'] = VENV_BIN + os.pathsep + out.get('PATH', '')
    out['ANSIBLE_CONFIG'] = os.path.join(ROOT, 'ansible.cfg')
    out['ANSIBLE_NOCOLOR'] = '1'
    return out


def command(playbook, extra_vars):
    return [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', 'inventory/lab', playbook, '-e', json.dumps(extra_vars)]


def runs_in_file_order(events):
    """The callback's run ids in the order of the file, one entry per contiguous block."""
    order = []
    for event in events:
        run = (event.get('data') or {}).get('run')
        if run and (not order or order[-1] != run):
            order.append(run)
    return order


def test_triage_killed_run_and_resolve(lab, fault, incident):
    playbook = 'playbooks/triage.yml'
    extra = dict(incident['vars'], severity='SEV2', title='Orders failing', impact='Checkout returns errors',
                 comms_slack_webhook_url_var='planted_hook', planted_hook=PLANTED_HOOK)
    path = incident['path']
    timeline = os.path.join(path, 'timeline.jsonl')
    with fault('backend_down'):
        started = time.time()
        first = subprocess.run(command(playbook, extra), cwd=ROOT, env=env(), capture_output=True, text=True,
                               timeout=300, check=False)
        first_wall = time.time() - started
        assert first.returncode in (0, 2), first.stdout[-4000:] + first.stderr[-2000:]
        after_first = files.read_jsonl(timeline)
        assert any(e['kind'] == 'declared' for e in after_first)
        drafts = [n for n in os.listdir(path) if n.startswith('postmortem-')]
        assert len(drafts) == 1 and 'Status: Draft' in open(os.path.join(path, drafts[0])).read()
        run1 = runs_in_file_order(after_first)
        assert len(run1) == 1

        # second run, killed with SIGKILL once it has recorded a few task results
        proc = subprocess.Popen(command(playbook, extra), cwd=ROOT, env=env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.time() + 120
            while time.time() < deadline and proc.poll() is None:
                new = [e for e in files.read_jsonl(timeline)[len(after_first):] if e['kind'] == 'task']
                if len(new) >= 3:
                    break
                time.sleep(0.1)
            assert proc.poll() is None, 'the second run ended before it could be killed'
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        after_kill = files.read_jsonl(timeline)
        assert len(after_kill) > len(after_first)

    resolve = subprocess.run(command('playbooks/resolve.yml', dict(incident['vars'], resolved_by='alice')),
                             cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300, check=False)
    assert resolve.returncode == 0, resolve.stdout[-4000:] + resolve.stderr[-2000:]

    # a valid JSONL timeline with the events of all runs, in order
    with open(timeline, encoding='utf-8') as handle:
        lines = handle.read().splitlines()
    events = [json.loads(line) for line in lines]  # every line parses, including the killed run's
    assert {e['incident_id'] for e in events} == {incident['id']}
    assert events[:len(after_kill)] == after_kill  # appended, never rewritten
    order = runs_in_file_order(events)
    assert len(order) == 3 and len(set(order)) == 3, order  # triage, killed triage, resolve: one block each
    assert order[0] == run1[0]
    bounds = []
    for run in order:
        stamps = [files.parse_ts(e['ts']) for e in events if (e.get('data') or {}).get('run') == run]
        bounds.append((min(stamps), max(stamps)))
    assert bounds[0][1] <= bounds[1][0] and bounds[1][1] <= bounds[2][0]
    killed = [e for e in events if (e.get('data') or {}).get('run') == order[1]]
    assert not any(e['kind'] == 'play' and e['data'].get('phase') == 'end' and e['data'].get('stats') for e in killed)
    resolved = [e for e in events if e['kind'] == 'resolved']
    assert len(resolved) == 1
    incident_json = files.read_json(os.path.join(path, 'incident.json'))
    assert incident_json['status'] == 'Resolved' and incident_json['resolved_at'] == resolved[0]['ts']

    # the post-mortem: every section filled, durations that match the timeline
    started_at = incident_json['started_at']
    name = 'postmortem-%s.md' % files.parse_ts(started_at).strftime('%Y-%m-%d')
    text = open(os.path.join(path, name), encoding='utf-8').read()
    assert text.startswith('# Post-mortem: Orders failing') and 'Status: Final' in text
    _title, sections = parse_sections(text)
    assert list(sections) == list(SECTIONS)
    for section, blocks in sections.items():
        assert blocks and all(b[1].strip() for b in blocks), 'section %s is empty' % section
    duration = (files.parse_ts(resolved[0]['ts']) - files.parse_ts(started_at)).total_seconds()
    declared = [e for e in events if e['kind'] == 'declared'][0]
    ack = (files.parse_ts(declared['data'].get('acknowledged_at') or declared['ts'])
           - files.parse_ts(started_at)).total_seconds()
    summary = ' | '.join(b[1] for b in sections['Summary'])
    assert '**Duration:** %s' % fmt_duration(duration) in summary
    assert '**Severity:** SEV' in summary and '**Impact:** Checkout returns errors' in summary
    response = ' '.join(b[1] for b in sections['Response times'])
    assert 'Time to resolve: %s' % fmt_duration(duration) in response
    assert 'Time to acknowledge: %s' % fmt_duration(ack) in response
    timeline_items = [b[1] for b in sections['Timeline'] if b[0] == 'item']
    assert all(TIMELINE_RE.match(i) for i in timeline_items)
    assert timeline_items[-1].startswith('%s - Incident resolved' % files.parse_ts(resolved[0]['ts']).strftime('%H:%M'))
    assert any('declared' in i.lower() for i in timeline_items)
    assert len([i for i in timeline_items if 'the run did not finish' in i]) == 1  # the killed run
    items = [b[1] for b in sections['Action items']]
    assert all(ACTION_ITEM_RE.match(i) for i in items)
    crit = [e for e in events if e['kind'] == 'finding' and (e.get('data') or {}).get('status') == 'crit']
    assert crit, 'the faulty lab produced no crit finding'
    for event in crit:
        assert any(event['data']['check'] in i for i in items), 'no action item for %s' % event['data']['check']
    if os.path.exists(os.path.join(path, 'diagnosis.json')):
        assert 'Suspected' in ' '.join(b[1] for b in sections['Root cause'])
    if files.read_json(os.path.join(path, 'incident.json')).get('severity') in ('SEV1', 'SEV2'):
        assert 'within 48 hours' in sections['Post-mortem requirement'][0][1]

    # resolving again changes nothing
    again = subprocess.run(command('playbooks/resolve.yml', dict(incident['vars'], resolved_by='alice')),
                           cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stdout[-3000:]
    assert re.search(r'Render the post-mortem \(final\)\] \*+\nok:', again.stdout), again.stdout[-3000:]
    assert len([e for e in files.read_jsonl(timeline) if e['kind'] == 'resolved']) == 1
    assert open(os.path.join(path, name), encoding='utf-8').read() == text

    # no planted secret anywhere in the incident directory
    secrets = list(lab.secrets) + [PLANTED_TOKEN, 'TPL4NT01/BPL4NT02']
    for base, _dirs, names in os.walk(path):
        for filename in names:
            with open(os.path.join(base, filename), 'rb') as handle:
                content = handle.read().decode('utf-8', 'replace')
            for secret in secrets:
                assert secret not in content, '%s leaked into %s' % (secret, os.path.join(base, filename))
    print('first triage run: %.1f s' % first_wall)


def seed_incident(root, incident_id):
    path = os.path.join(root, incident_id)
    start = files.parse_ts('2026-11-27T02:00:00Z')
    files.write_json_atomic(os.path.join(path, 'incident.json'), {
        'id': incident_id, 'title': 'Redis full', 'severity': 'SEV3', 'started_at': files.isoformat(start),
        'declared_at': files.isoformat(start), 'impact': 'Sessions fail for some users', 'status': 'Identified',
        'commander': 'On-call IC'})
    files.append_jsonl(os.path.join(path, 'timeline.jsonl'), [
        files.make_event(incident_id, 'declared', 'Incident declared: Redis full', ts='2026-11-27T02:02:00Z'),
        files.make_event(incident_id, 'finding', 'redis.memory CRIT: 64 MiB of 64 MiB', host='app-redis',
                         data={'check': 'redis.memory', 'status': 'crit'}, ts='2026-11-27T02:03:00Z'),
        files.make_event(incident_id, 'verify', 'redis.memory ok after flush_keys', data={'ok': True},
                         ts='2026-11-27T02:20:00Z'),
    ])
    return path


def test_resolve_check_mode_inputs_and_validation(tmp_path):
    root = str(tmp_path / 'incidents')
    incident_id = 'INC-RES-1'
    path = seed_incident(root, incident_id)
    base = {'incident_id': incident_id, 'incident_dir': root}

    checked = subprocess.run(command('playbooks/resolve.yml', base) + ['--check'], cwd=ROOT, env=env(),
                             capture_output=True, text=True, timeout=300, check=False)
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert not [e for e in files.read_jsonl(os.path.join(path, 'timeline.jsonl')) if e['kind'] == 'resolved']
    assert files.read_json(os.path.join(path, 'incident.json'))['status'] == 'Identified'
    # the callback still records the run and its draft (record-keeping happens in check mode too), not the final
    assert 'Status: Draft' in open(os.path.join(path, 'postmortem-2026-11-27.md')).read()

    bad = subprocess.run(command('playbooks/resolve.yml', dict(base, postmortem_action_items=[
        {'measure': 'Alert on Redis memory', 'due': 'next week'}])), cwd=ROOT, env=env(), capture_output=True,
        text=True, timeout=300, check=False)
    assert bad.returncode == 2 and 'due (YYYY-MM-DD)' in bad.stdout
    assert not [e for e in files.read_jsonl(os.path.join(path, 'timeline.jsonl')) if e['kind'] == 'resolved']

    inputs = dict(base, resolved_by='bob', resolved_at='2026-11-27T02:45:00Z',
                  root_cause='Session keys had no TTL, so the cache filled Redis',
                  postmortem_five_whys=['Sessions failed', 'Redis refused writes', 'maxmemory was reached',
                                        'Session keys never expired', 'The TTL was dropped in a refactor'],
                  postmortem_action_items=[{'measure': 'Set a TTL on session keys', 'owner': 'backend-oncall',
                                            'due': '2026-12-01'}])
    done = subprocess.run(command('playbooks/resolve.yml', inputs), cwd=ROOT, env=env(), capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    incident_json = files.read_json(os.path.join(path, 'incident.json'))
    assert incident_json['status'] == 'Resolved' and incident_json['resolved_at'] == '2026-11-27T02:45:00.000Z'
    _title, sections = parse_sections(open(os.path.join(path, 'postmortem-2026-11-27.md')).read())
    assert sections['Root cause'] == [('paragraph', 'Session keys had no TTL, so the cache filled Redis')]
    assert [b[1] for b in sections['Five whys']] == inputs['postmortem_five_whys']
    items = [b[1] for b in sections['Action items']]
    assert items[0] == 'Set a TTL on session keys - Owner: @backend-oncall - Due: 2026-12-01'
    assert any(i.startswith('Proposed') and 'redis.memory' in i for i in items)
    summary = ' '.join(b[1] for b in sections['Summary'])
    assert '**Duration:** 45 min' in summary
    response = ' '.join(b[1] for b in sections['Response times'])
    assert 'Time to acknowledge: 2 min' in response and 'Time to mitigate: 20 min' in response
    assert 'lightweight review' in sections['Post-mortem requirement'][0][1]
