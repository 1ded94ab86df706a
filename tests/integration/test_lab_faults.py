"""Every lab fault is real: injected, observed from outside the lab, healed, observed healthy again.

The assertions look at the lab the way an outside observer would: HTTP status
codes, pg_stat_activity, Redis INFO, the served certificate, DNS answers,
docker's view of containers and files on the log volume.
"""
import datetime
import json
import os
import shutil
import socket
import ssl
import subprocess
import urllib.error
import urllib.request

import dns.resolver
import psycopg2
import pytest
import redis
from cryptography import x509

from conftest import LabEnv as L, docker, heal, inject, lab_lock


def http(path, port=None, method='GET'):
    url = 'http://127.0.0.1:%d%s' % (port or L.backend_port, path)
    req = urllib.request.Request(url, method=method, data=b'' if method == 'POST' else None)
    try:
        with urllib.request.urlopen(req, timeout=8) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b''


def https_status(path='/health'):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen('https://127.0.0.1:%d%s' % (L.proxy_port, path), timeout=8, context=ctx) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def pg(sql, user='app', password=None):
    conn = psycopg2.connect(host='127.0.0.1', port=L.db_port, dbname='app', user=user,
                            password=password or L.pg_password, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def rds():
    return redis.Redis(host='127.0.0.1', port=L.redis_port, password=L.redis_password, socket_timeout=5)


def served_cert_days_left():
    pem = ssl.get_server_certificate(('127.0.0.1', L.proxy_port), timeout=5)
    cert = x509.load_pem_x509_certificate(pem.encode())
    return (cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 86400


def container(name):
    return json.loads(docker('inspect', name))[0]


def resolve(name):
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = ['127.0.0.1']
    res.port = L.dns_port
    res.lifetime = 3
    try:
        return [r.to_text() for r in res.resolve(name, 'A')]
    except Exception:
        return []


def disk_pct(path):
    usage = shutil.disk_usage(path)
    return 100.0 * usage.used / usage.total


def mem_pct(name):
    stats = json.loads(docker('stats', '--no-stream', '--format', '{{json .}}', name))
    return float(stats['MemPerc'].rstrip('%'))


def check_backend_down(present):
    state = container(L.backend)['State']
    assert state['Running'] is (not present)
    if present:
        assert https_status('/health') == 502
        assert http('/health')[0] == 0


def check_bad_deploy(present):
    image = container(L.backend)['Config']['Image']
    status = http('/api/orders')[0]
    if present:
        assert image == 'app-backend:1.1.0'
        assert status == 500
        assert http('/api/products')[0] == 200
    else:
        assert image == 'app-backend:1.0.0'
        assert status == 200


def check_pool_exhaustion(present):
    rows = pg("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'app-backend' "
              "AND state = 'idle in transaction'")
    if present:
        assert rows[0][0] >= 5
        assert http('/health/ready')[0] == 503
    else:
        assert rows[0][0] == 0


def check_db_lock(present):
    blocked = pg("SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0")
    holder = pg("SELECT pid, usename, state, now() - query_start FROM pg_stat_activity "
                "WHERE application_name = 'report-job'")
    analyst = pg("SELECT count(*) FROM pg_stat_activity WHERE usename = 'analyst' AND state = 'active'")
    if present:
        assert len(blocked) >= 2
        assert holder and holder[0][1] == 'app' and holder[0][2] == 'active'
        assert all(holder[0][0] in b[1] for b in blocked)
        assert analyst[0][0] == 1
    else:
        assert blocked == [] and holder == [] and analyst[0][0] == 0


def check_db_lock_chain(present):
    rows = pg("SELECT application_name, pid, pg_blocking_pids(pid) FROM pg_stat_activity "
              "WHERE application_name IN ('chain-holder-a', 'chain-holder-b', 'chain-waiter-c')")
    by_name = dict((r[0], (r[1], list(r[2]))) for r in rows)
    if present:
        assert sorted(by_name) == ['chain-holder-a', 'chain-holder-b', 'chain-waiter-c'], rows
        assert by_name['chain-holder-a'][1] == []
        assert by_name['chain-holder-b'][1] == [by_name['chain-holder-a'][0]], 'B waits for A'
        assert by_name['chain-waiter-c'][1] == [by_name['chain-holder-b'][0]], 'C waits for B'
    else:
        assert rows == []


def check_memory_growth(present):
    pct = mem_pct(L.backend)
    if present:
        assert pct >= 75, pct
    else:
        assert pct < 50, pct


def check_redis_full(present):
    info = rds().info('memory')
    if present:
        assert info['used_memory'] >= info['maxmemory'] * 0.95
        with pytest.raises(redis.exceptions.ResponseError, match='maxmemory'):
            rds().set('cache:probe', 'x' * 100000)
    else:
        assert info['used_memory'] < info['maxmemory'] * 0.5


def check_redis_slow(present):
    entries = rds().slowlog_get(10)
    if present:
        assert len(entries) >= 3
        # twice redis_slowlog_warn_ms (20 ms), also on an idle fast machine: the fault must be one the probe sees
        assert len([e for e in entries if e['duration'] >= 40000]) >= 3, [e['duration'] for e in entries]
    else:
        assert entries == []


def check_disk_full(present):
    pct = disk_pct(L.log_volume_path)
    if present:
        assert pct >= 95, pct
        assert os.path.exists(os.path.join(L.log_volume_path, 'app.log.1'))
    else:
        assert pct < 50, pct
    assert os.path.exists(os.path.join(L.log_volume_path, 'app.log'))


def check_tls_expiring(present):
    days = served_cert_days_left()
    if present:
        assert 3 < days < 6, days
    else:
        assert days > 80, days


def check_tls_expired(present):
    days = served_cert_days_left()
    if present:
        assert days < 0, days
    else:
        assert days > 80, days


def check_dns_failure(present):
    answer = resolve('api.lab.test')
    assert resolve('db.lab.test') == ['127.0.0.1']
    assert answer == ([] if present else ['127.0.0.1'])


def check_dependency_down(present):
    status, body = http('/health/ready')
    assert status == 200
    payments_ok = json.loads(body)['checks']['payments']['ok']
    assert payments_ok is (not present)
    assert http('/api/payments')[0] == (502 if present else 200)
    assert http('/health', port=L.payments_port)[0] == (0 if present else 200)


def check_partial_failure(present):
    assert http('/api/products')[0] == (500 if present else 200)
    assert http('/api/orders')[0] == 200


def check_disk_deleted_open(present):
    pct = disk_pct(L.log_volume_path)
    deleted = []
    for fd_dir in [os.path.join('/proc', p, 'fd') for p in os.listdir('/proc') if p.isdigit()]:
        try:
            links = [os.readlink(os.path.join(fd_dir, fd)) for fd in os.listdir(fd_dir)]
        except OSError:
            continue
        deleted += [link for link in links if link == '/var/log/app/debug-trace.log (deleted)']
    if present:
        assert pct >= 95, pct
        assert deleted, 'no process holds the deleted debug-trace.log'
        assert not os.path.exists(os.path.join(L.log_volume_path, 'debug-trace.log')), 'no file to find by walking'
    else:
        assert pct < 50 and not deleted, (pct, deleted)


def check_redis_full_unmarked(present):
    client = rds()
    info = client.info('memory')
    reports = sum(1 for dummy in client.scan_iter(match='report:snapshot:*', count=1000))
    if present:
        assert info['used_memory'] >= info['maxmemory'] * 0.95 and reports > 1000
        assert sum(1 for dummy in client.scan_iter(match='cache:*', count=1000)) < 100
        with pytest.raises(redis.exceptions.ResponseError, match='maxmemory'):
            client.set('cache:probe', 'x' * 100000)
    else:
        assert reports == 0 and info['maxmemory'] == 64 * 1024 * 1024
        assert info['used_memory'] < info['maxmemory'] * 0.5


def check_pool_foreign(present):
    rows = pg("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'batch-exporter' "
              "AND usename = 'app' AND state = 'idle in transaction'")
    if present:
        assert rows[0][0] >= 30
        assert http('/health/ready')[0] == 200, 'the backend\'s own pool is fine'
    else:
        assert rows[0][0] == 0


def oom_kills(name):
    """The oom_kill counter of a container's memory cgroup (cgroup v2 memory.events, v1 memory.oom_control)."""
    info = container(name)
    for directory in ('/sys/fs/cgroup/system.slice/docker-%s.scope' % info['Id'], '/sys/fs/cgroup/docker/%s' % info['Id'],
                      '/sys/fs/cgroup/memory/docker/%s' % info['Id'],
                      '/sys/fs/cgroup/memory/system.slice/docker-%s.scope' % info['Id']):
        for file_name in ('memory.events', 'memory.oom_control'):
            path = os.path.join(directory, file_name)
            if os.path.isfile(path):
                counters = dict(line.split() for line in open(path) if len(line.split()) == 2)
                return int(counters.get('oom_kill', 0))
    raise AssertionError('no memory cgroup of %s' % name)


def check_oom_kill(present):
    if present:
        assert oom_kills(L.backend) >= 1
        assert http('/health')[0] == 200, 'only the allocating process was killed'
    else:
        assert oom_kills(L.backend) == 0


def check_db_password_rotated(present):
    if present:
        with pytest.raises(psycopg2.OperationalError, match='password authentication failed'):
            pg('SELECT 1')
        assert http('/health/ready')[0] == 503, 'the backend cannot log in either'
        assert http('/health')[0] == 200, 'the backend itself is alive'
        assert docker('inspect', '-f', '{{.State.Health.Status}}', L.db).strip() == 'healthy', 'the database is healthy'
    else:
        assert pg('SELECT 1') == [(1,)]


def check_tls_renewed(present):
    from conftest import ROOT
    renewed = os.path.join(ROOT, 'tests', 'lab', 'build', 'state%s' % (L.instance or ''), 'tls', 'renewed')
    served = x509.load_pem_x509_certificate(ssl.get_server_certificate(('127.0.0.1', L.proxy_port), timeout=5).encode())
    days = served_cert_days_left()
    if present:
        assert days <= 5.1, days
        with open(os.path.join(renewed, 'fullchain.pem'), 'rb') as handle:
            staged = x509.load_pem_x509_certificate(handle.read())
        assert staged.not_valid_after_utc > served.not_valid_after_utc
        assert os.path.exists(os.path.join(renewed, 'privkey.pem'))
    else:
        assert days >= 80 and not os.path.exists(renewed), days


def check_pg_slot_retained(present):
    slots = pg("SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint FROM pg_replication_slots "
               "WHERE slot_name = 'lab_lost_replica'")
    if present:
        assert len(slots) == 1 and slots[0][0] is False, slots
        assert slots[0][1] >= 16 * 1048576, 'past the lab threshold (inventory/lab/host_vars/app-db.yml)'
        assert http('/health/ready')[0] == 200, 'the database itself is healthy'
    else:
        assert slots == []


def check_redis_maxclients(present):
    if present:
        with pytest.raises(redis.ConnectionError, match='max number of clients reached'):
            rds().ping()
        status, body = http('/health/ready')
        assert status == 503 and 'max number of clients reached' in body.decode(), body
        assert http('/health')[0] == 200, 'the backend itself is alive'
        assert docker('top', L.prefix + 'app-fault-redis').count('batch-report') >= 1, 'the holder runs'
    else:
        client = rds()
        assert client.ping()
        assert client.config_get('maxclients') == {'maxclients': '10000'}
        assert not [c for c in client.client_list() if c.get('name') == 'batch-report']


def check_redis_save_failing(present):
    client = rds()
    if present:
        assert client.info('persistence')['rdb_last_bgsave_status'] == 'err'
        with pytest.raises(redis.ResponseError, match='MISCONF'):
            client.set('lab:probe-write', '1')
        status, body = http('/api/sessions', method='POST')
        assert status == 500 and 'MISCONF' in body.decode(), body
        status, body = http('/health/ready')  # Redis refuses PING too while the save fails
        assert status == 503 and 'MISCONF' in body.decode(), body
        assert http('/health')[0] == 200, 'the backend itself is alive'
    else:
        assert client.info('persistence')['rdb_last_bgsave_status'] == 'ok'
        assert client.config_get('save') == {'save': ''} and client.config_get('dir') == {'dir': '/var/lib/redis'}
        assert client.set('lab:probe-write', '1') and client.delete('lab:probe-write') == 1


def backend_fds():
    """(open descriptors, Max open files) of the backend container's main process, read from the host's /proc."""
    pid = container(L.backend)['State']['Pid']
    limit = [line.split()[3] for line in open('/proc/%d/limits' % pid) if line.startswith('Max open files')][0]
    return len(os.listdir('/proc/%d/fd' % pid)), int(limit)


def check_fd_leak(present):
    count, limit = backend_fds()
    assert limit == 4096, 'lab_backend_nofile'
    if present:
        assert count >= limit - 2, (count, limit)
        logs = subprocess.run(['docker', 'logs', '--since', '5m', L.backend], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=60, check=False).stdout  # uvicorn: stderr
        assert 'Too many open files' in logs, 'the backend fails to accept or open connections (EMFILE)'
    else:
        assert count < 200, (count, limit)


def check_vacuum_held(present):
    holders = pg("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'report-export' "
                 "AND state = 'idle in transaction' AND backend_xmin IS NOT NULL")
    tables = pg("SELECT coalesce(max(n_dead_tup), 0) FROM pg_stat_user_tables WHERE relname = 'lab_vacuum'")
    if present:
        assert holders == [(1,)], 'the report-export session holds its snapshot'
        assert tables[0][0] >= 15000, 'dead tuples vacuum cannot remove'
        assert http('/api/orders')[0] == 200, 'the application still answers'
    else:
        assert holders == [(0,)] and tables == [(0,)]


CHECKS = {name[len('check_'):]: fn for name, fn in globals().items() if name.startswith('check_')}


def assert_lab_healthy():
    status, body = http('/health/ready')
    assert status == 200 and json.loads(body)['status'] == 'ok', body
    assert https_status('/health') == 200
    for path in ('/api/orders', '/api/products', '/api/payments'):
        assert http(path)[0] == 200, path
    assert http('/api/sessions', method='POST')[0] == 200


def test_every_fault_has_a_check():
    faults = open(os.path.join(os.path.dirname(__file__), '..', 'lab', 'vars', 'lab.yml')).read()
    listed = [line.strip()[2:] for line in faults.split('lab_faults:')[1].splitlines()[1:] if line.startswith('  - ')]
    assert sorted(listed) == sorted(CHECKS), 'every lab fault needs an outside check'
    assert len(listed) == 25


@pytest.mark.parametrize('name', sorted(CHECKS))
def test_fault_is_real_and_heals(lab, name):
    with lab_lock():
        assert_lab_healthy()
        inject(name)
        try:
            CHECKS[name](present=True)
        finally:
            heal(name)
        CHECKS[name](present=False)
        assert_lab_healthy()


def test_unknown_fault_is_refused(lab, run_playbook):
    res = run_playbook('tests/lab/playbooks/fault.yml', {'lab_fault': 'nope', 'lab_fault_state': 'present'})
    assert res.rc != 0
    assert 'lab_fault must be one of' in res.stdout


def test_lab_uses_host_networking_on_loopback(lab):
    for name in (L.backend, L.db, L.redis, L.proxy, L.payments, L.dns):
        info = container(name)
        assert info['HostConfig']['NetworkMode'] == 'host', name
    for port in (L.backend_port, L.db_port, L.redis_port, L.proxy_port, L.payments_port):
        with socket.create_connection(('127.0.0.1', port), timeout=3):
            pass
