"""Diagnosis rules: findings -> ranked hypotheses (quick-reference patterns), each with evidence and a first action."""
import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import diagnosis as dx
from ansible_collections.sre.incident_response.plugins.module_utils import findings as contract

CTX = {'incident_id': 'INC-T-1', 'inventory': 'inventory/lab', 'playbook_dir': 'playbooks',
       'backends': ['app-backend'], 'endpoints': ['/api/orders', '/api/products', '/api/sessions', '/api/payments'],
       'backend_service': 'backend', 'tls_service': 'proxy'}


def f(host, check, st, summary='', service=None, **evidence):
    """A finding shaped as the probes build them: its evidence keys are the contract's (findings.EVIDENCE)."""
    out = {'host': host, 'check': check, 'status': st, 'summary': summary or '%s %s' % (check, st),
           'service': service, 'evidence': evidence}
    assert contract.validate(out) == [], contract.validate(out)
    return out


def healthy():
    return [
        f('app-backend', 'health.endpoint', 'ok', 'backend liveness: HTTP 200 in 3 ms; 3 of 3 endpoints healthy', 'backend'),
        f('app-backend', 'health.container', 'ok', 'app-backend running, healthy', 'backend', running=True, status='running'),
        f('app-backend', 'app.errors', 'ok', '0 errors in 120 requests', 'backend'),
        f('app-backend', 'app.process', 'ok', 'uvicorn running', 'backend'),
        f('app-backend', 'deploy.recent', 'ok', 'no deploy in the window', 'backend'),
        f('app-db', 'pg.connectivity', 'ok', 'accepting connections', 'db'),
        f('app-db', 'pg.connections', 'ok', '5 of 100 connections', 'db'),
        f('app-db', 'pg.locks', 'ok', 'no blocked sessions', 'db'),
        f('app-db', 'pg.long_queries', 'ok', 'none over 30 s', 'db'),
        f('app-redis', 'redis.memory', 'ok', '1.2 MiB of 64 MiB', 'redis'),
        f('app-redis', 'redis.slowlog', 'ok', 'slowlog empty', 'redis'),
        f('app-backend', 'dependency.reachability', 'ok', 'payments HTTP 200', 'payments'),
    ]


def replace(findings, *new):
    keys = {dx.key(n) for n in new}
    return [x for x in findings if dx.key(x) not in keys] + list(new)


def top(doc):
    assert doc['hypotheses'], doc
    return doc['hypotheses'][0]


def test_healthy_has_no_hypotheses_and_no_floor():
    doc = dx.diagnose(healthy(), CTX)
    assert doc['healthy'] is True
    assert doc['hypotheses'] == []
    assert doc['severity_floor'] is None
    assert 'no incident evident' in doc['summary']


def test_recent_deploy_alone_is_not_a_symptom():
    deploy = f('app-backend', 'deploy.recent', 'warn', 'backend deployed 3 min ago', 'backend', deploy_in_window=True)
    doc = dx.diagnose(replace(healthy(), deploy), CTX)
    assert doc['healthy'] is True and doc['hypotheses'] == [] and doc['severity_floor'] is None
    assert doc['recent_deploys'][0]['key'] == 'app-backend/deploy.recent'


def test_host_package_changes_are_a_change_not_a_symptom():
    """A freshly built lab: packages installed minutes ago on every host, fresh containers; nothing broken."""
    changes = [f(h, 'host.changes', 'warn', '50 package changes in the last 15m (docker.io, ...)', None,
                 packages=['docker.io', 'chromium']) for h in ('app-backend', 'app-db', 'app-redis')]
    fresh = [f(h, 'deploy.recent', 'warn', '%s deployed 29 s ago, inside the 15m window; previous unknown' % s, s,
               deploy_in_window=True) for h, s in (('app-backend', 'backend'), ('app-db', 'db'), ('app-redis', 'redis'))]
    doc = dx.diagnose(replace(healthy(), *(changes + fresh)), CTX)
    assert doc['healthy'] is True, doc['summary']
    assert doc['affected_services'] == [] and doc['hypotheses'] == [] and doc['severity_floor'] is None
    assert 'no incident evident' in doc['summary']


def test_no_findings_is_not_healthy():
    doc = dx.diagnose([], CTX)
    assert doc['healthy'] is None and doc['hypotheses'] == []


def test_bad_deploy_ranks_error_spike_first_with_rollback():
    findings = replace(healthy(),
                       f('app-backend', 'deploy.recent', 'warn', 'backend image app-backend:1.1.0 started 40 s ago (was 1.0.0)',
                         'backend', deploy_in_window=True,
                         deploys=[{'container': 'app-backend', 'image': 'app-backend:1.1.0', 'service': 'backend',
                                   'previous_image': 'app-backend:1.0.0', 'deployed_in_window': True}]),
                       f('app-backend', 'app.errors', 'crit', '52 errors in 140 requests (37%); failing: /api/orders', 'backend',
                         errors=52, failing_paths=['/api/orders']))
    doc = dx.diagnose(findings, CTX)
    hyp = top(doc)
    assert hyp['pattern'] == 'error_spike_after_deploy'
    assert hyp['confidence'] >= 0.9
    assert hyp['first_action'] == ('ansible-playbook playbooks/remediate.yml -i inventory/lab -e remediation_action=rollback '
                                   '-e incident_id=INC-T-1 -e service=backend')
    assert 'apply=true' in hyp['then'] and 'approved_by=' in hyp['then']
    assert set(hyp['evidence']) == {'app-backend/deploy.recent', 'app-backend/app.errors'}
    assert doc['severity_floor'] == 'SEV2'
    assert [h['rank'] for h in doc['hypotheses']] == list(range(1, len(doc['hypotheses']) + 1))


def test_release_symlink_switch_is_a_code_change_like_a_new_image():
    """A fleet host deploys by switching /opt/app/current to a new release directory (area_changes.release_item)."""
    deploy = {'release_link': '/opt/app/current', 'target': '/opt/app/releases/1.1.0', 'deployed_in_window': True,
              'previous_release': '1.0.0', 'releases': ['1.1.0', '1.0.0'], 'service': 'backend'}
    findings = replace(healthy(),
                       f('app-backend', 'deploy.recent', 'warn', 'backend: /opt/app/releases/1.1.0 deployed 24 s ago', 'backend',
                         deploys=[deploy], deploy_in_window=True),
                       f('app-backend', 'app.errors', 'crit', '/api/orders: 30 errors (500) in 15m', 'backend',
                         failing_paths=['/api/orders']))
    hyp = top(dx.diagnose(findings, CTX))
    assert hyp['pattern'] == 'error_spike_after_deploy' and hyp['confidence'] >= 0.9
    # the same link re-pointed at the oldest release (nothing older beside it) is not a new release
    back = dict(deploy, target='/opt/app/releases/1.0.0', previous_release=None)
    findings = replace(findings, f('app-backend', 'deploy.recent', 'warn', 'backend: 1.0.0 deployed 5 s ago', 'backend',
                                   deploys=[back], deploy_in_window=True))
    assert top(dx.diagnose(findings, CTX))['confidence'] < 0.9 or top(dx.diagnose(findings, CTX))['pattern'] != \
        'error_spike_after_deploy'


def test_restart_in_window_without_image_change_does_not_outrank_the_db_cause():
    findings = replace(healthy(),
                       f('app-backend', 'deploy.recent', 'warn', 'backend started 4 min ago', 'backend', deploy_in_window=True,
                         deploys=[{'container': 'app-backend', 'image': 'app-backend:1.0.0', 'service': 'backend',
                                   'previous_image': None, 'deployed_in_window': True}]),
                       f('app-db', 'pg.connections', 'crit', '98 of 100 connections used (60 idle in transaction)', 'db',
                         holders=[{'application_name': 'app-backend', 'role': 'app', 'client_addr': '127.0.0.1',
                                   'state': 'idle in transaction', 'count': 60, 'oldest_s': 300,
                                   'past_threshold': 60, 'pids': [101, 102]}]),
                       f('app-backend', 'app.errors', 'crit', '30 errors: QueuePool limit reached', 'backend'))
    doc = dx.diagnose(findings, CTX)
    assert top(doc)['pattern'] == 'gradual_degradation'
    assert 'app-db/pg.connections' in top(doc)['evidence']
    assert '-e remediation_action=restart' in top(doc)['first_action'] and 'service=backend' in top(doc)['first_action']


def test_backend_down_when_container_is_not_running():
    findings = replace(healthy(),
                       f('app-backend', 'health.container', 'crit', 'app-backend exited (code 137)', 'backend',
                         running=False, status='exited'),
                       f('app-backend', 'health.endpoint', 'crit', 'backend liveness: connection refused', 'backend'))
    doc = dx.diagnose(findings, CTX)
    hyp = top(doc)
    assert hyp['pattern'] == 'backend_down' and hyp['confidence'] >= 0.9
    assert '-e remediation_action=restart' in hyp['first_action']
    assert doc['severity_floor'] == 'SEV1'


def test_backend_down_from_connection_refused_only():
    findings = replace(healthy(), f('app-backend', 'health.endpoint', 'crit',
                                    'backend liveness: URLError connection refused; 0 of 3 endpoints healthy', 'backend'))
    assert top(dx.diagnose(findings, CTX))['pattern'] == 'backend_down'


@pytest.mark.parametrize('check,summary', [
    ('pg.locks', '3 sessions blocked by pid 4242 for 45 s'),
    ('pg.long_queries', '2 queries running longer than 30 s (max 95 s)'),
])
def test_db_lock_or_long_query_is_slow_responses_with_db_evidence(check, summary):
    findings = replace(healthy(), f('app-db', check, 'crit', summary, 'db'),
                       f('app-backend', 'health.endpoint', 'warn', 'backend readiness: HTTP 200 in 2400 ms (slow)', 'backend'))
    hyp = top(dx.diagnose(findings, CTX))
    assert hyp['pattern'] == 'slow_responses'
    assert 'app-db/%s' % check in hyp['evidence']
    assert '-e remediation_action=kill_query' in hyp['first_action'] and 'service=db' in hyp['first_action']


def test_pool_exhaustion_is_gradual_degradation_with_db_evidence():
    findings = replace(healthy(), f('app-db', 'pg.connections', 'crit', '95 of 100 connections (90 idle in transaction)', 'db'))
    hyp = top(dx.diagnose(findings, CTX))
    assert hyp['pattern'] == 'gradual_degradation'
    assert hyp['evidence'][0] == 'app-db/pg.connections'


def test_dependency_down_is_partial_failures():
    findings = replace(healthy(),
                       f('app-backend', 'dependency.reachability', 'crit', 'payments: connection refused', 'payments'),
                       f('app-backend', 'health.endpoint', 'warn', 'backend readiness: status=degraded (payments: fail)', 'backend'),
                       f('app-backend', 'app.errors', 'warn', '12 errors; failing: /api/payments', 'backend',
                         failing_paths=['/api/payments']))
    doc = dx.diagnose(findings, CTX)
    hyp = top(doc)
    assert hyp['pattern'] == 'partial_failures'
    assert 'app-backend/dependency.reachability' in hyp['evidence']
    assert doc['severity_floor'] == 'SEV2'  # crit on the (only) backend host


def test_endpoint_specific_errors_are_partial_failures():
    findings = replace(healthy(), f('app-backend', 'app.errors', 'crit', '40 errors in 120 requests; failing: /api/products',
                                    'backend', by_path={'/api/products': 40}))
    hyp = top(dx.diagnose(findings, CTX))
    assert hyp['pattern'] == 'partial_failures'
    assert '/api/products' in hyp['likely_cause']


@pytest.mark.parametrize('finding,confidence', [
    (f('app-backend', 'container.resources', 'crit', 'app-backend memory 240 MiB of 256 MiB (94%)', 'backend', memory_pct=94), 0.85),
    (f('app-backend', 'health.container', 'warn', 'app-backend restarted 3 times, OOM-killed', 'backend', oom_killed=True,
       running=True), 0.9),
])
def test_memory_growth(finding, confidence):
    hyp = top(dx.diagnose(replace(healthy(), finding), CTX))
    assert hyp['pattern'] == 'memory_growth' and hyp['confidence'] == confidence
    assert '-e remediation_action=restart' in hyp['first_action']


@pytest.mark.parametrize('finding,action,service', [
    (f('app-redis', 'redis.memory', 'crit', 'used 63.9 MiB of 64 MiB (99.8%), noeviction', 'redis'), 'flush_keys', 'redis'),
    (f('app-backend', 'host.disk', 'crit', '/var/log/app 97% used', 'backend'), 'clean_disk', 'backend'),
    (f('app-backend', 'net.tls_expiry', 'crit', 'api: certificate expired 2 days ago', 'api'), 'apply_cert', 'proxy'),
])
def test_resource_exhaustion_is_gradual_degradation(finding, action, service):
    hyp = top(dx.diagnose(replace(healthy(), finding), CTX))
    assert hyp['pattern'] == 'gradual_degradation'
    assert '-e remediation_action=%s' % action in hyp['first_action'] and '-e service=%s' % service in hyp['first_action']


def test_redis_slowlog_is_slow_responses():
    hyp = top(dx.diagnose(replace(healthy(), f('app-redis', 'redis.slowlog', 'warn', '10 slow commands (max 250 ms)', 'redis')), CTX))
    assert hyp['pattern'] == 'slow_responses' and 'area=redis' in hyp['first_action']


def test_every_hypothesis_cites_a_non_ok_finding():
    findings = replace(healthy(),
                       f('app-db', 'pg.locks', 'crit', 'blocked', 'db'),
                       f('app-redis', 'redis.memory', 'warn', '92%', 'redis'),
                       f('app-backend', 'app.errors', 'crit', 'errors; failing: /api/orders', 'backend', failing_paths=['/api/orders']),
                       f('app-backend', 'net.dns', 'crit', 'api.lab.test: NXDOMAIN', None))
    doc = dx.diagnose(findings, CTX)
    bad = {dx.key(x) for x in findings if x['status'] in ('warn', 'crit')}
    assert doc['hypotheses']
    for hyp in doc['hypotheses']:
        assert hyp['pattern'] in dx.PATTERNS
        assert set(hyp['evidence']) & bad, hyp
        assert hyp['first_action'].startswith('ansible-playbook playbooks/')
        assert 0 < hyp['confidence'] < 1
    confidences = [h['confidence'] for h in doc['hypotheses']]
    assert confidences == sorted(confidences, reverse=True)


def test_commands_quote_and_omit_missing_parts():
    cmd = dx.Commands(incident_id=None, inventory='inv dir/prod', playbook_dir='pb')
    assert cmd.remediate('restart', 'back end') == "ansible-playbook pb/remediate.yml -i 'inv dir/prod' -e remediation_action=restart -e service='back end'"
    assert cmd.investigate('db') == "ansible-playbook pb/investigate.yml -i 'inv dir/prod' -e area=db"


def test_unknown_only_is_healthy_with_a_note():
    doc = dx.diagnose(replace(healthy(), f('app-db', 'pg.connectivity', 'unknown', 'psycopg2 missing', 'db')), CTX)
    assert doc['healthy'] is True and doc['unknown'] == ['app-db/pg.connectivity']
    assert '1 could not run' in doc['summary']


def test_errors_after_a_rollback_do_not_recommend_rolling_back_to_the_bad_release():
    """A rollback is a deploy of the known-good image: errors after it (Redis full, say) are not new code's,
    and "rolling back" would bring the bad release again (seen on the lab: rollback to 1.1.0 recommended)."""
    rollback = {'container': 'app-backend', 'image': 'app-backend:1.0.0', 'previous_image': 'app-backend:1.1.0',
                'deployed_in_window': True, 'rollback': True, 'service': 'backend'}
    # the proxy on the same host was recreated too (a new certificate): not the backend's code
    proxy = {'container': 'app-proxy', 'image': 'incident-lab/base:1', 'previous_image': None,
             'deployed_in_window': True, 'rollback': False, 'service': 'proxy'}
    findings = replace(healthy(),
                       f('app-backend', 'deploy.recent', 'warn', 'backend: app-backend:1.0.0 rolled back to 100 s ago',
                         'backend', deploy_in_window=True, deploys=[rollback, proxy]),
                       f('app-backend', 'app.errors', 'crit', '/api/sessions: 7 errors (500), failing now', 'backend',
                         errors=7, failing_paths=['/api/sessions']))
    doc = dx.diagnose(findings, CTX)
    assert all(h['pattern'] != 'error_spike_after_deploy' for h in doc['hypotheses']), doc['hypotheses']
    assert all(h.get('action') != 'rollback' for h in doc['hypotheses'])
    # the same deploy that is not a rollback is new code
    rollback['rollback'] = False
    assert top(dx.diagnose(findings, CTX))['pattern'] == 'error_spike_after_deploy'


# --- the host's own view (areas/host.py): OOM kills, failed units --------------------------------------------

def test_oom_kills_of_the_backend_from_the_kernel_are_its_own_evidence_of_memory_exhaustion():
    oom = f('app-backend', 'host.oom', 'crit', 'backend (app-backend): 1 OOM kill in the window (python3 pid 4242)',
            'backend', kills=[{'ts': 1.0, 'pid': 4242, 'process': 'python3', 'cgroup': '/docker/x',
                               'constraint': 'CONSTRAINT_MEMCG', 'anon_rss_kb': 64000, 'service': 'backend'}],
            kills_in_window=1, implicated=['backend'], sources={'dmesg': 'read'}, window_s=900)
    doc = dx.diagnose(replace(healthy(), oom), CTX)
    top = doc['hypotheses'][0]
    assert top['pattern'] == 'memory_growth' and top['service'] == 'backend' and top['action'] == 'restart'
    assert top['confidence'] == 0.9 and 'app-backend/host.oom' in top['evidence']
    assert 'remediation_action=restart' in top['first_action']


def test_a_host_wide_oom_kill_names_no_service_and_makes_no_memory_hypothesis():
    oom = f('app-backend', 'host.oom', 'warn', 'host out of memory: 1 kill in the window (java pid 777)', None,
            kills_in_window=1, implicated=[], sources={'dmesg': 'read'}, window_s=900)
    doc = dx.diagnose(replace(healthy(), oom), CTX)
    assert not [h for h in doc['hypotheses'] if h['pattern'] == 'memory_growth']


def fds_item(pid, process, service, count, limit):
    return {'pid': pid, 'process': process, 'service': service, 'fds': count, 'fd_limit': limit,
            'fd_pct': round(100.0 * count / limit, 1), 'tcp': {}, 'tcp_total': 0}


def fds_finding(host, items, status='crit', service=None):
    return f(host, 'host.fds', status, '; '.join('%s pid %d: %d of %d open files' % (
        i['process'], i['pid'], i['fds'], i['fd_limit']) for i in items), service, top_fds=items, top_tcp=[],
        service_processes=[], tcp_states={}, processes=120, unreadable=0, truncated=False, warn_pct=80, crit_pct=95)


def test_a_backend_process_at_its_open_files_limit_is_a_descriptor_leak_restart_the_backend():
    fds = fds_finding('app-backend', [fds_item(4242, 'python3', 'backend', 4096, 4096)], service='backend')
    slow = f('app-backend', 'health.endpoint', 'crit', 'backend liveness: TimeoutError: timed out', 'backend')
    doc = dx.diagnose(replace(healthy(), fds, slow), CTX)
    top = doc['hypotheses'][0]
    assert top['pattern'] == 'gradual_degradation' and top['action'] == 'restart' and top['service'] == 'backend'
    assert top['confidence'] == 0.9 and top['safety']['allowed'] and 'fd_exhausted' in top['safety']['classes']
    assert '"python3" pid 4242 holds 4096 of its 4096 open files' in top['likely_cause']
    assert top['symptom_checks'] == ['app-backend/host.fds'] and 'app-backend/health.endpoint' in top['evidence']
    assert top['first_action'].endswith('-e remediation_action=restart -e incident_id=INC-T-1 -e service=backend')
    # warn (80-95 %): the same action, less sure
    warn = fds_finding('app-backend', [fds_item(4242, 'python3', 'backend', 3400, 4096)], 'warn', 'backend')
    assert top_of(replace(healthy(), warn))['confidence'] == 0.7


def top_of(findings):
    return top(dx.diagnose(findings, CTX))


def test_the_same_process_seen_from_the_other_hosts_of_one_machine_counts_once():
    """The Docker lab: every inventory host probes the same /proc; only app-backend's marks the process."""
    item = fds_item(4242, 'python3', 'backend', 4096, 4096)
    findings = replace(healthy(), fds_finding('app-backend', [item], service='backend'),
                       fds_finding('app-db', [dict(item, service=None)]),
                       fds_finding('app-redis', [dict(item, service=None)]))
    doc = dx.diagnose(findings, CTX)
    assert [(h['action'], h['service']) for h in doc['hypotheses']] == [('restart', 'backend')], doc['hypotheses']


def test_a_process_no_service_owns_at_its_limit_is_escalated_naming_pid_and_limit_never_restarted():
    findings = replace(healthy(), fds_finding('app-db', [fds_item(777, 'java', None, 65000, 65536)]))
    doc = dx.diagnose(findings, CTX)
    top = doc['hypotheses'][0]
    assert top['pattern'] == 'gradual_degradation' and top['action'] is None and top['service'] is None
    assert top['first_action'].startswith('ansible-playbook playbooks/investigate.yml') and '-e area=host' in top['first_action']
    assert '"java" pid 777: 65000 of 65536 open files' in top['escalation'] and 'Do not restart' in top['escalation']
    assert 'app-db' in top['escalation'] and top['then'] == top['escalation'] and top['confidence'] == 0.6
    assert all('remediate.yml' not in h['first_action'] for h in doc['hypotheses'])


def test_a_process_name_is_data_in_the_cause_and_the_escalation():
    evil = "{{ lookup('pipe', 'id') }}"
    doc = dx.diagnose(replace(healthy(), fds_finding('app-db', [fds_item(9, evil, None, 990, 1024)])), CTX)
    text = top(doc)['likely_cause'] + top(doc)['escalation']
    assert '{{' not in text and 'lookup(' not in text and '\\x7b\\x7b' in text


def test_a_sandboxed_fd_limit_is_not_exhaustion():
    """OpenSSH's pre-auth child lowers its own RLIMIT_NOFILE to 1 (areas/host.py SANDBOX_FD_LIMIT)."""
    sandbox = fds_finding('app-backend', [fds_item(31, 'sshd', None, 6, 1)], 'warn')
    assert not [h for h in dx.diagnose(replace(healthy(), sandbox), CTX)['hypotheses'] if 'open files' in h['likely_cause']]


def test_a_failed_unit_of_the_backend_is_a_down_backend_even_when_its_probe_could_not_run():
    units = f('app-backend', 'host.units', 'crit', 'backend (app.service) failed/failed after 5 restarts', 'backend',
              failed=[{'unit': 'app.service', 'load': 'loaded', 'active': 'failed', 'sub': 'failed', 'description': 'x'}],
              units=[{'service': 'backend', 'unit': 'app.service', 'ActiveState': 'failed', 'SubState': 'failed',
                      'Result': 'exit-code', 'NRestarts': '5', 'started_in_window': True}],
              implicated=['backend'], restarts_warn=3)
    unknown = f('app-backend', 'health.container', 'unknown', 'health probe failed: boom', 'backend', area='health')
    doc = dx.diagnose(replace(healthy(), units, unknown), dict(CTX, backend_services=['backend']))
    top = doc['hypotheses'][0]
    assert top['pattern'] == 'backend_down' and top['confidence'] == 0.95 and top['action'] == 'restart'
    assert top['evidence'] == ['app-backend/host.units']
    from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import classify
    assert classify.backend_down([units], ['app-backend'], ['backend'])
    assert not classify.backend_down([units], ['app-backend'], ['other'])


def test_logins_rejected_in_the_database_log_are_an_escalation_naming_the_role():
    log = f('app-db', 'pg.log', 'warn', 'in the window: auth failed 12 (app from 127.0.0.1: 12) (docker logs app-db)', 'db',
            groups={'auth_failed': {'count': 12, 'status': 'warn', 'first_ts': 1.0, 'last_ts': 2.0,
                                    'sample': 'password authentication failed for user "app"',
                                    'by_role': {'app from 127.0.0.1': 12}}},
            other={}, lines=40, unparsed=0, source='docker logs app-db', window_s=900, auth_failed_roles=['app'])
    errors = f('app-backend', 'app.errors', 'crit', '/api/orders: 8 errors (500)', 'backend', error_rate_pct=100.0)
    doc = dx.diagnose(replace(healthy(), log, errors), CTX)
    hyp = [h for h in doc['hypotheses'] if 'app-db/pg.log' in h['evidence']]
    assert len(hyp) == 1 and hyp[0]['action'] is None and hyp[0]['confidence'] == 0.75
    assert 'role app' in hyp[0]['likely_cause'] and 'Escalate to the owner of role app' in hyp[0]['then']
    assert hyp[0]['first_action'].startswith('ansible-playbook playbooks/investigate.yml') and '-e area=db' in hyp[0]['first_action']
    quiet = dict(log, status='ok', evidence=dict(log['evidence'], auth_failed_roles=[]))
    assert not [h for h in dx.diagnose(replace(healthy(), quiet), CTX)['hypotheses'] if 'app-db/pg.log' in h['evidence']]
