"""Remediation against the real lab: plan changes nothing, apply needs an approval, apply fixes, re-apply is a no-op.

Every test injects one lab fault, then drives playbooks/remediate.yml four ways and checks the lab from outside
(PostgreSQL sessions, Redis keys, files, the running image, the served certificate) and the incident timeline.
"""
import datetime
import ipaddress
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

import psycopg2
import redis
from conftest import docker

from ansible_collections.sre.incident_response.plugins.module_utils import remediation as rem
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.incident_approval import os_identity

PLAYBOOK = 'playbooks/remediate.yml'
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The launcher is who runs the tests, as the kernel says (incident_approval.os_identity); alice approves.
LAUNCHER = os_identity()['launcher']
APPROVAL = {'apply': True, 'approved_by': 'alice', 'approval_reason': 'integration test'}


# --- helpers -------------------------------------------------------------------------------

def events(incident, kind=None):
    path = os.path.join(incident['path'], 'timeline.jsonl')
    out = [json.loads(line) for line in open(path) if line.strip()] if os.path.exists(path) else []
    return [e for e in out if kind is None or e['kind'] == kind]


def recap_changed(res, host):
    m = re.search(r'^%s\s+:\s+ok=\d+\s+changed=(\d+)' % re.escape(host), res.stdout, re.M)
    assert m, res
    return int(m.group(1))


def remediate(run_playbook, incident, action, extra=None, approve=False, check=False):
    ev = dict(incident['vars'], remediation_action=action)
    if approve:
        ev.update(APPROVAL)
    ev.update(extra or {})
    return run_playbook(PLAYBOOK, ev, check=check)


def assert_refused(res, incident, text='REFUSED'):
    assert res.rc != 0, res
    assert text in res.stdout, res
    refused = [e for e in events(incident, 'approval') if e['data'].get('decision') == 'refused']
    assert refused, 'the refusal is not in the timeline'


def finding_status(incident, check):
    with open(os.path.join(incident['path'], 'findings.json')) as handle:
        return dict((f['check'], f['status']) for f in json.load(handle)).get(check)


def assert_applied(res, incident, action, checks=()):
    assert res.rc == 0, res
    for check in checks:
        assert finding_status(incident, check) == 'ok', 'finding %s after %s' % (check, action)
    assert 'VERIFIED %s' % action in res.stdout, res
    acts = [e for e in events(incident, 'action') if e['data']['action'] == action]
    ver = [e for e in events(incident, 'verify') if e['data']['action'] == action]
    assert acts and ver and ver[-1]['data']['status'] == 'ok', (acts, ver)
    granted = [e for e in events(incident, 'approval') if e['data'].get('decision') == 'granted']
    assert granted and granted[-1]['data']['approved_by'] == 'alice' and granted[-1]['data']['launcher'] == LAUNCHER
    return acts[-1]


def no_secrets(incident, lab_env):
    text = open(os.path.join(incident['path'], 'timeline.jsonl')).read()
    for secret in lab_env.secrets:
        assert secret not in text


def pg_rows(lab_env, sql):
    conn = psycopg2.connect(host='127.0.0.1', port=lab_env.db_port, dbname='app', user='postgres',
                            password=lab_env.pg_superuser_password, connect_timeout=5)
    conn.autocommit = True
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall()
    finally:
        conn.close()


def redis_client(lab_env):
    return redis.Redis(host='127.0.0.1', port=lab_env.redis_port, password=lab_env.redis_password, decode_responses=True)


def count_keys(client, pattern):
    return sum(1 for dummy in client.scan_iter(match=pattern, count=1000))


def http(url, method='GET', timeout=5):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc).encode()


def _env_names(info):
    """The names (not the values) of a container's environment variables."""
    return sorted(e.split('=', 1)[0] for e in info['Config']['Env'])


def inspect(name):
    return json.loads(docker('inspect', name))[0]


# --- kill_query (pg_terminate) --------------------------------------------------------------

SESSIONS_SQL = ("SELECT application_name, pid, state FROM pg_stat_activity "
                "WHERE application_name IN ('report-job', 'checkout-worker-1', 'checkout-worker-2', 'analytics-nightly')")


def test_kill_query_db_lock(fault, run_playbook, incident, lab_env):
    pg_extra = {'pg_terminate_min_age': 1, 'pg_terminate_grace_period': 2}
    with fault('db_lock'):
        before = dict((r[0], r[1]) for r in pg_rows(lab_env, SESSIONS_SQL))
        assert set(before) == {'report-job', 'checkout-worker-1', 'checkout-worker-2', 'analytics-nightly'}
        workers = [r[0] for r in pg_rows(lab_env, "SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'")]

        plan = remediate(run_playbook, incident, 'kill_query', pg_extra)
        assert plan.rc == 0, plan
        assert 'pid %d user=app db=app app=report-job' % before['report-job'] in plan.stdout
        assert 'analytics-nightly' not in ' '.join(events(incident, 'plan')[-1]['data']['targets'])
        assert dict((r[0], r[1]) for r in pg_rows(lab_env, SESSIONS_SQL)) == before, 'the plan changed sessions'

        refused = remediate(run_playbook, incident, 'kill_query', dict(pg_extra, apply=True))
        assert_refused(refused, incident)
        assert dict((r[0], r[1]) for r in pg_rows(lab_env, SESSIONS_SQL)) == before, 'a refused apply changed sessions'

        applied = remediate(run_playbook, incident, 'kill_query', pg_extra, approve=True)
        act = assert_applied(applied, incident, 'kill_query', ['pg.locks', 'health.endpoint'])
        assert act['data']['changed'] is True
        assert [t['pid'] for t in act['data']['result']['targets']] == [before['report-job']]
        after = dict((r[0], r[1]) for r in pg_rows(lab_env, SESSIONS_SQL))
        assert 'report-job' not in after
        assert 'checkout-worker-1' not in after and 'checkout-worker-2' not in after  # unblocked and finished
        assert after.get('analytics-nightly') == before['analytics-nightly'], 'the analyst session must survive'
        still = [r[0] for r in pg_rows(lab_env, "SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'")]
        assert set(workers) <= set(still), 'background workers must survive'

        again = remediate(run_playbook, incident, 'kill_query', pg_extra, approve=True)
        assert again.rc == 0, again
        assert recap_changed(again, 'app-db') == 0
        assert events(incident, 'action')[-1]['data']['changed'] is False
        no_secrets(incident, lab_env)


# --- restart (pool exhaustion) --------------------------------------------------------------

def test_restart_pool_exhaustion(fault, run_playbook, incident, lab_env):
    idle_sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'app-backend' AND state = 'idle in transaction'"
    with fault('pool_exhaustion'):
        started = inspect(lab_env.backend)['State']['StartedAt']
        assert pg_rows(lab_env, idle_sql)[0][0] >= 5

        # an apply without a reason: the plan is shown and recorded, then the apply is refused
        refused = remediate(run_playbook, incident, 'restart', {'apply': True, 'approved_by': 'alice'})
        assert_refused(refused, incident, 'approval_reason or change_ref is missing')
        assert 'restart container %s' % lab_env.backend in refused.stdout
        assert events(incident, 'plan')[-1]['data']['plan']['started_at'] == started
        assert inspect(lab_env.backend)['State']['StartedAt'] == started

        applied = remediate(run_playbook, incident, 'restart', approve=True)
        assert_applied(applied, incident, 'restart', ['health.endpoint'])
        restarted = inspect(lab_env.backend)['State']['StartedAt']
        assert restarted != started
        assert pg_rows(lab_env, idle_sql)[0][0] == 0
        assert http(lab_env.base_url + '/health/ready')[0] == 200

        again = remediate(run_playbook, incident, 'restart', approve=True)
        assert again.rc == 0, again
        assert recap_changed(again, 'app-backend') == 0
        assert inspect(lab_env.backend)['State']['StartedAt'] == restarted, 'one approval restarts once'

        # a new approval, but the incident's restart budget (1 here) is used up: refused before anything changes
        over = remediate(run_playbook, incident, 'restart', {'change_ref': 'CHG-2', 'remediation_budget': {'restart': 1}}, approve=True)
        assert_refused(over, incident, 'action budget exhausted: 1 of 1 restart')
        assert inspect(lab_env.backend)['State']['StartedAt'] == restarted


def container_memory_mib(name):
    usage = docker('stats', '--no-stream', '--format', '{{.MemUsage}}', name).split('/')[0].strip()
    value, unit = re.match(r'([\d.]+)\s*([KMG]i?B)', usage).groups()
    return float(value) * {'KiB': 1 / 1024.0, 'MiB': 1, 'GiB': 1024, 'KB': 1 / 1024.0, 'MB': 1, 'GB': 1024}[unit]


def test_restart_memory_growth(fault, run_playbook, incident, lab_env):
    with fault('memory_growth'):
        leaked = container_memory_mib(lab_env.backend)
        assert leaked > 150
        started = inspect(lab_env.backend)['State']['StartedAt']

        refused = remediate(run_playbook, incident, 'restart', {'apply': True, 'approved_by': 'alice'})
        assert_refused(refused, incident, 'approval_reason or change_ref is missing')
        assert 'restart container %s' % lab_env.backend in refused.stdout
        assert inspect(lab_env.backend)['State']['StartedAt'] == started

        applied = remediate(run_playbook, incident, 'restart', approve=True)
        assert_applied(applied, incident, 'restart', ['health.endpoint'])
        assert inspect(lab_env.backend)['State']['StartedAt'] != started
        assert container_memory_mib(lab_env.backend) < leaked / 2

        again = remediate(run_playbook, incident, 'restart', approve=True)
        assert again.rc == 0 and recap_changed(again, 'app-backend') == 0, again


# --- flush_keys (redis_evict) ---------------------------------------------------------------

def test_flush_keys_redis_full(fault, run_playbook, incident, lab_env):
    client = redis_client(lab_env)
    for dummy in range(5):
        assert http(lab_env.base_url + '/api/sessions', method='POST')[0] == 200
    with fault('redis_full'):
        sessions, cache = count_keys(client, 'session:*'), count_keys(client, 'cache:*')
        assert sessions >= 5 and cache > 1000

        plan = remediate(run_playbook, incident, 'flush_keys', check=True, approve=True)
        assert plan.rc == 0, plan
        assert re.search(r'cache:\*: %d keys, [\d.]+ MiB' % cache, plan.stdout), plan
        assert 'session:*: protected, %d keys' % sessions in plan.stdout
        assert (count_keys(client, 'session:*'), count_keys(client, 'cache:*')) == (sessions, cache)

        refused = remediate(run_playbook, incident, 'flush_keys', dict(APPROVAL, approved_by=LAUNCHER))
        assert_refused(refused, incident, 'four-eyes')
        assert count_keys(client, 'cache:*') == cache

        applied = remediate(run_playbook, incident, 'flush_keys', approve=True)
        act = assert_applied(applied, incident, 'flush_keys', ['redis.memory', 'health.endpoint'])
        assert act['data']['result']['keys_removed'] == cache and act['data']['result']['bytes_freed'] > 0
        assert count_keys(client, 'cache:*') == 0
        assert count_keys(client, 'session:*') == sessions, 'protected keys must survive'
        assert http(lab_env.base_url + '/api/sessions', method='POST')[0] == 200

        again = remediate(run_playbook, incident, 'flush_keys', approve=True)
        assert again.rc == 0, again
        assert recap_changed(again, 'app-redis') == 0
        no_secrets(incident, lab_env)


# --- raise_maxmemory (redis_maxmemory) ------------------------------------------------------

def test_raise_maxmemory_redis_full_unmarked(fault, run_playbook, incident, lab_env):
    client = redis_client(lab_env)
    with fault('redis_full_unmarked'):
        maxmemory = int(client.config_get('maxmemory')['maxmemory'])
        keys = client.dbsize()
        assert client.info('memory')['used_memory'] >= maxmemory * 0.95

        plan = remediate(run_playbook, incident, 'raise_maxmemory', check=True, approve=True)
        assert plan.rc == 0, plan
        assert re.search(r'raise maxmemory 64\.0 MiB -> [\d.]+ MiB \(used [\d.]+ MiB = \d+ % of the new limit\)', plan.stdout), plan
        assert int(client.config_get('maxmemory')['maxmemory']) == maxmemory

        # an increase the host has no room for fails the plan before the gate: nothing approved, nothing changed
        tight = remediate(run_playbook, incident, 'raise_maxmemory', {'redis_maxmemory_max_free_fraction': '0.000001'},
                          approve=True)
        assert tight.rc != 0 and 'raise_maxmemory on redis cannot be done safely' in tight.stdout, tight
        assert 'does NOT fit' in tight.stdout and not events(incident, 'approval'), tight
        assert int(client.config_get('maxmemory')['maxmemory']) == maxmemory

        refused = remediate(run_playbook, incident, 'raise_maxmemory', {'apply': True})
        assert_refused(refused, incident)
        assert int(client.config_get('maxmemory')['maxmemory']) == maxmemory

        applied = remediate(run_playbook, incident, 'raise_maxmemory', approve=True)
        act = assert_applied(applied, incident, 'raise_maxmemory', ['redis.memory'])
        raised = int(client.config_get('maxmemory')['maxmemory'])
        assert raised > maxmemory and raised == act['data']['result']['new_maxmemory'], act
        assert client.dbsize() >= keys, 'no key is deleted'
        assert 'in effect' in applied.stdout and 'NOT in effect' not in applied.stdout, applied

        again = remediate(run_playbook, incident, 'raise_maxmemory', approve=True)
        assert again.rc == 0, again
        assert recap_changed(again, 'app-redis') == 0
        assert int(client.config_get('maxmemory')['maxmemory']) == raised
        no_secrets(incident, lab_env)


# --- clean_disk (disk_cleanup) --------------------------------------------------------------

def test_clean_disk_disk_full(fault, run_playbook, incident, lab_env, tmp_path):
    vol = lab_env.log_volume_path
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'old.log.1').write_bytes(b'x' * 4096)
    old = time.time() - 30 * 86400
    os.utime(str(outside / 'old.log.1'), (old, old))
    escape = os.path.join(vol, 'escape')
    with fault('disk_full'):
        try:
            os.symlink(str(outside), escape)
            files = sorted(os.listdir(vol)) + sorted('tmp/' + f for f in os.listdir(os.path.join(vol, 'tmp')))
            st = os.statvfs(vol)
            assert st.f_bavail * st.f_frsize < 4 * 1024 * 1024

            # an apply without an approver: the plan is shown and recorded, then the apply is refused
            plan = remediate(run_playbook, incident, 'clean_disk', {'apply': True, 'approval_reason': 'disk full'})
            assert_refused(plan, incident, 'approved_by is missing')
            assert re.search(r'delete \S+/app\.log\.1 \(8\.0 MiB, 10\.\d+ days old, not open\)', plan.stdout), plan
            assert re.search(r'truncate \S+/app\.log \([\d.]+ MiB, [\d.]+ days old, held open by pid \d+\)', plan.stdout), plan
            assert 'escape' not in json.dumps(events(incident, 'plan')[-1]['data'])
            assert sorted(os.listdir(vol)) + sorted('tmp/' + f for f in os.listdir(os.path.join(vol, 'tmp'))) == files

            applied = remediate(run_playbook, incident, 'clean_disk', approve=True)
            act = assert_applied(applied, incident, 'clean_disk', ['host.disk', 'health.endpoint'])
            assert act['data']['result']['bytes_freed'] > 40 * 1024 * 1024
            left = sorted(os.listdir(vol))
            assert not [f for f in left if re.match(r'app\.log\.\d', f)]
            assert not [f for f in os.listdir(os.path.join(vol, 'tmp')) if f.startswith('upload-')]
            assert (outside / 'old.log.1').exists(), 'nothing outside the configured paths is touched'
            size = os.path.getsize(os.path.join(vol, 'app.log'))
            assert size < 1024 * 1024, 'the active log is truncated, not deleted'
            for dummy in range(5):
                http(lab_env.base_url + '/api/orders')
            time.sleep(0.5)
            assert os.path.getsize(os.path.join(vol, 'app.log')) > size, 'the backend still writes its log'

            again = remediate(run_playbook, incident, 'clean_disk', approve=True)
            assert again.rc == 0, again
            assert recap_changed(again, 'app-backend') == 0
        finally:
            if os.path.islink(escape):
                os.unlink(escape)


def test_clean_disk_refuses_a_plan_that_cannot_free_enough_and_check_mode_changes_nothing(fault, run_playbook, incident,
                                                                                          lab_env):
    vol = lab_env.log_volume_path

    def listing():
        return sorted(os.listdir(vol)) + sorted('tmp/' + f for f in os.listdir(os.path.join(vol, 'tmp')))

    with fault('disk_full'):
        files, size = listing(), os.path.getsize(os.path.join(vol, 'app.log'))
        # check mode with an approval: the plan only, nothing approved, nothing changed
        checked = remediate(run_playbook, incident, 'clean_disk', approve=True, check=True)
        assert checked.rc == 0, checked
        assert 'mode: plan only' in checked.stdout and 'after the plan' in checked.stdout, checked
        assert not events(incident, 'action') and listing() == files

        # rotated logs and temp files younger than 30 days stay: truncating the active log cannot get below 90 %
        refused = remediate(run_playbook, incident, 'clean_disk', {'disk_cleanup_older_than_days': 30}, approve=True)
        assert refused.rc != 0, refused
        assert re.search(r'was not applied, nothing changed: disk \S+: [\d.]+ % used, CANNOT get below 90 %', refused.stdout), refused
        assert 'disk_cleanup_allow_partial=true' in refused.stdout, refused
        assert not events(incident, 'action') and not events(incident, 'approval'), 'refused before the gate'
        assert listing() == files and os.path.getsize(os.path.join(vol, 'app.log')) >= size


# --- rollback (bad deploy) ------------------------------------------------------------------

def test_rollback_bad_deploy(fault, run_playbook, incident, lab_env):
    with fault('bad_deploy'):
        before = inspect(lab_env.backend)
        assert before['Config']['Image'] == 'app-backend:1.1.0'
        assert http(lab_env.base_url + '/api/orders')[0] == 500

        # plain plan (no apply): rc 0, the exact current and target image with digests, nothing changes
        plan = remediate(run_playbook, incident, 'rollback')
        assert plan.rc == 0, plan
        assert 'app-backend:1.1.0 (%s) -> app-backend:1.0.0' % before['Image'][7:19] in plan.stdout, plan
        target = events(incident, 'plan')[-1]['data']['plan']['target']
        assert target['image'] == 'app-backend:1.0.0' and target['digest'].startswith('sha256:')
        assert inspect(lab_env.backend)['Id'] == before['Id']

        missing = remediate(run_playbook, incident, 'rollback', {'rollback_image': 'app-backend:0.0.404'}, approve=True)
        assert missing.rc != 0 and 'not present locally; nothing was stopped' in missing.stdout, missing
        now = inspect(lab_env.backend)
        assert (now['Id'], now['State']['StartedAt'], now['Config']['Image']) == (
            before['Id'], before['State']['StartedAt'], 'app-backend:1.1.0')

        refused = remediate(run_playbook, incident, 'rollback', {'apply': True})
        assert_refused(refused, incident)
        assert 'app-backend:1.1.0 (%s) -> app-backend:1.0.0' % before['Image'][7:19] in refused.stdout
        assert inspect(lab_env.backend)['Id'] == before['Id']

        applied = remediate(run_playbook, incident, 'rollback', approve=True)
        act = assert_applied(applied, incident, 'rollback', ['app.errors', 'health.endpoint'])
        assert act['data']['result']['previous']['image'] == 'app-backend:1.1.0'
        after = inspect(lab_env.backend)
        assert after['Config']['Image'] == 'app-backend:1.0.0'
        for key in ('Memory', 'NetworkMode', 'RestartPolicy', 'Mounts'):
            assert after['HostConfig'][key] == before['HostConfig'][key], key
        assert _env_names(after) == _env_names(before)
        assert 'APP_VERSION=1.0.0' in after['Config']['Env']
        since = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
        for dummy in range(10):
            assert http(lab_env.base_url + '/api/orders')[0] == 200
        logs = docker('logs', '--since', since, lab_env.backend)
        assert '"level": "ERROR"' not in logs, 'errors must stop after the rollback'

        again = remediate(run_playbook, incident, 'rollback', approve=True)
        assert again.rc == 0, again
        assert recap_changed(again, 'app-backend') == 0
        assert inspect(lab_env.backend)['Id'] == after['Id']
        no_secrets(incident, lab_env)


def test_rollback_restores_the_previous_container_when_unhealthy(exclusive_lab, run_playbook, incident, lab_env, tmp_path):
    """A target that starts but never becomes healthy is undone automatically, and the failure is loud."""
    before = inspect(lab_env.backend)
    base = docker('images', '--format', '{{.Repository}}:{{.Tag}}', 'incident-lab/base').split()[0]
    (tmp_path / 'Dockerfile').write_text('FROM %s\nCMD ["sleep", "600"]\n' % base)
    broken = 'sre-test/broken-backend:%d' % lab_env.instance
    docker('build', '-q', '-t', broken, str(tmp_path))
    try:
        res = remediate(run_playbook, incident, 'rollback', {'rollback_image': broken, 'rollback_health_timeout': 6}, approve=True)
        assert res.rc != 0 and 'ROLLBACK FAILED VERIFICATION' in res.stdout and 'was started again' in res.stdout, res
        # the failed apply settles its intent as failed, and the attempt counts against the budget
        assert 'APPLY FAILED: rollback on backend' in res.stdout, res
        acts = events(incident, 'action')
        assert [a['data']['status'] for a in acts] == ['started', 'failed'], acts
        assert acts[0]['data']['intent_id'] == acts[1]['data']['intent_id']
        assert rem.count_actions(events(incident), 'rollback', 'backend') == 1
        after = inspect(lab_env.backend)
        assert after['Id'] == before['Id'] and after['State']['Running'] and after['Config']['Image'] == before['Config']['Image']
        deadline = time.time() + 30
        while time.time() < deadline and http(lab_env.base_url + '/health/ready')[0] != 200:
            time.sleep(1)
        assert http(lab_env.base_url + '/health/ready')[0] == 200
    finally:
        for name in docker('ps', '-a', '--filter', 'name=%s-failed-rollback' % lab_env.backend, '--format', '{{.Names}}').split():
            docker('rm', '-f', name)
        docker('rmi', '-f', broken, check=False)


# --- apply_cert (tls_cert) ------------------------------------------------------------------

def _make_pair(directory, names, days=90, key=None):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False).sign(key, hashes.SHA256()))
    os.makedirs(directory, exist_ok=True)
    crt, pem = os.path.join(directory, 'new.crt'), os.path.join(directory, 'new.key')
    with open(crt, 'wb') as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(pem, 'wb') as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return crt, pem, cert.serial_number


def served_serial(lab_env):
    out = subprocess.run(['openssl', 's_client', '-connect', '127.0.0.1:%d' % lab_env.proxy_port, '-servername', 'api.lab.test'],
                         input='', capture_output=True, text=True, timeout=20, check=False).stdout
    x = subprocess.run(['openssl', 'x509', '-noout', '-serial', '-checkend', '0'], input=out, capture_output=True, text=True, check=False)
    return int(x.stdout.split('=', 1)[1].split()[0], 16), x.returncode == 0


def test_apply_cert_tls_expired(fault, run_playbook, incident, lab_env, tmp_path):
    tls_dir = os.path.join(ROOT, 'tests', 'lab', 'build', 'state%s' % (lab_env.instance or ''), 'tls')
    crt, key, serial = _make_pair(str(tmp_path / 'good'), ['api.lab.test'])
    extra = {'tls_cert_src': crt, 'tls_cert_key_src': key, 'tls_cert_dest': os.path.join(tls_dir, 'server.crt'),
             'tls_cert_key_dest': os.path.join(tls_dir, 'server.key'),
             'tls_cert_reload_command': ['docker', 'exec', lab_env.proxy, 'nginx', '-c', '/nginx/nginx.conf', '-s', 'reload']}
    with fault('tls_expired'):
        old_serial, valid = served_serial(lab_env)
        assert not valid
        installed = open(extra['tls_cert_dest']).read()

        bad_crt, dummy, dummy2 = _make_pair(str(tmp_path / 'other'), ['other.example.com'])
        wrong = remediate(run_playbook, incident, 'apply_cert', dict(extra, tls_cert_src=bad_crt), approve=True)
        assert wrong.rc != 0 and 'private key does not match' in wrong.stdout and 'does not cover api.lab.test' in wrong.stdout, wrong

        plan = remediate(run_playbook, incident, 'apply_cert', extra)
        assert plan.rc == 0, plan
        assert 'with CN=api.lab.test valid' in plan.stdout and 'expired' in plan.stdout, plan
        refused = remediate(run_playbook, incident, 'apply_cert', dict(extra, apply=True))
        assert_refused(refused, incident)
        assert open(extra['tls_cert_dest']).read() == installed and served_serial(lab_env)[0] == old_serial

        applied = remediate(run_playbook, incident, 'apply_cert', extra, approve=True)
        act = assert_applied(applied, incident, 'apply_cert', ['net.tls_expiry', 'health.endpoint'])
        assert served_serial(lab_env) == (serial, True)
        backups = act['data']['result']['backups']
        assert len(backups) == 2 and open([b for b in backups if 'server.crt' in b][0]).read() == installed

        again = remediate(run_playbook, incident, 'apply_cert', extra, approve=True)
        assert again.rc == 0, again
        assert recap_changed(again, 'app-backend') == 0
        no_secrets(incident, lab_env)
