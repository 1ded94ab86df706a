"""The one-task-per-host probe: settings of the roles, the concurrent runner, recording every host, triage decisions."""
import os
import threading
import time

import pytest
import yaml
from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from ansible_collections.sre.incident_response.plugins.action.finding import from_probe_results
from ansible_collections.sre.incident_response.plugins.action import probe as probe_action
from ansible_collections.sre.incident_response.plugins.module_utils import probe_runner
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import triage
from ansible_collections.sre.incident_response.plugins.plugin_utils import settings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AREAS = ['health', 'app_logs', 'changes', 'postgres', 'redis', 'network', 'host', 'trends']


def _settings(role, **host_vars):
    loader = DataLoader()
    return settings.role_settings(role, host_vars, Templar(loader=loader, variables=host_vars), loader)


# --- settings: the role's defaults, overridden by the host's variables, typed by its argument spec -------------

@pytest.mark.parametrize('role', AREAS)
def test_settings_are_every_default_of_the_role_typed_by_its_argument_spec(role):
    values = _settings(role)
    with open(os.path.join(ROOT, 'roles', role, 'defaults', 'main.yml')) as handle:
        defaults = yaml.safe_load(handle)
    assert set(values) == set(defaults)
    with open(os.path.join(ROOT, 'roles', role, 'meta', 'argument_specs.yml')) as handle:
        spec = yaml.safe_load(handle)['argument_specs']['main']['options']
    for key, value in values.items():
        kind = spec[key]['type']
        expected = {'int': int, 'float': float, 'bool': bool, 'str': str, 'list': list, 'dict': dict, 'path': str}[kind]
        assert isinstance(value, expected), (key, value)


def test_host_variables_override_defaults_and_templates_see_them():
    values = _settings('health', incident_window='30m', health_latency_crit_ms='8000')
    assert values['health_window'] == '30m'  # the default "{{ incident_window | default('15m') }}", templated
    assert values['health_latency_crit_ms'] == 8000.0  # a string from the inventory, typed by the spec
    assert _settings('health')['health_window'] == '15m'


def test_bad_settings_name_the_role_and_the_problem():
    with pytest.raises(AnsibleActionFail, match='health role: health_latency_warn_ms must not exceed health_latency_crit_ms'):
        _settings('health', health_latency_warn_ms=9000)
    with pytest.raises(AnsibleActionFail, match='redis role: redis_window must be a duration such as 15m, got soon'):
        _settings('redis', redis_window='soon')
    with pytest.raises(AnsibleActionFail, match='postgres role: .*postgres_connections_warn_pct'):
        _settings('postgres', postgres_connections_warn_pct='many')
    with pytest.raises(AnsibleActionFail, match='network role: TLS endpoint without a port'):
        _settings('network', incident_tls_endpoints=[{'host': '127.0.0.1'}])


# --- the module arguments each area gets ---------------------------------------------------------------------

SERVICES = [
    {'name': 'backend', 'kind': 'backend', 'deploy': {'type': 'docker', 'container': 'app-backend'}},
    {'name': 'db', 'kind': 'postgres', 'deploy': {'type': 'systemd', 'unit': 'postgresql@15-main'},
     'postgres': {'port': 25432, 'password_var': 'db_password'}},
    {'name': 'cache', 'kind': 'redis', 'redis': {'port': 26379, 'tls': True, 'password_var': 'cache_password'}},
]


def test_area_arguments_follow_the_services_of_the_host():
    secrets = {'db_password': 's3cret-db', 'cache_password': 's3cret-cache'}
    health = probe_action.health_args(_settings('health'), SERVICES, 'web-1')
    assert [s['name'] for s in health['services']] == ['backend', 'db']  # those with deploy
    logs = probe_action.app_logs_args(_settings('app_logs'), SERVICES, 'web-1')
    assert [s['name'] for s in logs['services']] == ['backend']
    assert logs['thresholds']['error_rate_crit_pct'] == 25.0
    pg = probe_action.postgres_args(_settings('postgres'), SERVICES, 'web-1', secrets.get)
    assert len(pg) == 1 and pg[0]['login_port'] == 25432 and pg[0]['login_password'] == 's3cret-db'
    assert 'container' not in pg[0]  # a systemd unit has no container
    rd = probe_action.redis_args(_settings('redis'), SERVICES, 'web-1', secrets.get)
    assert rd[0]['tls'] is True and rd[0]['login_password'] == 's3cret-cache'
    assert probe_action.app_logs_args(_settings('app_logs'), SERVICES[1:], 'db-1') is None  # no backend, no logs
    assert probe_action.health_args(_settings('health', health_check_state=False), SERVICES, 'web-1') is None


# --- the runner: areas concurrently, a failure is a finding --------------------------------------------------

def _job(area, run, label=None):
    return {'area': area, 'label': label or area, 'host': 'web-1', 'service': None, 'run': run,
            'module': probe_runner.AreaModule(None, {})}


def test_areas_run_concurrently_and_a_failing_area_is_an_unknown_finding():
    started, barrier = [], threading.Barrier(3, timeout=5)

    def slow(module):
        barrier.wait()  # only passes when three areas run at the same time
        started.append(time.monotonic())
        return {'findings': [{'check': 'health.container', 'host': 'web-1', 'status': 'ok', 'summary': 'up'}]}

    def broken(module):
        module.fail_json(msg='window: bad duration')

    def crashing(module):
        raise RuntimeError('boom')

    out = probe_runner.run_jobs([_job('health', slow), _job('postgres', slow, 'postgres:db'), _job('redis', slow, 'redis:c'),
                                 _job('app_logs', broken), _job('changes', crashing)], workers=8)
    assert len(started) == 3
    by_check = dict((f['check'], f) for f in out['findings'] if f['status'] == 'unknown')
    assert by_check['app.errors']['summary'] == 'app_logs probe failed: window: bad duration'
    assert 'RuntimeError: boom' in by_check['deploy.recent']['summary']
    assert out['areas']['app_logs']['error'] == 'window: bad duration'
    assert set(out['areas']) == {'health', 'postgres:db', 'redis:c', 'app_logs', 'changes'}


# --- recording every host's result at once ------------------------------------------------------------------

def test_every_hosts_result_is_recorded_and_an_unreachable_host_is_a_finding():
    hostvars = {
        'web-1': {'__p': {'findings': [{'check': 'app.errors', 'status': 'crit', 'summary': 'x'}],
                          'evidence_files': {'app.errors-backend.log': 'lines'}}},
        'db-1': {'__p': {'unreachable': True, 'msg': 'Failed to connect to the host via ssh: refused'}},
        'cache-1': {'__p': {'failed': True, 'msg': 'MODULE FAILURE'}},
        'skipped-1': {'__p': {'skipped': True}},
        'never-1': {},
    }
    findings, evidence = from_probe_results(list(hostvars), hostvars, '__p')
    by_host = dict((f['host'], f) for f in findings)
    assert by_host['web-1']['check'] == 'app.errors'  # the host comes from whose result it is
    assert by_host['db-1']['check'] == 'host.reachability' and by_host['db-1']['status'] == 'crit'
    assert 'refused' in by_host['db-1']['summary']
    assert by_host['cache-1']['status'] == 'unknown' and 'MODULE FAILURE' in by_host['cache-1']['summary']
    assert set(by_host) == {'web-1', 'db-1', 'cache-1'}
    assert evidence == {'web-1': {'app.errors-backend.log': 'lines'}}


# --- decisions in Python ------------------------------------------------------------------------------------

INCIDENT = {'severity': 'SEV2', 'severity_source': 'default',
            'policy': {'status_page': True, 'escalation_text': 'page on-call', 'update_minutes': 30, 'channel': '#incidents'}}
DEPLOY = {'healthy': False, 'affected_services': ['backend'], 'summary': 's', 'context': {'inventory': 'inventory/lab'},
          'hypotheses': [{'rank': 1, 'pattern': 'error_spike_after_deploy', 'confidence': 0.95, 'likely_cause': 'bug',
                          'evidence': ['web-1/deploy.recent'], 'first_action': 'roll back', 'action': 'rollback',
                          'service': 'backend'}]}


def test_rollback_is_recommended_only_for_a_confident_deploy_spike():
    assert triage.decide(DEPLOY, INCIDENT)['mitigate'] is True
    assert triage.decide(DEPLOY, INCIDENT, mitigate_confidence=0.99)['mitigate'] is False
    other = dict(DEPLOY, hypotheses=[dict(DEPLOY['hypotheses'][0], pattern='memory_growth')])
    assert triage.decide(other, INCIDENT)['mitigate'] is False
    assert triage.decide({'hypotheses': []}, INCIDENT)['mitigate'] is False


def test_healthy_and_undeclared_tells_no_one_but_a_declared_severity_does():
    healthy = {'healthy': True, 'hypotheses': []}
    assert triage.decide(healthy, INCIDENT)['deliver'] is False
    assert triage.decide(healthy, dict(INCIDENT, severity_source='explicit'))['deliver'] is True
    assert triage.decide(healthy, INCIDENT, deliver=True)['deliver'] is True
    assert triage.decide(DEPLOY, INCIDENT)['kinds'] == ['declared', 'statuspage']
    assert triage.decide(DEPLOY, dict(INCIDENT, policy={'status_page': 'false'}), announced=True)['kinds'] == ['update']


def test_summary_lists_findings_not_ok_only_when_no_pattern_matched():
    lines = triage.summary('INC-1', INCIDENT, DEPLOY, incident_path='/x/INC-1')
    assert lines[0] == 'Incident INC-1 - SEV2 (page on-call; updates every 30 min in #incidents)'
    assert lines[1] == 'Affected services: backend'
    assert lines[2].startswith('1. error_spike_after_deploy (confidence 0.95): bug')
    assert lines[-1].startswith('Next: ansible-playbook playbooks/sev2.yml -i inventory/lab -e incident_id=INC-1')
    findings = [{'host': 'b', 'check': 'pg.locks', 'status': 'warn', 'summary': 'w'},
                {'host': 'a', 'check': 'host.disk', 'status': 'crit', 'summary': 'c'},
                {'host': 'a', 'check': 'app.errors', 'status': 'ok', 'summary': 'o'}]
    none = triage.summary('INC-1', INCIDENT, {'healthy': False, 'hypotheses': []}, findings=findings)
    i = none.index('No quick-reference pattern matched; findings not ok:')
    assert none[i + 1:i + 3] == ['CRIT a/host.disk: c', 'WARN b/pg.locks: w']
    assert 'HEALTHY: fine' in triage.summary('INC-1', INCIDENT, {'healthy': True, 'summary': 'fine'})
    gone = [{'host': 'web-2', 'check': 'host.reachability', 'status': 'crit', 'summary': 'host unreachable'}]
    assert 'Not probed, unreachable by Ansible (host.reachability): web-2' in triage.summary('INC-1', INCIDENT, DEPLOY, findings=gone)
    assert triage.stats('INC-1', INCIDENT, DEPLOY) == {
        'incident_id': 'INC-1', 'severity': 'SEV2', 'healthy': False, 'top_pattern': 'error_spike_after_deploy',
        'first_action': 'roll back', 'remediation_action': 'rollback', 'service': 'backend'}
    assert triage.stats('INC-1', INCIDENT, {})['top_pattern'] == ''


def test_a_failed_areas_finding_keeps_the_findings_contract():
    """failure_finding emits evidence `area`: findings.validate must accept it (one contract), for every area."""
    from ansible_collections.sre.incident_response.plugins.module_utils import findings as F
    for area in probe_runner.AREA_CHECKS:
        finding = probe_runner.failure_finding(area, 'web-1', None, 'connection refused')
        assert finding['status'] == 'unknown' and finding['evidence'] == {'area': area}
        assert F.validate(finding) == [], (area, F.validate(finding))
    # the area is the evidence of a failed probe only: a finding that is not unknown does not carry it
    ok = F.make_finding('app.errors', 'web-1', None, 'ok', 'fine', {'area': 'app_logs'})
    assert F.validate(ok) == ['app.errors: evidence.area is not a declared evidence key']
