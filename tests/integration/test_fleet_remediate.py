"""Every remediation over SSH with become against the fleet lab: the plan changes nothing (checked from outside,
over SSH), an apply without approval is refused, the approved apply fixes and verifies, a repeat changes nothing.

rollback (release symlink + systemd restart), restart (systemd unit), kill_query (psycopg2 on db-1),
flush_keys (redis-py over TLS on cache-1), apply_cert (nginx on web-1), clean_disk (plain-text logs on web-1);
then communicate and resolve over the same inventory.
"""
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from fleet_lab import FleetEnv, fleet_run, psql, redis_cli, ssh, unit
from test_remediate import APPROVAL, LAUNCHER, _make_pair, assert_applied, assert_refused, events, recap_changed

PLAYBOOK = 'playbooks/remediate.yml'


def remediate(incident, action, extra=None, approve=False, check=False):
    ev = dict(incident['vars'], remediation_action=action)
    if approve:
        ev.update(APPROVAL)
    ev.update(extra or {})
    return fleet_run(PLAYBOOK, ev, check=check)


def http(url, method='GET', timeout=5):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def no_secrets(incident):
    text = open(os.path.join(incident['path'], 'timeline.jsonl')).read()
    for secret in FleetEnv.secrets:
        assert secret not in text


def backend_state():
    state = unit('web-1', 'app-backend.service', 'MainPID', 'ActiveEnterTimestamp', 'ActiveState')
    return state['MainPID'], state['ActiveEnterTimestamp'], state['ActiveState']


def test_rollback_by_release_symlink(fleet_fault, incident):
    with fleet_fault('bad_deploy'):
        assert ssh('web-1', 'readlink /opt/app/current').strip() == '/opt/app/releases/1.1.0'
        assert http(FleetEnv.base_url + '/api/orders') == 500
        before = backend_state()

        plan = remediate(incident, 'rollback')
        assert plan.rc == 0, plan
        assert ('/opt/app/current: /opt/app/releases/1.1.0 -> /opt/app/releases/1.0.0 then restart app-backend.service'
                in plan.stdout), plan
        assert events(incident, 'plan')[-1]['data']['plan']['target'] == {'release': '/opt/app/releases/1.0.0'}
        assert ssh('web-1', 'readlink /opt/app/current').strip() == '/opt/app/releases/1.1.0'
        assert backend_state() == before, 'the plan restarted the backend'

        refused = remediate(incident, 'rollback', {'apply': True})
        assert_refused(refused, incident)
        assert ssh('web-1', 'readlink /opt/app/current').strip() == '/opt/app/releases/1.1.0' and backend_state() == before

        applied = remediate(incident, 'rollback', approve=True)
        act = assert_applied(applied, incident, 'rollback', ['app.errors', 'health.endpoint'])
        assert act['data']['changed'] is True
        assert ssh('web-1', 'readlink /opt/app/current').strip() == '/opt/app/releases/1.0.0'
        after = backend_state()
        assert after[0] != before[0] and after[2] == 'active'
        for dummy in range(10):
            assert http(FleetEnv.base_url + '/api/orders') == 200

        again = remediate(incident, 'rollback', approve=True)
        assert again.rc == 0, again
        assert recap_changed(again, 'web-1') == 0
        assert backend_state() == after and ssh('web-1', 'readlink /opt/app/current').strip() == '/opt/app/releases/1.0.0'
        no_secrets(incident)


@pytest.mark.fleet_full
def test_restart_by_systemd_pool_exhaustion(fleet_fault, incident):
    idle_sql = "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' AND usename = 'app'"
    with fleet_fault('pool_exhaustion'):
        before = backend_state()
        assert int(psql(idle_sql)[0][0]) >= 5

        plan = remediate(incident, 'restart', check=True)
        assert plan.rc == 0, plan
        line = [ln for ln in plan.stdout.splitlines() if 'restart systemd unit app-backend.service (' in ln]
        assert line and 'ActiveState=active' in line[0] and 'SubState=running' in line[0], plan
        assert backend_state() == before and int(psql(idle_sql)[0][0]) >= 5

        refused = remediate(incident, 'restart', {'apply': True, 'approved_by': 'alice'})
        assert_refused(refused, incident, 'approval_reason or change_ref is missing')
        assert backend_state() == before

        applied = remediate(incident, 'restart', approve=True)
        assert_applied(applied, incident, 'restart', ['health.endpoint'])
        after = backend_state()
        assert after[0] != before[0] and after[1] != before[1] and after[2] == 'active'
        assert int(psql(idle_sql)[0][0]) == 0
        assert http(FleetEnv.base_url + '/health/ready') == 200

        again = remediate(incident, 'restart', approve=True)
        assert again.rc == 0, again
        assert recap_changed(again, 'web-1') == 0
        assert backend_state() == after, 'one approval restarts once'


def backend_fds():
    """Open descriptors of the backend's main process on web-1, counted over SSH."""
    return int(ssh('web-1', 'ls /proc/$(systemctl show -p MainPID --value app-backend.service)/fd | wc -l').strip())


@pytest.mark.fleet_full
def test_restart_by_systemd_of_a_backend_at_its_open_files_limit(fleet_fault, incident):
    """fd_leak: triage names the backend's process at its LimitNOFILE (host.fds) and prints a restart; applied as
    printed, the verification re-runs host.fds through the probe and finds it ok."""
    with fleet_fault('fd_leak'):
        before = backend_state()
        assert backend_fds() >= 4094
        res = fleet_run('playbooks/triage.yml', incident['vars'], timeout=400)
        assert res.rc == 0, res
        with open(os.path.join(incident['path'], 'diagnosis.json')) as handle:
            top = json.load(handle)['hypotheses'][0]
        assert top['action'] == 'restart' and top['service'] == 'backend', top
        assert top['symptom_checks'] == ['web-1/host.fds'], top
        assert top['first_action'].endswith('-e remediation_action=restart -e incident_id=%s -e service=backend'
                                            % incident['id']), top
        applied = remediate(incident, 'restart', {'service': 'backend'}, approve=True)
        assert_applied(applied, incident, 'restart', ['host.fds'])
        after = backend_state()
        assert after[0] != before[0] and after[2] == 'active'
        assert backend_fds() < 200
        assert http(FleetEnv.base_url + '/health/ready') == 200


SESSIONS_SQL = ("SELECT application_name, pid FROM pg_stat_activity "
                "WHERE application_name IN ('report-job', 'checkout-worker-1', 'checkout-worker-2', 'analytics-nightly')")


def test_kill_query_on_the_db_host(fleet_fault, incident):
    pg_extra = {'pg_terminate_min_age': 1, 'pg_terminate_grace_period': 2}
    with fleet_fault('db_lock'):
        before = dict((r[0], int(r[1])) for r in psql(SESSIONS_SQL))
        assert set(before) == {'report-job', 'checkout-worker-1', 'checkout-worker-2', 'analytics-nightly'}

        plan = remediate(incident, 'kill_query', pg_extra)
        assert plan.rc == 0, plan
        assert 'pid %d user=app db=app app=report-job' % before['report-job'] in plan.stdout, plan
        assert 'analytics-nightly' not in ' '.join(events(incident, 'plan')[-1]['data']['targets'])
        assert dict((r[0], int(r[1])) for r in psql(SESSIONS_SQL)) == before, 'the plan changed sessions'

        refused = remediate(incident, 'kill_query', dict(pg_extra, apply=True))
        assert_refused(refused, incident)
        assert dict((r[0], int(r[1])) for r in psql(SESSIONS_SQL)) == before

        applied = remediate(incident, 'kill_query', pg_extra, approve=True)
        act = assert_applied(applied, incident, 'kill_query', ['pg.locks', 'health.endpoint'])
        assert [t['pid'] for t in act['data']['result']['targets']] == [before['report-job']]
        after = dict((r[0], int(r[1])) for r in psql(SESSIONS_SQL))
        assert 'report-job' not in after and 'checkout-worker-1' not in after and 'checkout-worker-2' not in after
        assert after.get('analytics-nightly') == before['analytics-nightly'], 'the analyst session must survive'

        again = remediate(incident, 'kill_query', pg_extra, approve=True)
        assert again.rc == 0, again
        assert recap_changed(again, 'db-1') == 0
        no_secrets(incident)


def count_keys(pattern):
    return len([k for k in redis_cli('--scan', '--pattern', pattern).splitlines() if k.strip()])


def test_flush_keys_on_redis_over_tls(fleet_fault, incident):
    for dummy in range(5):
        assert http(FleetEnv.base_url + '/api/sessions', method='POST') == 200
    with fleet_fault('redis_full'):
        sessions, cache = count_keys('session:*'), count_keys('cache:*')
        assert sessions >= 5 and cache > 1000

        plan = remediate(incident, 'flush_keys', check=True, approve=True)
        assert plan.rc == 0, plan
        assert re.search(r'cache:\*: %d keys, [\d.]+ MiB' % cache, plan.stdout), plan
        assert 'session:*: protected, %d keys' % sessions in plan.stdout
        assert (count_keys('session:*'), count_keys('cache:*')) == (sessions, cache)

        refused = remediate(incident, 'flush_keys', dict(APPROVAL, approved_by=LAUNCHER))
        assert_refused(refused, incident, 'four-eyes')
        assert count_keys('cache:*') == cache

        applied = remediate(incident, 'flush_keys', approve=True)
        act = assert_applied(applied, incident, 'flush_keys', ['redis.memory', 'health.endpoint'])
        assert act['data']['result']['keys_removed'] == cache
        assert count_keys('cache:*') == 0 and count_keys('session:*') == sessions
        assert http(FleetEnv.base_url + '/api/sessions', method='POST') == 200

        again = remediate(incident, 'flush_keys', approve=True)
        assert again.rc == 0, again
        assert recap_changed(again, 'cache-1') == 0
        no_secrets(incident)


def served_serial():
    out = subprocess.run(['openssl', 's_client', '-connect', '127.0.0.1:%d' % FleetEnv.proxy_port, '-servername',
                          'api.fleet.test'], input='', capture_output=True, text=True, timeout=20, check=False).stdout
    x = subprocess.run(['openssl', 'x509', '-noout', '-serial', '-enddate'], input=out, capture_output=True, text=True, check=False)
    return int(x.stdout.split('serial=', 1)[1].split()[0], 16)


@pytest.mark.fleet_full
def test_apply_cert_on_nginx(fleet_fault, incident, tmp_path):
    crt, key, serial = _make_pair(str(tmp_path / 'new'), ['api.fleet.test'])
    # the new pair arrives on the host (as from an ACME client or a secrets store): tls_cert_src is a host path
    ssh('web-1', 'install -d -m 0700 /etc/nginx/tls/incoming && cat > /etc/nginx/tls/incoming/new.crt', stdin=open(crt).read())
    ssh('web-1', 'umask 077 && cat > /etc/nginx/tls/incoming/new.key', stdin=open(key).read())
    extra = {'tls_cert_src': '/etc/nginx/tls/incoming/new.crt', 'tls_cert_key_src': '/etc/nginx/tls/incoming/new.key'}
    with fleet_fault('tls_expiring'):
        old_serial = served_serial()
        installed = ssh('web-1', 'cat /etc/nginx/tls/server.crt')

        plan = remediate(incident, 'apply_cert', extra)
        assert plan.rc == 0, plan
        assert 'with CN=api.fleet.test valid' in plan.stdout, plan
        assert ssh('web-1', 'cat /etc/nginx/tls/server.crt') == installed and served_serial() == old_serial

        refused = remediate(incident, 'apply_cert', dict(extra, apply=True))
        assert_refused(refused, incident)
        assert ssh('web-1', 'cat /etc/nginx/tls/server.crt') == installed and served_serial() == old_serial

        applied = remediate(incident, 'apply_cert', extra, approve=True)
        act = assert_applied(applied, incident, 'apply_cert', ['net.tls_expiry', 'health.endpoint'])
        assert served_serial() == serial
        backups = act['data']['result']['backups']
        assert len(backups) == 2 and ssh('web-1', 'cat %s' % [b for b in backups if 'server.crt' in b][0]) == installed

        again = remediate(incident, 'apply_cert', extra, approve=True)
        assert again.rc == 0, again
        assert recap_changed(again, 'web-1') == 0
        no_secrets(incident)


def log_dir():
    return sorted(ssh('web-1', 'cd /var/log/app && find . -type f | sort').split())


@pytest.mark.fleet_full
def test_clean_disk_of_plain_text_logs(fleet_fault, incident):
    with fleet_fault('disk_full'):
        files = log_dir()
        assert './app.log.1' in files and './tmp/upload-1.tmp' in files
        assert int(ssh('web-1', "df --output=pcent /var/log/app | tail -1").strip().rstrip('%')) >= 95

        plan = remediate(incident, 'clean_disk', {'apply': True, 'approval_reason': 'disk full'})
        assert_refused(plan, incident, 'approved_by is missing')
        assert re.search(r'delete /var/log/app/app\.log\.1 \(8\.0 MiB, 10\.\d+ days old, not open\)', plan.stdout), plan
        assert re.search(r'truncate /var/log/app/app\.log \([\d.]+ \w+, [\d.]+ days old, held open by pid \d+\)', plan.stdout) \
            or 'app.log (' not in plan.stdout, plan
        assert log_dir() == files

        applied = remediate(incident, 'clean_disk', approve=True)
        act = assert_applied(applied, incident, 'clean_disk', ['host.disk', 'health.endpoint'])
        assert act['data']['result']['bytes_freed'] > 40 * 1024 * 1024
        left = log_dir()
        assert not [f for f in left if re.match(r'\./app\.log\.\d', f)] and not [f for f in left if 'upload-' in f]
        assert './app.log' in left, 'the active log stays'
        size = int(ssh('web-1', 'stat -c %s /var/log/app/app.log'))
        for dummy in range(5):
            http(FleetEnv.base_url + '/api/orders')
        time.sleep(0.5)
        assert int(ssh('web-1', 'stat -c %s /var/log/app/app.log')) > size, 'the backend still writes its log'

        again = remediate(incident, 'clean_disk', approve=True)
        assert again.rc == 0, again
        assert recap_changed(again, 'web-1') == 0


@pytest.mark.fleet_full
def test_communicate_and_resolve_over_the_fleet_inventory(fleet_fault, incident):
    with fleet_fault('backend_down'):
        tri = fleet_run('playbooks/triage.yml', incident['vars'], timeout=400)
        assert tri.rc == 0, tri
        upd = fleet_run('playbooks/communicate.yml', dict(incident['vars'], status='Identified'), timeout=200)
        assert upd.rc == 0, upd
    res = fleet_run('playbooks/resolve.yml', dict(incident['vars'], resolved_by='alice', root_cause='app-backend.service stopped'),
                    timeout=200)
    assert res.rc == 0, res
    inc = json.load(open(os.path.join(incident['path'], 'incident.json')))
    assert inc['status'] == 'Resolved'
    messages = sorted(os.listdir(os.path.join(incident['path'], 'messages')))
    assert any(m.endswith('-declared.md') for m in messages) and any('update-identified' in m for m in messages), messages
    drafts = [n for n in os.listdir(incident['path']) if n.startswith('postmortem-')]
    assert len(drafts) == 1
    text = open(os.path.join(incident['path'], drafts[0])).read()
    assert 'app-backend.service stopped' in text and 'web-1' in text
    assert [e['kind'] for e in events(incident, 'resolved')] == ['resolved']
    no_secrets(incident)


def _findings(incident):
    with open(os.path.join(incident['path'], 'findings.json')) as handle:
        return dict(('%s/%s' % (f['host'], f['check']), f) for f in json.load(handle))


def oom_counter():
    """The oom_kill counter of app-backend.service's memory cgroup on web-1 (v2 memory.events, v1 memory.oom_control)."""
    out = ssh('web-1', 'cg=$(systemctl show -p ControlGroup --value app-backend.service); '
                       'cat /sys/fs/cgroup$cg/memory.events /sys/fs/cgroup/memory$cg/memory.oom_control 2>/dev/null; true')
    return int([line.split()[1] for line in out.splitlines() if line.startswith('oom_kill ')][0])


def _triage_then_apply_first_action(incident, check, action):
    """triage.yml, then the top hypothesis' first action run as printed with an approval (as test_resolution.py does
    on the Docker lab); returns (top hypothesis, the apply's result)."""
    from test_resolution import first_action_vars
    tri = fleet_run('playbooks/triage.yml', incident['vars'], timeout=400)
    assert tri.rc == 0, tri
    top = json.load(open(os.path.join(incident['path'], 'diagnosis.json')))['hypotheses'][0]
    assert _findings(incident)[check]['status'] in ('warn', 'crit'), _findings(incident)[check]
    assert check in top['evidence'] and top['action'] == action, top
    playbook, ev = first_action_vars(top['first_action'])
    assert playbook == PLAYBOOK and ev['remediation_action'] == action and ev['service'] == 'backend', top
    assert '-i inventory/fleet' in top['first_action'], top
    ev.update(incident['vars'], **APPROVAL)
    applied = fleet_run(playbook, ev, timeout=400)
    assert applied.rc == 0, applied
    assert 'VERIFIED %s' % action in applied.stdout, applied
    return top, applied


def assert_host_check_ok_on_a_fresh_investigation(incident, key):
    """After the fix: investigate.yml -e area=host rates the check (host/check) ok, and no secret was written."""
    res = fleet_run('playbooks/investigate.yml', dict(incident['vars'], area='host'), timeout=300)
    assert res.rc == 0, res
    found = _findings(incident)[key]
    assert found['status'] == 'ok', found
    no_secrets(incident)


@pytest.mark.fleet_full
def test_unit_failed_is_resolved_by_the_printed_restart(fleet_fault, incident):
    """unit_failed: app-backend.service left failed by systemd; the printed first action (restart of the backend)
    starts it again: the unit is active, the health is ok, host.units is ok on a fresh triage."""
    with fleet_fault('unit_failed'):
        assert unit('web-1', 'app-backend.service', 'ActiveState')['ActiveState'] == 'failed'
        dummy, applied = _triage_then_apply_first_action(incident, 'web-1/host.units', 'restart')
        assert_applied(applied, incident, 'restart', ['health.endpoint'])
        state = unit('web-1', 'app-backend.service', 'ActiveState', 'SubState', 'Result')
        assert (state['ActiveState'], state['SubState'], state['Result']) == ('active', 'running', 'success'), state
        assert http(FleetEnv.base_url + '/health/ready') == 200
        assert_host_check_ok_on_a_fresh_investigation(incident, 'web-1/host.units')


@pytest.mark.fleet_full
def test_oom_kill_is_resolved_by_the_printed_restart(fleet_fault, incident):
    """oom_kill: a process of app-backend.service OOM-killed in the unit's cgroup; the printed first action (restart
    of the backend) gives the unit a fresh cgroup: its oom_kill counter is 0 and host.oom is ok."""
    with fleet_fault('oom_kill'):
        assert oom_counter() >= 1
        before = backend_state()
        top, applied = _triage_then_apply_first_action(incident, 'web-1/host.oom', 'restart')
        assert top['pattern'] == 'memory_growth', top
        assert_applied(applied, incident, 'restart', ['health.endpoint'])
        after = backend_state()
        assert after[0] != before[0] and after[2] == 'active', (before, after)
        assert oom_counter() == 0, 'a restarted unit has a fresh cgroup'
        assert http(FleetEnv.base_url + '/health/ready') == 200
        assert_host_check_ok_on_a_fresh_investigation(incident, 'web-1/host.oom')
    assert oom_counter() == 0
