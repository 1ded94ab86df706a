"""Diagnosis rules against findings.json captured from real triage runs on the lab, one per fault.

The fixtures (tests/unit/fixtures/triage/<fault>.json) are the findings the diagnostic roles wrote while the
fault was injected; refresh them by running playbooks/triage.yml with the fault present and copying the
incident's findings.json. The expectations are the issue's: the right pattern first, with the right evidence.
"""
import json
import os

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import diagnosis as dx
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import classify

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures', 'triage')
CTX = {'incident_id': 'INC-20261127-0412-7d10', 'inventory': 'inventory/lab', 'playbook_dir': 'playbooks',
       'backends': ['app-backend'], 'backend_services': ['backend'], 'backend_service': 'backend', 'tls_service': 'proxy',
       'endpoints': ['/api/orders', '/api/products', '/api/sessions', '/api/payments'],
       'critical_paths': ['/api/orders', '/api/sessions'], 'app_roles': {'db': ['app']}}

# fault -> (acceptable first patterns, a substring of the first hypothesis' evidence, first-action fragment, severity floor)
EXPECTED = {
    'healthy': (None, None, None, None),
    'bad_deploy': ({'error_spike_after_deploy'}, 'app-backend/deploy.recent', '-e remediation_action=rollback', 'SEV2'),
    'backend_down': ({'backend_down'}, 'app-backend/health.', '-e remediation_action=restart', 'SEV1'),
    'db_lock': ({'slow_responses', 'gradual_degradation'}, 'app-db/pg.', '-e remediation_action=kill_query', None),
    'pool_exhaustion': ({'slow_responses', 'gradual_degradation'}, 'app-db/pg.connections', '-e remediation_action=restart', None),
    'dependency_down': ({'partial_failures'}, 'dependency.reachability', None, 'SEV3'),
    'partial_failure': ({'partial_failures'}, 'app-backend/app.errors', None, None),
    'memory_growth': ({'memory_growth'}, 'container.resources', '-e remediation_action=restart', None),
    'redis_full': ({'gradual_degradation'}, 'app-redis/redis.memory', '-e remediation_action=flush_keys', None),
    'redis_slow': ({'slow_responses'}, 'app-redis/redis.slowlog', None, None),
    'disk_full': ({'gradual_degradation'}, 'host.disk', '-e remediation_action=clean_disk', None),
    'tls_expired': ({'gradual_degradation'}, 'net.tls_expiry', '-e remediation_action=apply_cert', None),
    'dns_failure': ({'partial_failures'}, 'net.dns', None, None),
    # issue 10: the first action must fix what the diagnosis names
    'disk_deleted_open': ({'gradual_degradation'}, 'app-backend/host.disk', '-e remediation_action=clean_disk', None),
    'redis_full_unmarked': ({'gradual_degradation'}, 'app-redis/redis.memory', '-e remediation_action=raise_maxmemory', None),
    'pool_foreign': ({'gradual_degradation'}, 'app-db/pg.connections', '-e pg_terminate_application_names=batch-exporter', None),
    # issue 21: a Redis out of client slots is up: kill the holders' connections (kill_clients), never "unreachable -> restart"
    'redis_maxclients': ({'gradual_degradation'}, 'app-redis/redis.clients',
                         '-e remediation_action=kill_clients -e incident_id', None),
    # issue 21: a Redis whose save fails refuses writes and PING (MISCONF): escalate naming the directory, no restart
    'redis_save_failing': ({'gradual_degradation'}, 'app-redis/redis.persistence', '-e area=redis', None),
    # issue 21: the backend's own process at its open-files limit (a descriptor leak): restart the backend
    'fd_leak': ({'gradual_degradation'}, 'app-backend/host.fds', '-e remediation_action=restart', None),
    # issue 21: vacuum held back by an idle REPEATABLE READ snapshot of the app role: kill_query of exactly its pid
    'vacuum_held': ({'gradual_degradation'}, 'app-db/pg.vacuum', '-e remediation_action=kill_query', None),
    # issue 20 (live over stale): tls_renewed triaged seconds after db_password_rotated was healed: the auth failures
    # in pg.log are still fresh but every application error has recovered; the certificate is what needs doing
    'tls_renewed_after_rotation': ({'gradual_degradation'}, 'net.tls_expiry', '-e remediation_action=apply_cert', None),
}
AVAILABLE = sorted(name for name in EXPECTED if os.path.exists(os.path.join(FIXTURES, name + '.json')))


def load(name):
    with open(os.path.join(FIXTURES, name + '.json')) as handle:
        return json.load(handle)


def test_fixtures_exist_for_the_issue_faults():
    assert {'healthy', 'bad_deploy', 'backend_down', 'db_lock', 'pool_exhaustion'} <= set(AVAILABLE)


@pytest.mark.parametrize('name', AVAILABLE)
def test_captured_findings(name):
    patterns, evidence, action, floor = EXPECTED[name]
    findings = load(name)
    doc = dx.diagnose(findings, CTX)
    if patterns is None:
        assert doc['healthy'] is True and doc['hypotheses'] == [] and doc['severity_floor'] is None
        return
    top = doc['hypotheses'][0]
    assert top['pattern'] in patterns, [(h['pattern'], h['confidence'], h['likely_cause']) for h in doc['hypotheses']]
    assert any(evidence in key for key in top['evidence']), top['evidence']
    if action:
        assert action in top['first_action'], top['first_action']
    if floor:
        assert doc['severity_floor'] == floor, doc['severity_reasons']
    bad = {dx.key(f) for f in findings if f['status'] in ('warn', 'crit')}
    for hyp in doc['hypotheses']:
        assert set(hyp['evidence']) & bad


def test_a_restart_of_the_same_image_is_not_a_bad_deploy():
    """After a heal the backend was recreated with the same image inside the window: not an error spike first."""
    for name in ('db_lock', 'pool_exhaustion', 'backend_down'):
        if name in AVAILABLE:
            doc = dx.diagnose(load(name), CTX)
            spikes = [h for h in doc['hypotheses'] if h['pattern'] == 'error_spike_after_deploy']
            assert all(h['confidence'] < doc['hypotheses'][0]['confidence'] for h in spikes)


@pytest.mark.skipif('backend_down' not in AVAILABLE, reason='fixture missing')
def test_down_strength_reads_combined_container_evidence():
    findings = {dx.key(f): f for f in load('backend_down')}
    assert classify.down_strength(findings['app-backend/health.container'], ['backend']) == 3
    assert classify.down_strength(findings['app-backend/health.endpoint'], ['backend']) == 3
    assert classify.down_strength(findings['app-backend/health.container'], ['proxy']) == 0


@pytest.mark.skipif('db_lock' not in AVAILABLE, reason='fixture missing')
def test_kill_query_names_the_lock_holder_however_young_the_lock():
    """The first action ends the root of the lock chain pg.locks found (pid 2113, 48 s old in the fixture): a lock
    found at once is younger than pg_terminate_min_age's 30 s, and the plan would otherwise select nothing."""
    top = dx.diagnose(load('db_lock'), CTX)['hypotheses'][0]
    assert top['action'] == 'kill_query'
    assert top['first_action'].endswith('-e service=db -e pg_terminate_pids=2113 -e pg_terminate_min_age=48'), top
    young = [dict(f, evidence=dict(f['evidence'], blocking=[dict(b, xact_age_s=16.4, query_age_s=16.4)
                                                            for b in f['evidence']['blocking']]))
             if f['check'] == 'pg.locks' else f for f in load('db_lock')]
    assert dx.diagnose(young, CTX)['hypotheses'][0]['first_action'].endswith('pg_terminate_min_age=16')


def unit_finding(active, sub, result='success'):
    """health.container of a systemd unit as area_health writes it (fleet hosts)."""
    return {'check': 'health.container', 'host': 'web-1', 'service': 'backend', 'status': 'crit',
            'summary': 'app-backend.service %s (%s, result %s, 0 restarts)' % (active, sub, result),
            'evidence': {'unit': 'app-backend.service',
                         'properties': {'ActiveState': active, 'SubState': sub, 'NRestarts': '0', 'Result': result,
                                        'ExecMainStatus': '0'}}}


def test_down_strength_reads_the_state_of_a_systemd_unit():
    assert classify.down_strength(unit_finding('inactive', 'dead'), ['backend']) == 3
    assert classify.down_strength(unit_finding('failed', 'failed', 'exit-code'), ['backend']) == 3
    assert classify.down_strength(unit_finding('activating', 'auto-restart', 'exit-code'), ['backend']) == 2
    assert classify.down_strength(unit_finding('activating', 'start'), ['backend']) == 2
    assert classify.down_strength(unit_finding('inactive', 'dead'), ['proxy']) == 0
    assert classify.down_strength(dict(unit_finding('active', 'running'), status='ok'), ['backend']) == 0
    doc = dx.diagnose([unit_finding('inactive', 'dead')], dict(CTX, backends=['web-1']))
    assert doc['hypotheses'][0]['pattern'] == 'backend_down', doc['hypotheses']


def resources_finding(exceeded, cpu=12.0, memory_pct=40.0):
    """container.resources as area_network.evaluate_container_resources writes it."""
    return {'check': 'container.resources', 'host': 'app-backend', 'service': 'backend', 'status': 'warn',
            'summary': 'app-backend CPU %s%%, memory 100.0 MiB of 256.0 MiB limit (%s%%), net n/a (host network)'
                       % (cpu, memory_pct),
            'evidence': {'container': 'app-backend', 'cpu_pct': cpu, 'online_cpus': 2, 'cpu_pct_of_capacity': cpu / 2,
                         'memory_used': 100 * 2 ** 20, 'memory_limit': 256 * 2 ** 20, 'memory_pct': memory_pct,
                         'network': None, 'pids': 12, 'exceeded': exceeded}}


def test_busy_cpu_is_resource_exhaustion_and_full_memory_a_leak():
    cpu = dx.diagnose([resources_finding(['cpu'], cpu=190.0)], CTX)
    assert [h['pattern'] for h in cpu['hypotheses']] == ['gradual_degradation'], cpu['hypotheses']
    assert cpu['hypotheses'][0]['likely_cause'].startswith('Resource exhaustion: app-backend CPU 190.0%')
    memory = dx.diagnose([resources_finding(['memory'], memory_pct=93.0)], CTX)
    assert memory['hypotheses'][0]['pattern'] == 'memory_growth' and memory['hypotheses'][0]['action'] == 'restart'
    assert 'gradual_degradation' not in [h['pattern'] for h in memory['hypotheses']]


@pytest.mark.skipif('pool_exhaustion' not in AVAILABLE, reason='fixture missing')
def test_a_failing_readiness_behind_a_live_endpoint_is_not_down():
    findings = {dx.key(f): f for f in load('pool_exhaustion')}
    assert classify.down_strength(findings['app-backend/health.endpoint'], ['backend']) == 0
