"""Unit tests: the sre.incident_response.finding action plugin (normalize, merge, evidence, timeline)."""
import json
import os
from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.template import Templar

from ansible_collections.sre.incident_response.plugins.action import finding as plugin
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore


def run(args, task_vars, check_mode=False):
    task = mock.MagicMock()
    task.args = args
    task.check_mode = check_mode
    task.async_val = 0
    task.diff = False
    loader = DataLoader()
    action = plugin.ActionModule(task, mock.MagicMock(), PlayContext(), loader, Templar(loader=loader), None)
    return action.run(task_vars=task_vars)


def test_prepare_defaults_host_and_combines_services():
    out = plugin.prepare([
        {'check': 'health.container', 'service': 'backend', 'status': 'ok', 'summary': 'up'},
        {'check': 'health.container', 'service': 'proxy', 'status': 'crit', 'summary': 'exited'},
        {'check': 'net.dns', 'host': 'controller', 'status': 'ok', 'summary': 'resolves'}], 'app-backend', ts='T')
    assert [(f['host'], f['check'], f['status']) for f in out] == [('app-backend', 'health.container', 'crit'),
                                                                   ('controller', 'net.dns', 'ok')]
    assert out[0]['ts'] == 'T' and 'services' in out[0]['evidence']
    with pytest.raises(ValueError):
        plugin.prepare([{'check': 'nodot', 'status': 'ok', 'summary': 'x'}], 'h')
    with pytest.raises(ValueError):
        plugin.prepare([{'check': 'a.b', 'status': 'fine', 'summary': 'x'}], 'h')


def test_records_findings_evidence_and_timeline(tmp_path):
    secret = 'lab-pg-S3cret-4f9a'
    task_vars = {'inventory_hostname': 'app-db', 'incident_id': 'INC-UNIT-1', 'incident_dir': str(tmp_path),
                 'lab_pg_password': secret}
    findings = [{'check': 'pg.connectivity', 'status': 'crit', 'service': 'db',
                 'summary': 'cannot connect: password %s rejected' % secret, 'evidence': {'error': 'x'}},
                {'check': 'pg.locks', 'status': 'ok', 'service': 'db', 'summary': 'no lock waits'}]
    res = run({'findings': findings, 'evidence': {'app-db': {'pg-activity-db.json': [{'pid': 1}], 'raw.log': 'line\n'}}},
              task_vars)
    assert res['changed'] is False and res['recorded'] is True
    assert res['counts'] == {'ok': 1, 'warn': 0, 'crit': 1, 'unknown': 0}
    base = tmp_path / 'INC-UNIT-1'
    stored = json.loads((base / 'findings.json').read_text())
    assert [f['check'] for f in stored] == ['pg.connectivity', 'pg.locks']  # worst first
    assert secret not in (base / 'findings.json').read_text()
    assert json.loads((base / 'evidence' / 'app-db' / 'pg-activity-db.json').read_text()) == [{'pid': 1}]
    assert (base / 'evidence' / 'app-db' / 'raw.log').read_text() == 'line\n'
    assert (base / 'evidence' / 'app-db' / 'pg.connectivity.json').exists()
    events = [json.loads(line) for line in (base / 'timeline.jsonl').read_text().splitlines()]
    assert [e['kind'] for e in events] == ['finding', 'finding']
    assert events[0]['summary'].startswith('pg.connectivity CRIT: cannot connect') and events[0]['host'] == 'app-db'
    assert events[0]['data']['key'] == 'app-db/pg.connectivity'
    assert secret not in (base / 'timeline.jsonl').read_text()
    # a later run replaces the finding of the same host/check, keeps the others
    run({'findings': [{'check': 'pg.connectivity', 'status': 'ok', 'summary': 'accepting'}]}, task_vars)
    stored = {f['check']: f for f in json.loads((base / 'findings.json').read_text())}
    assert stored['pg.connectivity']['status'] == 'ok' and 'pg.locks' in stored


def test_incident_path_fact_wins_over_incident_dir(tmp_path):
    path = tmp_path / 'elsewhere' / 'INC-UNIT-2'
    res = run({'findings': [{'check': 'a.b', 'status': 'ok', 'summary': 'x'}]},
              {'inventory_hostname': 'h', 'incident_id': 'INC-UNIT-2', 'incident_path': str(path), 'incident_dir': str(tmp_path)})
    assert res['incident_path'] == str(path) and (path / 'findings.json').exists()


def test_without_incident_it_skips_and_never_fails():
    res = run({'findings': [{'check': 'a.b', 'status': 'warn', 'summary': 'x'}]}, {'inventory_hostname': 'h'})
    assert res['recorded'] is False and res['skipped'] is True and 'no incident_id' in res['msg']
    assert res['counts']['warn'] == 1


def test_invalid_finding_or_evidence_fails_clearly(tmp_path):
    tv = {'inventory_hostname': 'h', 'incident_id': 'INC-UNIT-3', 'incident_dir': str(tmp_path)}
    with pytest.raises(AnsibleActionFail, match='invalid finding'):
        run({'findings': [{'check': 'a.b', 'status': 'bad', 'summary': 'x'}]}, tv)
    with pytest.raises(AnsibleActionFail, match='evidence must map host'):
        run({'findings': [], 'evidence': {'h': 'not a dict'}}, tv)


def test_evidence_file_names_are_safe(tmp_path):
    files = plugin.evidence_files({'h/../x': {'../../etc/passwd': 'x'}}, [])
    assert files == [('h/../x', '.._.._etc_passwd', 'x')]
    written = IncidentStore('INC-UNIT-9', str(tmp_path)).write_evidence(files, Redactor())
    assert all(os.path.realpath(p).startswith(str(tmp_path)) for p in written)


LAB_SECRETS = {'lab_pg_password': 'lab-pg-S3cret-4f9a', 'lab_pg_superuser_password': 'lab-pgsu-S3cret-77c1',
               'lab_analyst_password': 'lab-analyst-S3cret-2b8e', 'lab_redis_password': 'lab-redis-S3cret-9d3e'}


def probe_result_with_secret_keys():
    """What the probe registers on the lab when request paths and an application_name carry the lab passwords."""
    paths = dict(('/api/orders/%s' % s, {'requests': 1, 'errors': 0}) for s in LAB_SECRETS.values())
    app = '%s %s' % (LAB_SECRETS['lab_pg_password'], LAB_SECRETS['lab_redis_password'])
    return {'findings': [
        {'check': 'app.errors', 'host': 'app-backend', 'service': 'backend', 'status': 'ok', 'summary': '4 requests',
         'evidence': {'by_path': paths}},
        {'check': 'pg.connections', 'host': 'app-backend', 'service': 'db', 'status': 'ok', 'summary': '1 of 100',
         'evidence': {'by_user_application': {'app/%s' % app: 1}, 'holders': [{'application_name': app}]}}],
        'evidence_files': {'pg-activity-db.json': [{'application_name': app}], 'app.errors-backend.log': '\n'.join(paths)}}


def test_secrets_in_evidence_keys_never_reach_the_incident_or_the_result(tmp_path):
    task_vars = dict(LAB_SECRETS, inventory_hostname='app-backend', incident_id='INC-UNIT-KEYS', incident_dir=str(tmp_path),
                     ansible_play_hosts_all=['app-backend'], hostvars={'app-backend': {'__probe': probe_result_with_secret_keys()}})
    res = run({'probe_var': '__probe'}, task_vars)
    assert res['recorded'] is True
    texts = [json.dumps(res)]
    for base, dummy, names in os.walk(str(tmp_path)):
        texts += [os.path.join(base, n) + '\n' + open(os.path.join(base, n)).read() for n in names]
    text = '\n'.join(texts)
    assert not [s for s in LAB_SECRETS.values() if s in text]
    stored = json.loads((tmp_path / 'INC-UNIT-KEYS' / 'findings.json').read_text())
    by_path = [f for f in stored if f['check'] == 'app.errors'][0]['evidence']['by_path']
    assert len(by_path) == 4 and sorted(v['requests'] for v in by_path.values()) == [1, 1, 1, 1]  # none dropped


def test_without_incident_the_returned_findings_are_redacted_too():
    task_vars = dict(LAB_SECRETS, inventory_hostname='app-backend', ansible_play_hosts_all=['app-backend'],
                     hostvars={'app-backend': {'__probe': probe_result_with_secret_keys()}})
    res = run({'probe_var': '__probe'}, task_vars)
    assert res['recorded'] is False and len(res['findings']) == 2
    assert not [s for s in LAB_SECRETS.values() if s in json.dumps(res)]
