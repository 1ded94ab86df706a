"""The input checks every entry playbook runs first (plugins/plugin_utils/incident/incident_input.py)."""
import copy
import os
import re

import pytest
import yaml

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import incident_input as rules

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DB = {'name': 'db', 'kind': 'postgres', 'deploy': {'type': 'docker', 'container': 'app-db'},
      'postgres': {'host': '127.0.0.1', 'port': 5432, 'database': 'app', 'user': 'app',
                   'password_var': 'vault_pg_password', 'app_roles': ['app']}}


def problems(services, host='app-db'):
    return rules.hosts_problems({host: services})


def test_a_valid_service_passes_and_a_templated_port_string_is_a_port():
    assert problems([DB]) == []
    svc = copy.deepcopy(DB)
    svc['postgres']['port'] = '15432'
    assert problems([svc]) == []


@pytest.mark.parametrize('port', ['abc', 0, 70000, True, '', None, 5432.5])
def test_bad_port_names_host_index_service_and_key(port):
    svc = copy.deepcopy(DB)
    svc['postgres']['port'] = port
    got = problems([svc])
    assert len(got) == 1
    assert got[0].startswith('app-db: incident_services[0] (db).postgres.port: ')
    assert got[0].endswith(' is not a port')


def test_the_example_of_the_issue_word_for_word():
    svc = copy.deepcopy(DB)
    svc['postgres']['port'] = 'abc'
    assert problems([svc]) == ['app-db: incident_services[0] (db).postgres.port: "abc" is not a port']


def test_not_a_list_names_host_and_variable():
    assert problems('oops') == ['app-db: incident_services: "oops" is not a list of services (docs/reference/services.md)']
    assert problems(['oops'])[0].startswith('app-db: incident_services[0]: "oops" is not a service')


def test_missing_and_empty_services():
    assert 'is missing' in problems(None)[0]
    assert 'is empty' in problems([])[0]
    assert rules.hosts_problems({'h': None}, required=False) == []


def test_required_keys_per_kind_and_unknown_keys():
    got = problems([{'name': 'cache', 'kind': 'redis', 'rediss': {}}], host='app-redis')
    assert 'app-redis: incident_services[0] (cache).rediss: unknown key (known: ' in got[0]
    assert 'app-redis: incident_services[0] (cache).redis: is required for kind redis' in got
    got = problems([{'kind': 'backend'}])
    assert got == ['app-db: incident_services[0] (?).name: is required']
    got = problems([{'name': 'api', 'kind': 'backend', 'postgres': {}}])
    assert got == ['app-db: incident_services[0] (api).postgres: only services of kind postgres have it (this one is backend)']
    svc = copy.deepcopy(DB)
    svc['postgres']['passwd'] = 'x'
    assert problems([svc])[0].startswith('app-db: incident_services[0] (db).postgres.passwd: unknown key')


def test_deploy_logs_and_health_are_checked():
    svc = {'name': 'api', 'kind': 'backend', 'deploy': {'type': 'docker'}, 'logs': {'source': 'file'},
           'health': [{'url': 'ftp://x', 'expect_status': 999}, {'name': 'ready'}]}
    got = problems([svc])
    assert 'app-db: incident_services[0] (api).deploy.container: is required for deploy.type docker' in got
    assert 'app-db: incident_services[0] (api).logs.path: is required for logs.source file' in got
    assert 'app-db: incident_services[0] (api).health[0].url: "ftp://x" is not an http:// or https:// URL' in got
    assert any(p.startswith('app-db: incident_services[0] (api).health[0].expect_status: 999 is not an HTTP') for p in got)
    assert 'app-db: incident_services[0] (api).health[1].url: is required' in got
    assert problems([dict(svc, kind='database')])[0].startswith(
        'app-db: incident_services[0] (api).kind: "database" is not one of backend, postgres')


def test_types_ranges_and_secret_by_reference():
    svc = copy.deepcopy(DB)
    svc['postgres']['password_var'] = 's3cret pass!'
    svc['postgres']['app_roles'] = 'app'
    svc['disk_paths'] = ['var/log']
    got = problems([svc])
    assert any('postgres.password_var: "s3cret pass!" is not a variable name' in p for p in got)
    assert any('postgres.app_roles: "app" is not a list' in p for p in got)
    assert any('disk_paths: ["var/log"] item 0 ("var/log") is not an absolute path' in p for p in got)
    redis = {'name': 'redis', 'kind': 'redis', 'redis': {'port': 6379, 'tls': 'maybe', 'db': -1}}
    got = problems([redis])
    assert any('redis.tls: "maybe" is not a boolean' in p for p in got)
    assert any('redis.db: -1 is not a number >= 0' in p for p in got)


def test_duplicate_names_on_one_host():
    got = problems([DB, DB])
    assert got == ['app-db: incident_services[1] (db).name: "db" is already incident_services[0]']


def test_empty_incident_id_given_is_refused_absent_is_new():
    assert rules.incident_id_problems((False, None), '') == []
    assert rules.incident_id_problems((True, 'INC-1'), 'INC-1') == []
    for empty in ('', '  ', None):
        got = rules.incident_id_problems((True, empty), empty or '')
        assert len(got) == 1 and 'is empty: leave -e incident_id out to declare a new incident' in got[0]
    assert 'is malformed' in rules.incident_id_problems((True, 'x/../y'), 'x/../y')[0]
    assert 'is required' in rules.incident_id_problems((False, None), '', must_exist=True)[0]


def _untemplate(value, key=None):
    """Stand a rendered value in for each template: ports render to digit strings, paths to absolute paths."""
    if isinstance(value, dict):
        return {k: _untemplate(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_untemplate(v, key) for v in value]
    if isinstance(value, str) and value.startswith('{{'):
        return '1234' if key == 'port' else ('http://templated' if key == 'url' else '/templated')
    return value


def _load(path):
    with open(path, encoding='utf-8') as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize('inventory', ['lab', 'example'])
def test_bundled_inventories_are_valid(inventory):
    base = os.path.join(ROOT, 'inventory', inventory)
    found = 0
    for folder in ('host_vars', 'group_vars'):
        for dirpath, _dirs, names in os.walk(os.path.join(base, folder)):
            for name in names:
                data = _load(os.path.join(dirpath, name)) or {}
                if 'incident_services' in data:
                    found += 1
                    services = _untemplate(data['incident_services'])
                    assert rules.hosts_problems({name: services}) == []
    assert found >= 3


def test_the_reference_documents_every_key_of_the_schema():
    doc = open(os.path.join(ROOT, 'docs', 'reference', 'services.md'), encoding='utf-8').read()
    for key, schema in rules.SERVICE.items():
        assert re.search(r'\b%s:' % key, doc), 'docs/reference/services.md does not document %s' % key
        sub = schema[0] if isinstance(schema, list) else schema
        if isinstance(sub, dict):
            for inner in sub:
                assert re.search(r'\b%s\b' % inner, doc), 'docs/reference/services.md does not document %s.%s' % (key, inner)
