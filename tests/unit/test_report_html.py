"""report.html: the model (plugins/module_utils/report.py) from an incident directory, and its Jinja2 template
(roles/report/templates/report.html.j2) - lanes, marks, worst status per cell, targets, escaping, redaction."""
import json
import os
import re

import jinja2
import pytest

from ansible_collections.sre.incident_response.plugins.module_utils import report
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
         'first_action': 'ansible-playbook playbooks/remediate.yml -e action=rollback', 'evidence': ['app-backend/app.errors']}]}))
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
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE), undefined=jinja2.StrictUndefined)
    return env.get_template('report.html.j2').render(report_model=model)


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


def test_not_an_incident_directory(tmp_path):
    with pytest.raises(ValueError, match='holds no incident'):
        report.build(str(tmp_path))


def test_task_events_of_both_forms_draw_nothing(incident):
    """Lanes are the hosts that reported findings; task events (old per-host, compact per task) neither add lanes
    nor stretch the axis, whatever hosts they name."""
    from ansible_collections.sre.incident_response.plugins.module_utils.timeline import compact_task_event, task_event
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
