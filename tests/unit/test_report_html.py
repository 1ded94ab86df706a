"""report.html: the model (plugins/plugin_utils/render/report.py) from an incident directory, and its Jinja2 template
(roles/report/templates/report.html.j2) rendered by report.render_html - the function the action
sre.incident_response.incident_report renders the page with - lanes, marks, worst status per cell, targets,
escaping, the Content-Security-Policy, redaction. tests/integration/test_render_outside_text.py renders it through
playbooks/report.yml after a real triage."""
import base64
import hashlib
import html.parser
import json
import os
import re

import jinja2
import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.render import report
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATE = os.path.join(ROOT, 'roles', 'report', 'templates')
SECRET = 'hunter2-S3cret'


def ev(ts, kind, summary, host='app-backend', **data):
    return {'ts': '2026-11-27T03:%s.000Z' % ts, 'incident_id': 'INC-T', 'kind': kind, 'host': host, 'summary': summary, 'data': data}


@pytest.fixture
def incident(tmp_path):
    path = tmp_path / 'INC-T'
    (path / 'evidence' / 'app-db').mkdir(parents=True)
    (path / 'incident.json').write_text(json.dumps({'id': 'INC-T', 'title': 'Orders <failing>', 'severity': 'SEV2',
                                                    'started_at': '2026-11-27T03:10:00.000Z', 'status': 'Resolved',
                                                    'commander': 'alice'}))
    events = [
        ev('10:00', 'declared', 'Incident declared'),
        ev('10:00', 'severity', 'Severity SEV4', severity='SEV4'),
        ev('10:05', 'task', 'a task'),
        ev('10:10', 'finding', 'app.errors CRIT: 500s <script>alert(1)</script>', check='app.errors', status='crit'),
        ev('10:10', 'finding', 'pg.locks WARN: 2 waiting; password=%s' % SECRET, host='app-db', check='pg.locks', status='warn'),
        ev('10:20', 'severity', 'Severity raised to SEV2', severity='SEV2'),
        ev('10:30', 'comms', 'INCIDENT DECLARED -> #incidents (file only)'),
        ev('11:00', 'plan', 'rollback on backend: 1 target(s)'),
        ev('11:10', 'approval', 'rollback approved', decision='approved'),
        ev('11:20', 'action', 'rollback applied'),
        ev('11:40', 'verify', 'rollback on backend verified', status='ok'),
        ev('11:50', 'finding', 'app.errors OK', check='app.errors', status='ok'),
        ev('12:00', 'resolved', 'Incident resolved'),
        ev('59:00', 'play', 'a later run that only read the incident'),
    ]
    (path / 'timeline.jsonl').write_text(''.join(json.dumps(e) + '\n' for e in events))
    (path / 'findings.json').write_text(json.dumps([
        {'host': 'app-backend', 'check': 'app.errors', 'status': 'ok', 'summary': 'app.errors OK', 'ts': '2026-11-27T03:11:50.000Z',
         'evidence': {'errors': 0}},
        {'host': 'app-db', 'check': 'pg.locks', 'status': 'warn', 'summary': '2 waiting', 'ts': '2026-11-27T03:10:10.000Z'}]))
    (path / 'evidence' / 'app-db' / 'pg.locks.txt').write_text('blocked pid 42 by 41\npassword=%s\n' % SECRET)
    (path / 'diagnosis.json').write_text(json.dumps({'hypotheses': [
        {'rank': 1, 'pattern': 'error_spike_after_deploy', 'confidence': 0.9, 'likely_cause': 'Bug in the new code',
         'first_action': 'ansible-playbook playbooks/remediate.yml -e remediation_action=rollback', 'evidence': ['app-backend/app.errors']}]}))
    (path / 'postmortem-2026-11-27.md').write_text('# Post-mortem: Orders failing\n\n## Root cause\n\nrelease 1.1.0\n')
    return str(path)


def test_model_lanes_marks_and_worst_cells(incident):
    model = report.build(incident, redactor=Redactor())
    tl = model['timeline']
    assert [lane['host'] for lane in tl['lanes']] == ['app-backend', 'app-db']
    assert sum(len(lane['marks']) for lane in tl['lanes']) == tl['finding_events'] == 3
    backend = tl['lanes'][0]['marks']
    assert [m['status'] for m in backend] == ['crit', 'ok'] and backend[0]['x'] < backend[1]['x']
    assert [s['severity'] for s in tl['severities']] == ['SEV4', 'SEV2']
    assert [c['kind'] for c in tl['chain']] == ['plan', 'approval', 'action', 'verify']
    assert [m['name'] for m in tl['markers']] == ['acknowledged', 'mitigated', 'resolved']
    # the axis ends with the incident, not with a later run that only read it
    assert all(tl['left'] <= m['x'] <= tl['right'] for lane in tl['lanes'] for m in lane['marks'])
    assert tl['chain'][-1]['x'] > tl['left'] + 0.7 * (tl['right'] - tl['left'])
    cells = {(row['host'], c): cell for row in model['grid']['rows'] for c, cell in zip(model['grid']['checks'], row['cells'])}
    assert cells[('app-backend', 'app.errors')]['status'] == 'crit'  # worst, though the latest is ok
    assert cells[('app-backend', 'pg.locks')] is None
    bars = {b['label']: b for b in model['targets']}
    assert bars['Acknowledge']['target'] == '15 min' and bars['Acknowledge']['met'] is True
    assert bars['Resolve']['actual'] == '2 min' and bars['Resolve']['met'] is None
    assert model['hypotheses'][0]['evidence'] == [{'key': 'app-backend/app.errors', 'anchor': 'f-app-backend-app-errors', 'known': True}]
    assert model['postmortem']['file'] == 'postmortem-2026-11-27.md'


def render(model):
    return report.render_html(model)


class Page(html.parser.HTMLParser):
    """Elements and attributes as a browser's parser sees them, the text of <style>, and the CSP meta."""

    def __init__(self, text):
        super(Page, self).__init__(convert_charrefs=True)
        self.tags, self.attrs, self.styles, self.csp, self.text = [], [], [], [], []
        self._in_style = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend((tag, name, value) for name, value in attrs)
        self._in_style = tag == 'style'
        if tag == 'meta' and dict(attrs).get('http-equiv', '').lower() == 'content-security-policy':
            self.csp.append(dict(attrs)['content'])

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        (self.styles if self._in_style else self.text).append(data)


def assert_inert(page):
    """No element or attribute that runs or loads anything; one CSP that allows no script and only our style."""
    assert not {'script', 'img', 'iframe', 'object', 'embed', 'link', 'base', 'form', 'foreignobject'} & set(page.tags)
    assert not [a for a in page.attrs if a[1].startswith('on') or a[1] in ('style', 'src', 'srcdoc', 'xlink:href')]
    assert not [a for a in page.attrs if a[1] == 'href' and not re.match(r'^(#f-[\w-]+|evidence/[\w./-]+|postmortem-[\w.-]+\.md)$', a[2])]
    assert len(page.csp) == 1 and len(page.styles) == 1
    policy = dict((d.split()[0], d.split()[1:]) for d in page.csp[0].split(';') if d.strip())
    digest = base64.b64encode(hashlib.sha256(page.styles[0].encode('utf-8')).digest()).decode()
    assert policy == {'default-src': ["'none'"], 'style-src': ["'sha256-%s'" % digest], 'img-src': ["'none'"],
                      'base-uri': ["'none'"], 'form-action': ["'none'"]}, policy


def test_template_escapes_and_redacts(incident):
    html = render(report.build(incident, redactor=Redactor()))
    assert SECRET not in html and '********' in html
    assert '<script>' not in html and '&lt;script&gt;alert(1)&lt;/script&gt;' in html
    assert '<title>INC-T - SEV2 - Orders &lt;failing&gt;</title>' in html
    assert len(re.findall(r'<g class="lane" data-host=', html)) == 2
    assert len(re.findall(r'<circle class="mark finding s-\w+"', html)) == 3
    assert 'blocked pid 42 by 41' in html and 'href="evidence/app-db/pg.locks.txt"' in html
    assert 'href="#f-app-backend-app-errors"' in html and 'id="f-app-backend-app-errors"' in html
    assert not re.search(r'''(src|href)\s*=\s*["']?(https?:)?//''', html)
    assert_inert(Page(html))


PAYLOADS = ['<script>alert(1)</script>', '<img src=x onerror=alert(2)>', '"><svg onload=alert(3)>',
            "' onmouseover='alert(4)", '</title><script>alert(5)</script>', '</style><script>alert(6)</script>',
            ']]><script>alert(7)</script>', '<a href="javascript:alert(8)">x</a>', '{{ 7 * 7 }}{% raw %}']


def test_outside_text_everywhere_stays_text(tmp_path):
    """Every string the page shows, from every file of the incident, carries markup: the page runs and loads
    nothing, and shows each payload as text."""
    bad = ' | '.join(PAYLOADS)
    path = tmp_path / 'INC-X'
    (path / 'evidence' / 'h1').mkdir(parents=True)
    (path / 'incident.json').write_text(json.dumps({
        'id': 'INC-X', 'title': bad, 'severity': 'SEV1" onload="x', 'started_at': '2026-11-27T03:10:00.000Z',
        'status': bad, 'commander': bad, 'impact': bad}))
    events = [ev('10:00', 'declared', bad), ev('10:01', 'severity', bad, severity='SEV2<script>'),
              ev('10:02', 'finding', bad, host='h1', check='app.errors', status='crit'),
              ev('10:02', 'finding', bad, host=bad, check=bad, status=bad),
              ev('10:03', 'comms', bad), ev('10:04', 'plan', bad, status=bad), ev('10:05', 'verify', bad),
              ev('10:06', 'resolved', bad)]
    (path / 'timeline.jsonl').write_text(''.join(json.dumps(e) + '\n' for e in events))
    (path / 'findings.json').write_text(json.dumps([{'host': 'h1', 'check': 'app.errors', 'status': 'crit',
                                                     'summary': bad, 'ts': '2026-11-27T03:10:02.000Z'}]))
    (path / 'evidence' / 'h1' / 'app.errors.txt').write_text(bad)
    (path / 'diagnosis.json').write_text(json.dumps({'hypotheses': [
        {'rank': 1, 'pattern': bad, 'confidence': 0.5, 'likely_cause': bad, 'first_action': bad, 'then': bad,
         'evidence': ['h1/app.errors', bad]}]}))
    (path / 'postmortem-2026-11-27.md').write_text(bad)
    html = render(report.build(str(path), redactor=Redactor()))
    page = Page(html)
    assert_inert(page)
    text = ''.join(page.text)
    for payload in PAYLOADS:
        assert text.count(payload) >= 10, payload
    assert '49' not in text.replace('2026', '')  # nothing was templated


def test_the_template_needs_the_escaping_renderer(incident):
    """ansible.builtin.template (no autoescape, whatever the template says) fails on it instead of writing it raw."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE), undefined=jinja2.StrictUndefined)
    with pytest.raises(jinja2.TemplateAssertionError, match='csp_hash'):
        env.get_template('report.html.j2')
    source = re.sub(r'\{#.*?#\}', '', open(os.path.join(TEMPLATE, 'report.html.j2')).read(), flags=re.S)
    assert not re.search(r'\|\s*safe\b|autoescape\s+false|style=', source)


def test_the_page_is_written_by_the_store_atomically_idempotently_and_honestly_in_check_mode(tmp_path):
    store = IncidentStore.of_path(str(tmp_path), 'INC-1')
    dest = str(tmp_path / 'report.html')
    assert store.write_page('report.html', '<p>a</p>', check_mode=True) == {'path': dest, 'changed': True}
    assert not os.path.exists(dest)
    assert store.write_page('report.html', '<p>a</p>')['changed'] is True
    assert store.write_page('report.html', '<p>a</p>')['changed'] is False
    assert store.write_page('report.html', '<p>b</p>', check_mode=True)['changed'] is True
    assert open(dest).read() == '<p>a</p>' and oct(os.stat(dest).st_mode & 0o777) == '0o644'
    assert os.listdir(str(tmp_path)) == ['report.html']
    assert not hasattr(report, 'write_html'), 'report.html goes through the store (IncidentStore.write_page)'


def test_not_an_incident_directory(tmp_path):
    with pytest.raises(ValueError, match='holds no incident'):
        report.build(str(tmp_path))


def test_task_events_of_both_forms_draw_nothing(incident):
    """Lanes are the hosts that reported findings; task events (old per-host, compact per task) neither add lanes
    nor stretch the axis, whatever hosts they name."""
    from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.timeline import compact_task_event, task_event
    before = report.build(incident, redactor=Redactor())
    with open(os.path.join(incident, 'timeline.jsonl'), 'a') as handle:
        for event in (task_event('INC-T', 'node-old', 'Old probe', 'failed', result={'msg': 'x'}, ts='2026-11-27T04:30:00.000Z'),
                      task_event('INC-T', 'node-new', 'Probe', 'unreachable', task_id='t', detail=True,
                                 ts='2026-11-27T04:31:00.000Z'),
                      compact_task_event('INC-T', {'task': 'Probe', 'task_id': 't'},
                                         {'node-new': {'status': 'unreachable'}, 'node-x': {'status': 'ok'}},
                                         ts='2026-11-27T04:31:00.000Z')):
            handle.write(json.dumps(event) + '\n')
    after = report.build(incident, redactor=Redactor())
    assert [lane['host'] for lane in after['timeline']['lanes']] == ['app-backend', 'app-db']
    assert after['timeline'] == before['timeline'] and after['grid'] == before['grid']
