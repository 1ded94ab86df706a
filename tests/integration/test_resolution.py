"""Does the first action that triage prints fix the fault? One run per lab fault, against the real lab.

inject -> triage.yml -> the first hypothesis' first_action, applied as printed with an approval (the
launcher is the OS user, approved_by someone else: four eyes) -> investigate.yml for the fault's area ->
the fault's check is ok -> heal. A fault whose first action is an investigation (no safe automated
mitigation: an external dependency, a DNS zone, a migration, a slow script) must say so honestly: its first
action is investigate.yml and it is not counted as resolved.

By default only CI_FAULTS run (bounded CI time); RESOLUTION_FAULTS=all runs every fault (make test-resolution).
The resolved count is printed at the end of the session (RESOLUTION: N of M ...) and written to
tests/output/resolution-<instance>.json.
"""
import getpass
import json
import os
import shlex
import subprocess

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files

from conftest import ROOT, heal, inject, lab_lock  # noqa: E402

# fault -> (host/check that must be ok afterwards, investigate area, action the first action must be; None: an investigation)
FAULTS = {
    'backend_down': ('app-backend/health.endpoint', 'app', 'restart'),
    'bad_deploy': ('app-backend/app.errors', 'app', 'rollback'),
    'pool_exhaustion': ('app-db/pg.connections', 'db', 'restart'),
    'db_lock': ('app-db/pg.locks', 'db', 'kill_query'),
    'db_lock_chain': ('app-db/pg.locks', 'db', 'kill_query'),
    'memory_growth': ('app-backend/container.resources', 'network', 'restart'),
    'redis_full': ('app-redis/redis.memory', 'redis', 'flush_keys'),
    'redis_slow': ('app-redis/redis.slowlog', 'redis', None),
    'disk_full': ('app-backend/host.disk', 'network', 'clean_disk'),
    'tls_expiring': ('controller/net.tls_expiry', 'network', 'apply_cert'),
    'tls_expired': ('controller/net.tls_expiry', 'network', 'apply_cert'),
    'dns_failure': ('controller/net.dns', 'network', None),
    'dependency_down': ('app-backend/dependency.reachability', 'network', None),
    'partial_failure': ('app-backend/app.errors', 'app', None),
    'disk_deleted_open': ('app-backend/host.disk', 'network', 'clean_disk'),
    'redis_full_unmarked': ('app-redis/redis.memory', 'redis', 'raise_maxmemory'),
    'pool_foreign': ('app-db/pg.connections', 'db', 'kill_query'),
    'oom_kill': ('app-backend/host.oom', 'host', 'restart'),
    # issue 20: a password changed in PostgreSQL only is escalated (role app, its owner), never a restart of db
    'db_password_rotated': ('app-db/pg.connectivity', 'db', None),
    # issue 20: apply_cert proposes the renewed pair staged in the endpoint's renewal_dir, as printed
    'tls_renewed': ('controller/net.tls_expiry', 'network', 'apply_cert'),
    # issue 21: an inactive replication slot retaining WAL is escalated naming the slot; never a drop, never a restart
    'pg_slot_retained': ('app-db/pg.replication', 'db', None),
    # issue 21: Redis out of client slots: kill_clients ends the holder's (batch-report) connections with ss -K while
    # every slot is taken; never a restart of redis
    'redis_maxclients': ('app-redis/redis.clients', 'redis', 'kill_clients'),
    # issue 21: Redis cannot save its snapshot (writes refused, MISCONF) is escalated naming the directory; never a
    # restart of redis (it would lose the writes since the last good save)
    'redis_save_failing': ('app-redis/redis.persistence', 'redis', None),
    # issue 21: the backend's own process at its open-files limit (host.fds names it): a restart gives them back
    'fd_leak': ('app-backend/host.fds', 'host', 'restart'),
    # issue 21: vacuum held back by an idle REPEATABLE READ snapshot (report-export): kill_query of exactly its pid
    'vacuum_held': ('app-db/pg.vacuum', 'db', 'kill_query'),
}
# CI cost: each fault costs ~90 s (inject, triage, apply, investigate, heal), all 25 ~38 min. `make test` runs
# the faults whose first action is new code (~5 min); `make test-resolution` (RESOLUTION_FAULTS=all) runs
# every fault; RESOLUTION_FAULTS=a,b picks some.
# pg_slot_retained: ~25 s (an escalation: inject, triage, heal)
CI_FAULTS = ['disk_deleted_open', 'redis_full_unmarked', 'pool_foreign', 'db_password_rotated', 'tls_renewed',
             'pg_slot_retained', 'redis_save_failing']
# Triage runs within seconds of the injection, while a real incident is minutes old when someone triages it:
# leaked sessions count once idle in transaction for postgres_idle_in_transaction_warn_seconds (30 s by
# default), so the test says 1 s rather than waiting for the clock (as test_fleet_triage does).
TRIAGE_EXTRA = {'pool_exhaustion': {'postgres_idle_in_transaction_warn_seconds': 1}}
_CHOSEN = os.environ.get('RESOLUTION_FAULTS', '')
ONLY = [] if _CHOSEN == 'all' else ([x for x in _CHOSEN.split(',') if x] or CI_FAULTS)
RESULTS = {}


def _launcher():
    return os.environ.get('SUDO_USER') or getpass.getuser()


def _approver():
    return 'resolution-approver' if _launcher() != 'resolution-approver' else 'second-approver'


def first_action_vars(command, fill=()):
    """The -e k=v pairs of a printed command line (placeholders like <approver> are not accepted, except for the
    names in fill: what the command says a person must provide, e.g. a renewed certificate)."""
    argv = shlex.split(command)
    assert argv[:2] == ['ansible-playbook', 'playbooks/remediate.yml'] or 'investigate.yml' in argv[1], command
    out = {}
    for i, arg in enumerate(argv):
        if arg == '-e':
            name, _sep, value = argv[i + 1].partition('=')
            assert '<' not in value or name in fill, 'the first action needs a value filled in by hand: %s' % command
            out[name] = value
    return argv[1], out


def _tls_extra(tmp_path, lab_env):
    from test_remediate import _make_pair  # the same certificate maker the apply_cert test uses
    tls_dir = os.path.join(ROOT, 'tests', 'lab', 'build', 'state%s' % (lab_env.instance or ''), 'tls')
    crt, key, dummy = _make_pair(str(tmp_path / 'new-cert'), ['api.lab.test'])
    return {'tls_cert_src': crt, 'tls_cert_key_src': key, 'tls_cert_dest': os.path.join(tls_dir, 'server.crt'),
            'tls_cert_key_dest': os.path.join(tls_dir, 'server.key')}


def _traffic(lab_env, count=40):
    """Users keep sending requests after a fix: the logs then show whether the paths recovered."""
    subprocess.run([os.path.join(ROOT, '.venv', 'bin', 'python'), os.path.join(ROOT, 'tests', 'lab', 'files', 'traffic.py'),
                    lab_env.base_url, str(count)], capture_output=True, text=True, timeout=120, check=False)


def _keep(name, incident):
    out_dir = os.path.join(ROOT, 'tests', 'output', 'resolution-%d' % lab_env_instance())
    os.makedirs(out_dir, exist_ok=True)
    for doc in ('findings', 'diagnosis'):
        with open(os.path.join(incident['path'], doc + '.json')) as src, \
                open(os.path.join(out_dir, '%s-%s.json' % (name, doc)), 'w') as dst:
            dst.write(src.read())


def _status(incident, key):
    host, check = key.split('/', 1)
    for f in files.read_json(os.path.join(incident['path'], 'findings.json')):
        if f.get('host') == host and f.get('check') == check:
            return f.get('status'), f.get('summary')
    return None, None


@pytest.mark.parametrize('name', [n for n in FAULTS if not ONLY or n in ONLY])
def test_first_action_resolves_the_fault(name, lab, run_playbook, incident, lab_env, tmp_path):
    check, area, expected_action = FAULTS[name]
    with lab_lock():
        inject(name)
        try:
            res = run_playbook('playbooks/triage.yml', dict(incident['vars'], **TRIAGE_EXTRA.get(name, {})), timeout=400)
            assert res.rc == 0, res
            diag = files.read_json(os.path.join(incident['path'], 'diagnosis.json'))
            _keep(name, incident)  # triage's findings, e.g. to refresh tests/unit/fixtures/triage/<fault>.json
            assert diag['hypotheses'], diag
            top = diag['hypotheses'][0]
            assert _status(incident, check)[0] in ('warn', 'crit'), (name, check, _status(incident, check))
            # tls_expiring/tls_expired: no renewed pair exists, the command says what to provide (Renew first)
            renew_first = expected_action == 'apply_cert' and name != 'tls_renewed'
            playbook, ev = first_action_vars(top['first_action'],
                                             ('tls_cert_src', 'tls_cert_key_src') if renew_first else ())
            if renew_first:
                assert 'Renew first' in top['then'], top
            if expected_action is None:
                assert playbook.endswith('investigate.yml') and top['action'] is None, top
                if name == 'db_password_rotated':  # escalated, naming the role and its owner; no restart anywhere
                    assert 'role "app"' in top['escalation'] and 'platform' in top['escalation'], top
                    assert not any('remediation_action=restart' in h['first_action'] and 'service=db' in h['first_action']
                                   for h in diag['hypotheses']), diag['hypotheses']
                if name == 'pg_slot_retained':  # the slot named (as data), what dropping it breaks, the owner
                    assert top['escalation'] and '"lab_lost_replica"' in top['escalation'], top
                    assert 'breaks the consumer' in top['escalation'] and 'platform' in top['escalation'], top
                    assert 'app-db/pg.replication' in top['evidence'], top
                    assert not any(h.get('action') in ('restart', 'kill_query') and h.get('service') == 'db'
                                   for h in diag['hypotheses']), diag['hypotheses']
                if name == 'redis_save_failing':  # the directory named, no restart of redis anywhere
                    assert '/var/lib/redis' in top['escalation'] and 'BGSAVE' in top['escalation'], top
                    assert 'app-redis/redis.persistence' in top['evidence'], top
                    assert not any(h.get('action') == 'restart' and h.get('service') == 'redis'
                                   for h in diag['hypotheses']), diag['hypotheses']
                RESULTS[name] = 'investigation: %s' % top['likely_cause']
                return
            assert ev.get('remediation_action') == expected_action, top
            if name == 'redis_maxclients':  # the holder named from the host's sockets and selected by its pid
                assert 'batch-report' in top['likely_cause'] and ev.get('redis_kill_clients_pids'), top
                assert not any(h.get('action') == 'restart' and h.get('service') == 'redis'
                               for h in diag['hypotheses']), diag['hypotheses']
            ev.update(incident['vars'], apply=True, approved_by=_approver(),
                      approval_reason='resolution test: apply the printed first action')
            if renew_first:
                ev.update(_tls_extra(tmp_path, lab_env))
            elif expected_action == 'apply_cert':  # the staged renewal, as printed
                assert '/renewed/fullchain.pem' in ev['tls_cert_src'], top
            applied = run_playbook(playbook, ev, timeout=400)
            assert applied.rc == 0, applied
            assert 'VERIFIED %s' % expected_action in applied.stdout, applied
            if name == 'redis_maxclients':  # closed with ss -K (no slot was free), Redis never restarted
                assert 'ss -K' in applied.stdout, applied
                print('\n'.join(' '.join(x.split())[:400] for x in applied.stdout.splitlines()
                                if 'VERIFIED' in x or 'PLAN kill_clients' in x or 'connection(s)' in x))
            if area == 'app':
                _traffic(lab_env)
            again = run_playbook('playbooks/investigate.yml', dict(incident['vars'], area=area), timeout=400)
            assert again.rc == 0, again
            status, summary = _status(incident, check)
            assert status == 'ok', '%s: %s is %s after %s: %s' % (name, check, status, top['first_action'], summary)
            RESULTS[name] = 'resolved by %s' % expected_action
        finally:
            heal(name)
            RESULTS.setdefault(name, 'NOT resolved')


@pytest.fixture(scope='module', autouse=True)
def resolution_count():
    yield
    if not RESULTS:
        return
    resolved = sorted(n for n, r in RESULTS.items() if r.startswith('resolved'))
    line = 'RESOLUTION: %d of %d lab faults resolved by the printed first action' % (len(resolved), len(RESULTS))
    out_dir = os.path.join(ROOT, 'tests', 'output')
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, 'resolution-%d.json' % lab_env_instance()), 'w') as handle:
        json.dump({'summary': line, 'faults': RESULTS}, handle, indent=2, sort_keys=True)
    print('\n' + line)
    for n in sorted(RESULTS):
        print('  %-20s %s' % (n, RESULTS[n]))


def lab_env_instance():
    return int(os.environ.get('LAB_INSTANCE', '0') or 0)


def test_verified_means_the_symptom_is_gone(lab, run_playbook, incident, lab_env):
    """An action that passes its own checks and health but leaves the symptom is not VERIFIED.

    pool_foreign: triage names pg.connections; a kill_query whose filter misses the foreign sessions
    ends nothing, its own checks (no planned session left, pg.locks ok, health ok) pass, but
    pg.connections is still crit: verification must fail and say so.
    """
    with lab_lock():
        inject('pool_foreign')
        try:
            res = run_playbook('playbooks/triage.yml', dict(incident['vars']), timeout=400)
            assert res.rc == 0, res
            top = files.read_json(os.path.join(incident['path'], 'diagnosis.json'))['hypotheses'][0]
            assert top['action'] == 'kill_query' and top['symptom_checks'] == ['app-db/pg.connections'], top
            dummy, ev = first_action_vars(top['first_action'])
            ev.update(incident['vars'], apply=True, approved_by=_approver(), approval_reason='resolution test',
                      pg_terminate_application_names='no-such-client')
            applied = run_playbook('playbooks/remediate.yml', ev, timeout=400)
            assert applied.rc != 0 and 'VERIFICATION FAILED after kill_query' in applied.stdout, applied
            assert 'symptom app-db/pg.connections crit' in applied.stdout, applied
            verify = [e for e in files.read_jsonl(os.path.join(incident['path'], 'timeline.jsonl')) if e['kind'] == 'verify']
            assert verify[-1]['data']['status'] == 'failed' and verify[-1]['data']['symptom_checks'] == ['pg.connections']
        finally:
            heal('pool_foreign')
