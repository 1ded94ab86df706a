"""Do no harm, as a table: evidence -> the actions allowed (plugins/plugin_utils/diagnosis/safety.py).

Every lab fault (tests/lab/vars/lab.yml lab_faults), from the findings a real triage wrote
(tests/unit/fixtures/triage/<fault>.json), and the issue's cases built by hand.
"""
import json
import os

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import diagnosis as dx
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import safety

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures', 'triage')
LAB = os.path.join(os.path.dirname(__file__), '..', 'lab', 'vars', 'lab.yml')
CTX = {'incident_id': 'INC-20261127-0412-7d10', 'inventory': 'inventory/lab', 'playbook_dir': 'playbooks',
       'backends': ['app-backend'], 'backend_services': ['backend'], 'backend_service': 'backend', 'tls_service': 'proxy',
       'endpoints': ['/api/orders', '/api/products', '/api/sessions', '/api/payments'],
       'critical_paths': ['/api/orders', '/api/sessions'], 'owners': {'db': 'platform', 'backend': 'platform'},
       'app_roles': {'db': ['app']}}

# lab fault -> (the top hypothesis' action: None means an investigation/escalation, the service it acts on)
TABLE = {
    'backend_down': ('restart', 'backend'),              # down by its own evidence (container exited)
    'bad_deploy': ('rollback', 'backend'),               # bad_release
    'pool_exhaustion': ('restart', 'backend'),           # leaking: the backend's own sessions
    'db_lock': ('kill_query', 'db'),                     # blocking_sessions
    'db_lock_chain': ('kill_query', 'db'),               # blocking_sessions: the whole tree
    'memory_growth': ('restart', 'backend'),             # leaking: its own memory
    'redis_full': ('flush_keys', 'redis'),
    'redis_slow': (None, 'redis'),
    'disk_full': ('clean_disk', 'backend'),
    'tls_expiring': ('apply_cert', 'proxy'),
    'tls_expired': ('apply_cert', 'proxy'),
    'dns_failure': (None, None),
    'dependency_down': (None, None),
    'partial_failure': (None, None),
    'disk_deleted_open': ('clean_disk', 'backend'),
    'redis_full_unmarked': ('raise_maxmemory', 'redis'),
    'pool_foreign': ('kill_query', 'db'),                # foreign_slots: never a backend restart
    'db_password_rotated': (None, 'db'),                 # auth: escalate, never restart a healthy database
    'tls_renewed': ('apply_cert', 'proxy'),              # the staged renewed pair
    'oom_kill': ('restart', 'backend'),                  # leaking: the kernel OOM-killed its own process
    'pg_slot_retained': (None, 'db'),                    # wal_retained: escalate naming the slot, never drop or restart
    'redis_maxclients': ('kill_clients', 'redis'),       # client_slots: end the holders' connections, never restart redis
    'redis_save_failing': (None, 'redis'),               # save_failing: name the directory, never restart redis
    'fd_leak': ('restart', 'backend'),                   # fd_exhausted: its own process at its open-files limit
    'vacuum_held': ('kill_query', 'db'),                 # vacuum_held: end the idle snapshot holder's pid, never restart
}


def lab_faults():
    text = open(LAB).read()
    return [line.strip()[2:] for line in text.split('lab_faults:')[1].splitlines()[1:] if line.startswith('  - ')]


def test_the_table_covers_every_lab_fault():
    assert sorted(lab_faults()) == sorted(TABLE)


@pytest.mark.parametrize('name', sorted(n for n in TABLE if os.path.exists(os.path.join(FIXTURES, n + '.json'))))
def test_every_lab_fault(name):
    action, service = TABLE[name]
    with open(os.path.join(FIXTURES, name + '.json')) as handle:
        doc = dx.diagnose(json.load(handle), CTX)
    top = doc['hypotheses'][0]
    assert top['action'] == action, (name, [(h['action'], h['confidence'], h['likely_cause'][:90]) for h in doc['hypotheses']])
    if action:
        assert '-e remediation_action=%s' % action in top['first_action'] and '-e service=%s' % service in top['first_action']
    else:
        assert 'investigate.yml' in top['first_action'] and 'remediate.yml' not in top['first_action']
    for hyp in doc['hypotheses']:  # no hypothesis prints an action the rules refused
        if hyp.get('safety') and not hyp['safety']['allowed']:
            assert hyp['action'] is None and 'remediate.yml' not in hyp['first_action'] and hyp['escalation']


def test_db_password_rotated_escalates_naming_the_role_and_owner():
    with open(os.path.join(FIXTURES, 'db_password_rotated.json')) as handle:
        doc = dx.diagnose(json.load(handle), CTX)
    top = doc['hypotheses'][0]
    assert top['action'] is None and 'remediation_action=restart' not in top['first_action']
    assert 'role "app"' in top['escalation'] and 'platform' in top['escalation'], top['escalation']
    assert 'Do not restart db' in top['escalation']
    assert not any('remediation_action=restart -e incident_id=%s -e service=db' % CTX['incident_id'] in h['first_action']
                   for h in doc['hypotheses'])


def test_tls_renewed_proposes_the_staged_pair_and_tls_expiring_says_renew_first():
    with open(os.path.join(FIXTURES, 'tls_renewed.json')) as handle:
        top = dx.diagnose(json.load(handle), CTX)['hypotheses'][0]
    assert '-e tls_cert_src=' in top['first_action'] and top['first_action'].rstrip().endswith('/renewed/privkey.pem')
    with open(os.path.join(FIXTURES, 'tls_expired.json')) as handle:
        top = dx.diagnose(json.load(handle), CTX)['hypotheses'][0]
    assert 'Renew first' in top['then'] and '<renewed certificate>' in top['first_action']


def f(host, check, st, summary, service, **evidence):
    return {'host': host, 'check': check, 'status': st, 'summary': summary, 'service': service, 'evidence': evidence}


HEALTHY_DB = f('app-db', 'health.container', 'ok', 'app-db running, healthy', 'db', running=True, status='running')


def pg_error(error):
    return f('app-db', 'pg.connectivity', 'crit', 'cannot connect: %s' % error, 'db', error=error)


EXITED = f('app-db', 'health.container', 'crit', 'app-db exited (1)', 'db', running=False, status='exited')
NOT_CHECKED = f('app-db', 'pg.connectivity', 'unknown', 'not checked', 'db')
UNIT_FAILED = f('db-1', 'health.container', 'crit', 'postgresql@15-main failed', 'db', unit='postgresql@15-main',
                properties={'ActiveState': 'failed', 'SubState': 'failed'})


def fds(host, service, process, pid, count, limit):
    item = {'pid': pid, 'process': process, 'service': service, 'fds': count, 'fd_limit': limit,
            'fd_pct': round(100.0 * count / limit, 1), 'tcp': {}, 'tcp_total': 0}
    return f(host, 'host.fds', 'crit', '%s pid %d: %d of %d open files' % (process, pid, count, limit), service,
             top_fds=[item], top_tcp=[], service_processes=[], tcp_states={}, processes=40, unreadable=0,
             truncated=False, warn_pct=80, crit_pct=95)


HBA = 'FATAL: no pg_hba.conf entry for host "127.0.0.9", user "app", database "app"'

VACUUM_HELD = f('app-db', 'pg.vacuum', 'warn', 'vacuum held back: 30,000 dead tuples in public.lab_vacuum', 'db',
                held_back=True, holding_pids=[4242])

# (case, findings of the service, action, claims, allowed?, refusing class)
CASES = [
    ('password refused: the server is up', [HEALTHY_DB, pg_error('FATAL: password authentication failed for user "app"')],
     'restart', (), False, 'auth'),
    ('pg_hba refuses the client', [HEALTHY_DB, pg_error(HBA)], 'restart', (), False, 'authz'),
    ('unknown database', [HEALTHY_DB, pg_error('FATAL: database "apps" does not exist')], 'restart', (), False, 'config'),
    ('too many clients', [HEALTHY_DB, pg_error('FATAL: sorry, too many clients already')], 'restart', (), False,
     'client_slots'),
    ('connection refused: down', [pg_error('connection refused')], 'restart', (), True, None),
    ('container exited, probe could not run', [EXITED, NOT_CHECKED], 'restart', (), True, None),
    ('systemd unit failed', [UNIT_FAILED], 'restart', (), True, None),
    ('healthy service, a client complains', [HEALTHY_DB], 'restart', (), False, None),
    ('a rule claims a leak of a healthy-looking backend', [], 'restart', ('leaking',), True, None),
    ('foreign slots allow kill_query', [HEALTHY_DB], 'kill_query', ('foreign_slots',), True, None),
    ('kill_query without blocking or foreign sessions', [HEALTHY_DB], 'kill_query', (), False, None),
    ('apply_cert is not destructive', [], 'apply_cert', (), True, None),
    ('its own process at its open-files limit', [HEALTHY_DB, fds('app-db', 'db', 'postgres', 77, 4090, 4096)],
     'restart', ('fd_exhausted',), True, None),
    ('a process no service owns at its limit, on its host', [HEALTHY_DB, fds('app-db', None, 'java', 77, 4090, 4096)],
     'restart', ('fd_exhausted',), False, None),
    ('another service\'s process at its limit', [HEALTHY_DB, fds('app-db', 'backend', 'python3', 77, 4090, 4096)],
     'restart', ('fd_exhausted',), False, None),
    ('a sandboxed limit is not exhaustion', [HEALTHY_DB, fds('app-db', 'db', 'sshd', 77, 12, 1)],
     'restart', ('fd_exhausted',), False, None),
    ('vacuum held back allows kill_query of the holder', [HEALTHY_DB, VACUUM_HELD], 'kill_query', ('vacuum_held',), True,
     None),
    ('vacuum held back never restarts the database', [HEALTHY_DB, VACUUM_HELD], 'restart', (), False, 'vacuum_held'),
    ('vacuum held back with the database down still restarts it', [pg_error('connection refused'), VACUUM_HELD],
     'restart', (), True, None),
]


@pytest.mark.parametrize('case,findings,action,claims,allowed,kind', CASES, ids=[c[0] for c in CASES])
def test_evidence_to_allowed_actions(case, findings, action, claims, allowed, kind):
    verdict = safety.judge(action, 'db', findings, {'owners': {'db': 'platform'}}, claims)
    assert verdict['allowed'] is allowed, (case, verdict)
    assert verdict['kind'] == kind, (case, verdict)
    if kind in ('auth', 'authz', 'config'):
        assert 'platform' in verdict['escalation'] and 'Do not restart db' in verdict['escalation']


def test_a_role_from_a_log_line_is_data():
    hostile = 'FATAL: password authentication failed for user "{{ lookup(\'pipe\',\'id\') }}$(id)"'
    verdict = safety.judge('restart', 'db', [f('app-db', 'pg.connectivity', 'crit', 'x', 'db', error=hostile)], {})
    assert '{{' not in verdict['escalation'] and '$(' not in verdict['escalation'], verdict['escalation']
    assert '\\x7b\\x7b' in verdict['escalation']


def test_foreign_sessions_younger_than_the_threshold_get_kill_query_not_a_backend_restart():
    """35 of 40 slots idle in transaction by another client, none past the threshold yet; a stale slowlog entry."""
    conns = f('app-db', 'pg.connections', 'warn', '35 of 40 connections idle in transaction', 'db', max_connections=40,
              holders=[{'application_name': 'etl-loader', 'role': 'etl', 'client_addr': '127.0.0.7',
                        'state': 'idle in transaction', 'count': 35, 'oldest_s': 20, 'past_threshold': 0,
                        'pids': [11, 12]}], idle_in_transaction_threshold_s=30)
    slow = f('app-redis', 'redis.slowlog', 'warn', '1 command slower than 20 ms', 'redis',
             entries=[{'id': 1, 'start_time': 1796465000, 'duration_us': 60000, 'command': 'KEYS *'}])
    slow['ts'] = '2026-12-05T10:10:00Z'  # the entry is ~17 min older than the probe
    doc = dx.diagnose([conns, slow], CTX)
    top = doc['hypotheses'][0]
    assert top['action'] == 'kill_query', [(h['action'], h['confidence']) for h in doc['hypotheses']]
    assert '-e pg_terminate_application_names=etl-loader' in top['first_action']
    assert '-e pg_terminate_min_age=0' in top['first_action']
    assert not any(h['action'] == 'restart' for h in doc['hypotheses'])
    stale = [h for h in doc['hypotheses'] if 'redis.slowlog' in ' '.join(h['evidence'])]
    assert stale and stale[0]['confidence'] < top['confidence'] and 'stale' in stale[0]['likely_cause']


def test_the_summary_and_the_console_print_the_escalation():
    from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import triage
    with open(os.path.join(FIXTURES, 'db_password_rotated.json')) as handle:
        doc = dx.diagnose(json.load(handle), CTX)
    line = triage.hypothesis_lines(doc['hypotheses'])[0]
    assert '-> ESCALATE: Do not restart db' in line and 'role "app"' in line, line


def test_redis_maxclients_ends_the_holders_connections_and_never_restarts_redis():
    with open(os.path.join(FIXTURES, 'redis_maxclients.json')) as handle:
        findings = json.load(handle)
    doc = dx.diagnose(findings, CTX)
    top = doc['hypotheses'][0]
    assert top['likely_cause'].startswith('Redis client connections exhausted by ') and 'batch-report' in top['likely_cause']
    assert top['action'] == 'kill_clients' and top['safety']['allowed'] is True, top
    assert '-e remediation_action=kill_clients' in top['first_action'] and '-e redis_kill_clients_pids=2684' in top['first_action']
    assert 'apply=true' not in top['first_action'] and 'apply=true' in top['then'] and 'Do not restart redis' in top['then']
    assert top['symptom_checks'] == ['app-redis/redis.connectivity'], top
    for hyp in doc['hypotheses']:
        assert 'unreachable' not in hyp['likely_cause'], hyp['likely_cause']
        assert not ('remediation_action=restart' in hyp['first_action'] and '-e service=redis' in hyp['first_action'])
    verdict = safety.judge('restart', 'redis', findings, CTX)
    assert verdict['allowed'] is False and verdict['kind'] == 'client_slots' and 'kill_clients' in verdict['escalation']
    assert safety.judge('kill_clients', 'redis', findings, CTX, ('client_slots',))['allowed'] is True
    assert 'kill_clients' in safety.DESTRUCTIVE and 'kill_clients' in safety.EVIDENCE_ACTIONS['client_slots']
    assert safety.judge('kill_clients', 'redis', findings, CTX)['allowed'] is True  # its own evidence says client_slots
    assert safety.judge('kill_clients', 'redis', [], CTX)['allowed'] is False  # no evidence: never


def test_redis_clients_answering_at_the_limit_selects_the_idle_holders_by_name():
    clients = {'check': 'redis.clients', 'host': 'app-redis', 'service': 'redis', 'status': 'crit',
               'summary': '9600 clients connected (96% of maxclients 10000)',
               'evidence': {'connected_clients': 9600, 'maxclients': 10000, 'by_client': [
                   {'name': 'batch-report', 'host': '127.0.0.7', 'cmd': 'get', 'kind': 'normal', 'count': 9500,
                    'idle_min_s': 300, 'idle_max_s': 900, 'ids': [1, 2]},
                   {'name': None, 'host': '127.0.0.5', 'cmd': 'get', 'kind': 'normal', 'count': 90,
                    'idle_min_s': 0, 'idle_max_s': 3, 'ids': [3]}]}}
    doc = dx.diagnose([clients], CTX)
    top = doc['hypotheses'][0]
    assert top['action'] == 'kill_clients' and '-e redis_kill_clients_names=batch-report' in top['first_action'], top
    assert 'batch-report from 127.0.0.7' in top['likely_cause']


def test_redis_holders_that_cannot_be_named_safely_are_escalated():
    clients = {'check': 'redis.clients', 'host': 'app-redis', 'service': 'redis', 'status': 'crit',
               'summary': 'many', 'evidence': {'connected_clients': 9600, 'maxclients': 10000, 'by_client': [
                   {'name': '{{ lookup("pipe", "id") }}', 'host': '127.0.0.7', 'cmd': 'get', 'kind': 'normal',
                    'count': 9500, 'idle_min_s': 300, 'idle_max_s': 900, 'ids': [1]}]}}
    top = dx.diagnose([clients], CTX)['hypotheses'][0]
    assert top['action'] is None and 'investigate.yml' in top['first_action'] and 'lookup' not in top['first_action']


def _save_failed(extra=()):
    info = {'rdb_last_bgsave_status': 'err', 'rdb_changes_since_last_save': 40, 'rdb_last_save_time': 0,
            'aof_enabled': 0, 'errorstat_MISCONF': {'count': 3}}
    from ansible_collections.sre.incident_response.plugins.module_utils.areas import redis as area
    persistence = area.evaluate_persistence('app-redis', 'redis', info)
    persistence['evidence']['dir'] = '/var/lib/redis'
    return [persistence] + list(extra)


def test_a_failed_save_never_restarts_redis_and_names_the_directory():
    verdict = safety.judge('restart', 'redis', _save_failed(), CTX)
    assert not verdict['allowed'] and verdict['kind'] == 'save_failing', verdict
    assert '/var/lib/redis' in verdict['escalation'] and 'Do not restart redis' in verdict['escalation']
    doc = dx.diagnose(_save_failed(), CTX)
    top = doc['hypotheses'][0]
    assert top['action'] is None and 'investigate.yml' in top['first_action'] and '-e area=redis' in top['first_action']
    assert 'MISCONF' in top['likely_cause'] and '/var/lib/redis' in top['likely_cause'], top
    assert 'BGSAVE' in top['escalation']


def test_a_failed_save_with_redis_down_still_restarts_it():
    down = {'check': 'redis.connectivity', 'host': 'app-redis', 'service': 'redis', 'status': 'crit',
            'summary': 'cannot connect: Connection refused', 'evidence': {'error': 'ConnectionError: Connection refused'}}
    assert safety.judge('restart', 'redis', _save_failed([down]), CTX)['allowed']


def test_a_directory_name_is_data_in_the_escalation():
    hostile = _save_failed()
    hostile[0]['evidence']['dir'] = '/srv/{{ lookup("pipe", "id") }}\n<script>'
    text = safety.judge('restart', 'redis', hostile, CTX)['escalation']
    assert '{{' not in text and '<script>' not in text and '\n' not in text, text
    assert '"/srv/\\x7b\\x7b' in text, text
