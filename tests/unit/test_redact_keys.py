"""Unit tests: secrets are redacted as dict KEYS as well as values (module_utils/redact.py), and every writer of the
incident store goes through the redactor (plugin_utils/incident_store.py)."""
import json
import os

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files
from ansible_collections.sre.incident_response.plugins.module_utils.redact import REDACTED, Redactor
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.timeline import TimelineWriter, compact_task_event
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore

PG = 'lab-pg-S3cret-4f9a'
REDIS = 'lab-redis-S3cret-9d3e'
SU = 'lab-pgsu-S3cret-77c1'
SECRETS = (PG, REDIS, SU)


def redactor():
    return Redactor(literals=SECRETS)


def test_a_key_holding_a_secret_literal_is_rewritten():
    out = redactor().data({'by_path': {'/api/orders/%s' % PG: {'requests': 3}, '/health': {'requests': 9}}})
    assert out == {'by_path': {'/api/orders/%s' % REDACTED: {'requests': 3}, '/health': {'requests': 9}}}


def test_a_key_matching_a_secret_pattern_is_rewritten():
    out = Redactor().data({'/login?user=a&password=hunter2-long': 1,
                           'postgresql://app:pw-in-url@db:5432/app': 2,
                           'Bearer eyJhbGciOiJIUzI1NiJ9.payload': 3})
    text = json.dumps(out)
    for secret in ('hunter2-long', 'pw-in-url', 'eyJhbGciOiJIUzI1NiJ9'):
        assert secret not in text
    assert sorted(out.values()) == [1, 2, 3]


def test_keys_that_collide_after_redaction_keep_every_value():
    data = {'app/%s %s' % (PG, REDIS): 1, 'app/%s %s' % (SU, PG): 2, 'app/%s %s' % (REDACTED, REDACTED): 3,
            'app/backend': 7}
    out = redactor().data(data)
    assert len(out) == 4 and sorted(out.values()) == [1, 2, 3, 7]
    assert set(out) == {'app/%s %s' % (REDACTED, REDACTED), 'app/%s %s (2)' % (REDACTED, REDACTED),
                        'app/%s %s (3)' % (REDACTED, REDACTED), 'app/backend'}
    assert not any(s in json.dumps(out) for s in SECRETS)


def test_collisions_are_deterministic_and_redaction_is_idempotent():
    data = {'/a/%s' % PG: {'n': 1}, '/a/%s' % REDIS: {'n': 2}, '/a/%s' % SU: {'n': 3}}
    once = redactor().data(data)
    assert list(once) == ['/a/%s' % REDACTED, '/a/%s (2)' % REDACTED, '/a/%s (3)' % REDACTED]
    assert [v['n'] for v in once.values()] == [1, 2, 3]
    assert redactor().data(once) == once


def test_nested_keys_in_lists_and_secret_named_keys():
    data = {'holders': [{'application_name': '%s %s' % (PG, REDIS), 'count': 1}],
            'by_user_application': {'app/%s' % PG: 2},
            'login_password': PG, 'password_var': 'lab_pg_password', 7: PG, 'enabled': True}
    out = redactor().data(data)
    assert PG not in json.dumps(out) and REDIS not in json.dumps(out)
    assert out['holders'][0]['application_name'] == '%s %s' % (REDACTED, REDACTED)
    assert out['by_user_application'] == {'app/%s' % REDACTED: 2}
    assert out['login_password'] == REDACTED and out['password_var'] == 'lab_pg_password'
    assert out[7] == REDACTED and out['enabled'] is True


def test_a_key_named_after_a_secret_variable_is_no_secret_itself():
    # names are not values: only a value (literal or pattern) is a secret
    assert redactor().data({'lab_pg_password': 'x'}) == {'lab_pg_password': REDACTED}
    assert redactor().data({'password': {'set': True}}) == {'password': {'set': True}}


def test_timeline_writer_redacts_host_names_and_data_keys(tmp_path):
    writer = TimelineWriter(redactor=redactor())
    writer.set_incident('INC-KEYS-1', path=str(tmp_path / 'INC-KEYS-1'))
    writer.emit(compact_task_event(None, {'task': 'probe', 'task_id': 't1'},
                                   {'host-%s' % PG: {'status': 'ok', 'duration_s': 1.0},
                                    'host-%s' % REDIS: {'status': 'failed', 'duration_s': 2.0}}))
    text = (tmp_path / 'INC-KEYS-1' / 'timeline.jsonl').read_text()
    assert not any(s in text for s in SECRETS)
    hosts = json.loads(text)['data']['hosts']
    assert sorted(h['status'] for h in hosts.values()) == ['failed', 'ok']


def finding_with_secret_keys(check='app.errors'):
    return files.normalize_finding({
        'check': check, 'host': 'app-backend', 'service': 'backend', 'status': 'warn', 'summary': 'paths',
        'evidence': {'by_path': {'/api/orders/%s' % PG: {'requests': 1}, '/api/orders/%s' % REDIS: {'requests': 2}}}})


def all_text(root):
    out = []
    for base, dummy, names in os.walk(root):
        for name in names:
            out.append(os.path.join(base, name))
            with open(os.path.join(base, name), encoding='utf-8', errors='replace') as handle:
                out.append(handle.read())
    return '\n'.join(out)


def test_every_store_writer_redacts_keys_with_the_task_secrets(tmp_path):
    task_vars = {'lab_pg_password': PG, 'lab_redis_password': REDIS, 'incident_id': 'INC-KEYS-2',
                 'incident_dir': str(tmp_path)}
    store = IncidentStore.resolve({}, task_vars)
    finding = finding_with_secret_keys()
    event = store.event('finding', 'f', data={'paths': {'/x/%s' % PG: 1}})
    store.record_findings([finding], [event])  # no redactor given: the store's own (the task's secrets)
    store.append({'kind': 'note', 'data': {'/y/%s' % REDIS: 1}})
    written = store.write_diagnosis({'hypotheses': [], 'evidence': {'/z/%s' % PG: 'app.errors'}})
    store.write_evidence([('app-backend', 'paths-%s.json' % PG, {'/e/%s' % REDIS: 1}),
                          ('app-backend', 'raw.log', 'GET /api/orders/%s 404\n' % PG)])
    text = all_text(str(tmp_path))
    assert not any(s in text for s in SECRETS), text
    stored = json.loads((tmp_path / 'INC-KEYS-2' / 'findings.json').read_text())
    assert len(stored[0]['evidence']['by_path']) == 2  # two paths, two keys: nothing dropped
    assert written['evidence'] == {'/z/%s' % REDACTED: 'app.errors'}
    assert store.diagnosis() == written


def test_a_store_made_without_task_variables_still_redacts_patterns(tmp_path):
    store = IncidentStore('INC-KEYS-3', str(tmp_path / 'INC-KEYS-3'))
    store.append({'kind': 'note', 'data': {'GET /login?password=hunter2-long': 1}})
    assert 'hunter2-long' not in (tmp_path / 'INC-KEYS-3' / 'timeline.jsonl').read_text()


def test_incident_context_redacts_the_callers_free_text(tmp_path):
    """A title or an impact quoting a secret (an alert's text, a paste) never reaches incident.json or the timeline."""
    from unittest import mock
    from ansible.parsing.dataloader import DataLoader
    from ansible.playbook.play_context import PlayContext
    from ansible.template import Templar
    from ansible_collections.sre.incident_response.plugins.action import incident_context
    task = mock.MagicMock()
    task.args = {'incident_id': 'INC-KEYS-4', 'incident_dir': str(tmp_path), 'title': 'login fails with %s' % PG,
                 'impact': 'users see %s' % REDIS, 'severity_floor_reasons': ['seen %s' % SU]}
    task.async_val, task.check_mode, task.diff = 0, False, False
    loader = DataLoader()
    plugin = incident_context.ActionModule(task, mock.MagicMock(), PlayContext(), loader, Templar(loader=loader), None)
    res = plugin.run(task_vars={'lab_pg_password': PG, 'lab_redis_password': REDIS, 'lab_pg_superuser_password': SU})
    assert res['incident']['title'] == 'login fails with %s' % REDACTED
    text = all_text(str(tmp_path)) + json.dumps(res)
    assert not any(s in text for s in SECRETS)
