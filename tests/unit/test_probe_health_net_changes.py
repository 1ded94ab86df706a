"""Unit tests: health endpoints and container state, DNS/TLS/disk/resources, deployments and host changes."""
import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.sre.incident_response.plugins.module_utils.areas import (
    changes as area_changes,
    health as area_health,
    network as area_network)

NOW = datetime.datetime(2026, 11, 27, 4, 0, 0, tzinfo=datetime.timezone.utc)


def spec(name='readiness', url='http://127.0.0.1:18000/health/ready', **kw):
    d = {'host': 'app-backend', 'service': 'backend', 'name': name, 'url': url, 'expect_status': 200}
    d.update(kw)
    return d


def result(status=200, body=None, latency=5.0, error=None):
    return {'url': 'u', 'status': status, 'json': body, 'body': '', 'latency_ms': latency, 'error': error}


def test_endpoint_statuses():
    ready_fail = {'status': 'fail', 'checks': {'database': {'ok': False, 'critical': True, 'error': 'PoolTimeout: x'},
                                               'cache': {'ok': True}}}
    st, text = area_health.evaluate_endpoint(spec(), result(503, ready_fail, 2004), 1000, 5000)
    assert st == 'crit' and text == 'backend readiness: HTTP 503 status=fail, expected 200 (database (critical): PoolTimeout: x) in 2004 ms'
    degraded = {'status': 'degraded', 'checks': {'payments': {'ok': False, 'critical': False, 'error': 'URLError'}}}
    st, text = area_health.evaluate_endpoint(spec(expect_json={'status': 'ok'}), result(200, degraded), 1000, 5000)
    assert st == 'warn' and 'HTTP 200 status=degraded, expected status=ok (' in text and 'payments (non-critical): URLError' in text
    st, text = area_health.evaluate_endpoint(spec(), result(error='URLError: [Errno 111] Connection refused'), 1000, 5000)
    assert st == 'crit' and 'Connection refused' in text
    assert area_health.evaluate_endpoint(spec(), result(200, {'status': 'ok'}, 1500), 1000, 5000)[0] == 'warn'
    assert area_health.evaluate_endpoint(spec(expect_status=[200, 204]), result(204), 1000, 5000)[0] == 'ok'


def test_endpoint_findings_one_per_host_worst_first():
    targets = {'app-backend': [{'name': 'backend', 'health': [{'name': 'liveness', 'url': 'http://a/health'},
                                                              {'name': 'readiness', 'url': 'http://a/ready'}]},
                               {'name': 'proxy', 'health': [{'name': 'tls', 'url': 'https://a/health'}]}],
               'app-db': [{'name': 'db'}]}
    specs = area_health.endpoint_specs(targets)
    assert [s['name'] for s in specs] == ['liveness', 'readiness', 'tls'] and specs[2]['service'] == 'proxy'
    res = [result(200, {'status': 'ok'}, 3), result(200, {'status': 'ok'}, 9), result(502, None, 4)]
    out = area_health.endpoint_findings(specs, res)
    assert len(out) == 1 and out[0]['host'] == 'app-backend' and out[0]['status'] == 'crit' and out[0]['service'] == 'proxy'
    assert out[0]['summary'] == 'proxy tls: HTTP 502, expected 200 in 4 ms; 2 of 3 endpoints healthy'
    assert len(out[0]['evidence']['endpoints']) == 3


def test_container_state_evaluation():
    base = {'Name': '/app-backend', 'RestartCount': 0,
            'State': {'Running': True, 'Status': 'running', 'StartedAt': '2026-11-27T02:00:00Z', 'Health': {'Status': 'healthy'}}}
    assert area_health.evaluate_container(base, now=NOW) == ('ok', 'app-backend running, up 2 h 00 min (healthy, 0 restarts)')
    oom = {'Name': '/app-backend', 'RestartCount': 3, 'State': {'Running': False, 'Status': 'exited', 'ExitCode': 137,
                                                                'OOMKilled': True, 'FinishedAt': '2026-11-27T03:58:00Z'}}
    st, text = area_health.evaluate_container(oom, now=NOW)
    assert st == 'crit' and text == 'app-backend exited 2 min ago (exit code 137, OOM-killed)'
    recent = dict(base, RestartCount=2, State=dict(base['State'], StartedAt='2026-11-27T03:59:00Z'))
    assert area_health.evaluate_container(recent, now=NOW)[0] == 'warn'
    unhealthy = dict(base, State=dict(base['State'], Health={'Status': 'unhealthy', 'FailingStreak': 4, 'Log': [{'Output': 'refused'}]}))
    assert area_health.evaluate_container(unhealthy, now=NOW) == ('crit', 'app-backend running but unhealthy (4 failing checks: refused)')


def _cert(days_left, names=('api.lab.test',)):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(NOW - datetime.timedelta(days=30))
            .not_valid_after(NOW + datetime.timedelta(days=days_left))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def test_tls_days_left_expired_and_name_mismatch():
    ep = {'name': 'api', 'host': '127.0.0.1', 'port': 18443, 'server_name': 'api.lab.test'}
    st, text, info = area_network.evaluate_tls(ep, {'der': _cert(5)}, 14, 0, now=NOW)
    assert st == 'warn' and info['days_left'] == 5.0 and text.startswith('api 127.0.0.1:18443: certificate expires in 5.0 days')
    assert 'SAN api.lab.test' in text and info['chain'] == 'verified'
    st, text, info = area_network.evaluate_tls(ep, {'der': _cert(-1), 'verify_error': 'certificate has expired'}, 14, 0, now=NOW)
    assert st == 'crit' and 'EXPIRED 1.0 days ago' in text and info['chain'].startswith('not verified')
    assert area_network.evaluate_tls(ep, {'der': _cert(90)}, 14, 0, now=NOW)[0] == 'ok'
    st, text, dummy = area_network.evaluate_tls(ep, {'der': _cert(90, ('other.example.com',))}, 14, 0, now=NOW)
    assert st == 'warn' and 'does NOT cover api.lab.test' in text
    st, _t, _i = area_network.evaluate_tls(dict(ep, verify=True), {'der': _cert(90), 'verify_error': 'self-signed'}, 14, 0, now=NOW)
    assert st == 'crit'
    assert area_network.evaluate_tls(ep, {'error': 'ConnectionRefusedError: refused'}, 14, 0)[0] == 'crit'


def test_dns_and_dependency_evaluation():
    r = {'resolver': '127.0.0.1', 'port': 15353, 'answers': ['127.0.0.1'], 'latency_ms': 3.0, 'error': None}
    assert area_network.evaluate_dns({'name': 'api.lab.test', 'expect': '127.0.0.1'}, r, 500) == ('ok', 'api.lab.test -> 127.0.0.1 in 3 ms')
    st, text = area_network.evaluate_dns({'name': 'api.lab.test', 'expect': '127.0.0.2'}, r, 500)
    assert st == 'crit' and 'expected 127.0.0.2' in text
    st, text = area_network.evaluate_dns({'name': 'api.lab.test'}, dict(r, error='NXDOMAIN: gone', answers=[]), 500)
    assert st == 'crit' and text == 'api.lab.test @127.0.0.1:15353: NXDOMAIN: gone'
    dep = {'name': 'payments', 'url': 'http://127.0.0.1:18081/health', 'critical': False}
    st, text = area_network.evaluate_dependency(dep, result(error='URLError: refused'), 2000)
    assert st == 'warn' and 'unreachable' in text and 'non-critical' in text
    assert area_network.evaluate_dependency(dict(dep, critical=True), result(503), 2000)[0] == 'crit'


def test_disk_and_container_resources():
    full = {'path': '/var/log/app', 'total': 64 * 2 ** 20, 'used': 62 * 2 ** 20, 'avail': 2 * 2 ** 20, 'used_pct': 96.9,
            'inodes_used_pct': 1.0}
    root = {'path': '/', 'total': 100, 'used': 20, 'avail': 80, 'used_pct': 20.0, 'inodes_used_pct': 3.0}
    f = area_network.evaluate_disk('h', 'backend', [root, full], [], 90, 95)
    assert f['status'] == 'crit' and f['summary'].startswith('/var/log/app 96.9% used (62.0 MiB of 64.0 MiB, 2.0 MiB free)')
    assert area_network.evaluate_disk('h', None, [root], [('/gone', 'No such file')], 90, 95)['status'] == 'unknown'
    stats = {'cpu_stats': {'cpu_usage': {'total_usage': 2000}, 'system_cpu_usage': 20000, 'online_cpus': 2},
             'precpu_stats': {'cpu_usage': {'total_usage': 1000}, 'system_cpu_usage': 10000},
             'memory_stats': {'usage': 230 * 2 ** 20, 'limit': 256 * 2 ** 20, 'stats': {'inactive_file': 10 * 2 ** 20}}}
    assert area_network.cpu_percent(stats) == (20.0, 2)
    st, text, ev = area_network.evaluate_container_resources('app-backend', stats, 256 * 2 ** 20,
                                                             {'memory_warn_pct': 80, 'memory_crit_pct': 90, 'cpu_warn_pct': 90})
    assert st == 'warn' and ev['memory_pct'] == 85.9 and ev['exceeded'] == ['memory']
    assert text == 'app-backend CPU 20%, memory 220.0 MiB of 256.0 MiB limit (85.9%), net n/a (host network)'
    st, text, ev = area_network.evaluate_container_resources('db', stats, 0, {'memory_warn_pct': 80, 'memory_crit_pct': 90,
                                                                              'cpu_warn_pct': 90}, cpu=5.0)
    assert st == 'ok' and '(no limit)' in text and ev['memory_pct'] is None and ev['exceeded'] == []
    # CPU alone: the summary names memory too, the evidence says which measure is over
    st, text, ev = area_network.evaluate_container_resources('db', stats, 0, {'memory_warn_pct': 80, 'memory_crit_pct': 90,
                                                                              'cpu_warn_pct': 90}, cpu=190.0)
    assert st == 'warn' and 'memory' in text and ev['exceeded'] == ['cpu']


def test_cgroup_cpu_reading(tmp_path):
    v1 = tmp_path / 'cpuacct.usage'
    v1.write_text('123456789\n')
    assert area_network.read_cpu_ns(str(v1)) == 123456789
    v2 = tmp_path / 'cpu.stat'
    v2.write_text('usage_usec 2000\nuser_usec 1500\n')
    assert area_network.read_cpu_ns(str(v2)) == 2000000
    assert area_network.sample_cpu(str(v1), 0.01) == 0.0


def test_previous_image_from_label_or_older_local_tag():
    images = [{'Id': 'sha256:new', 'RepoTags': ['app-backend:1.1.0'], 'Created': 200},
              {'Id': 'sha256:old', 'RepoTags': ['app-backend:1.0.0', 'app-backend:stable'], 'Created': 100},
              {'Id': 'sha256:x', 'RepoTags': ['other:1'], 'Created': 150}]
    prev, how, tags = area_changes.previous_image('app-backend:1.1.0', 'sha256:new', {}, images, current_created=200)
    assert prev == 'app-backend:1.0.0' and how == 'version order of the local tags of app-backend' and 'other:1' not in tags
    assert area_changes.previous_image('app-backend:1.0.0', 'sha256:old', {}, images, current_created=100)[0] is None
    assert area_changes.previous_image('x:2', 'i', {'previous_image': 'x:1'}, [], 0)[:2] == ('x:1', 'label previous_image')
    assert area_changes.repo_of('registry.example.com:5000/team/app:1.2@sha256:ab') == 'registry.example.com:5000/team/app'


def test_deploy_in_window_is_warn_with_previous_image():
    info = {'Config': {'Image': 'app-backend:1.1.0', 'Labels': {}}, 'Image': 'sha256:new', 'Created': '2026-11-27T03:57:50Z',
            'State': {'StartedAt': '2026-11-27T03:57:51Z'}}
    images = [{'Id': 'sha256:new', 'RepoTags': ['app-backend:1.1.0'], 'Created': 200},
              {'Id': 'sha256:old', 'RepoTags': ['app-backend:1.0.0'], 'Created': 100}]
    item = area_changes.deploy_item('app-backend', info, {'Created': '1970-01-01T00:03:20Z', 'RepoDigests': []}, images, NOW, 900)
    assert item['deployed_in_window'] and item['previous_image'] == 'app-backend:1.0.0'
    f = area_changes.evaluate_deploys('app-backend', [('backend', item)], '15m')
    assert f['status'] == 'warn' and f['service'] == 'backend'
    assert f['summary'] == ('backend: app-backend:1.1.0 (sha256:new) deployed 2 min ago, inside the 15m window; '
                            'previous app-backend:1.0.0 (from version order of the local tags of app-backend)')
    old = area_changes.deploy_item('app-backend', dict(info, Created='2026-11-26T00:00:00Z'), {}, images, NOW, 900)
    f = area_changes.evaluate_deploys('app-backend', [('backend', old)], '15m')
    assert f['status'] == 'ok' and f['summary'].startswith('no deploy in the last 15m; newest backend') and old['restarted_in_window']


def test_host_changes_from_dpkg_log_and_files(tmp_path):
    log = tmp_path / 'dpkg.log'
    now = datetime.datetime.now()
    recent = (now - datetime.timedelta(minutes=2)).strftime('%Y-%m-%d %H:%M:%S')
    old = (now - datetime.timedelta(days=2)).strftime('%Y-%m-%d %H:%M:%S')
    log.write_text('%s upgrade openssl:amd64 3.0.1 3.0.2\n%s install curl:amd64 <none> 7.88\n%s status installed x 1\n' % (recent, old, recent))
    since = (now - datetime.timedelta(minutes=15)).timestamp()
    pkgs = area_changes.package_changes(str(log), since)
    assert [p['package'] for p in pkgs] == ['openssl:amd64'] and pkgs[0]['to'] == '3.0.2'
    etc = tmp_path / 'etc'
    (etc / 'nginx').mkdir(parents=True)
    (etc / 'nginx' / 'nginx.conf').write_text('x')
    stale = etc / 'hosts'
    stale.write_text('x')
    os.utime(stale, (since - 3600, since - 3600))
    files = area_changes.modified_files([str(etc)], since)
    assert [f['path'] for f in files] == [str(etc / 'nginx' / 'nginx.conf')]
    f = area_changes.evaluate_host_changes('h', pkgs, files, '15m', [str(etc)])
    assert f['status'] == 'warn' and f['summary'].startswith('1 package change in the last 15m (openssl)')
    assert area_changes.evaluate_host_changes('h', [], [], '15m', ['/etc'])['status'] == 'ok'


def test_previous_image_of_releases_built_in_the_same_second():
    """A fresh lab builds 1.0.0 and 1.1.0 within one second (the image list has whole seconds): the lower version
    is the previous one, never the higher."""
    images = [{'Id': 'sha256:new', 'RepoTags': ['app-backend:1.1.0'], 'Created': 1764596678},
              {'Id': 'sha256:old', 'RepoTags': ['app-backend:1.0.0'], 'Created': 1764596678}]
    prev, how, _tags = area_changes.previous_image('app-backend:1.1.0', 'sha256:new', {}, images, current_created=1764596678)
    assert prev == 'app-backend:1.0.0' and 'same second' in how
    assert area_changes.previous_image('app-backend:1.0.0', 'sha256:old', {}, images, current_created=1764596678)[0] is None


def test_a_deploy_to_a_lower_version_or_by_the_rollback_is_marked_rollback():
    """A downgrade (1.1.0 -> 1.0.0, e.g. a rollback by hand) or the collection's rollback is not new code."""
    from ansible_collections.sre.incident_response.plugins.module_utils.areas import changes as pc
    assert pc.is_downgrade('app-backend:1.0.0', 'app-backend:1.1.0') is True
    assert pc.is_downgrade('app-backend:1.1.0', 'app-backend:1.0.0') is False
    assert pc.is_downgrade('app-backend:latest', 'app-backend:1.1.0') is False
    assert pc.is_downgrade('other:1.0.0', 'app-backend:1.1.0') is False
    import datetime
    now = datetime.datetime(2026, 12, 1, 15, 0, tzinfo=datetime.timezone.utc)
    info = {'Config': {'Image': 'app-backend:1.0.0', 'Labels': {}}, 'Image': 'sha256:a',
            'Created': '2026-12-01T14:59:00Z', 'State': {'StartedAt': '2026-12-01T14:59:01Z'}}
    by_hand = pc.deploy_item('app-backend', info, {}, [], now, 900,
                             history=[(1, 'app-backend:1.1.0')])
    assert by_hand['previous_image'] == 'app-backend:1.1.0' and by_hand['rollback'] is True
    info['Config']['Labels'] = {pc.ROLLED_BACK_FROM_LABEL: 'app-backend:1.2.0'}
    info['Config']['Image'] = 'app-backend:1.3.0'
    assert pc.deploy_item('app-backend', info, {}, [], now, 900)['rollback'] is True
    info['Config']['Labels'] = {}
    forward = pc.deploy_item('app-backend', info, {}, [], now, 900, history=[(1, 'app-backend:1.1.0')])
    assert forward['rollback'] is False


def test_unit_memory_against_memorymax_from_cgroup_or_rss():
    from ansible_collections.sre.incident_response.plugins.module_utils.areas import network as area_network
    t = {'memory_warn_pct': 80, 'memory_crit_pct': 90}
    mib = 1024 * 1024
    status, text, ev = area_network.evaluate_unit_resources(
        'app-backend.service', {'MemoryCurrent': '[not set]', 'MemoryMax': str(256 * mib), 'MainPID': '42',
                                'ActiveState': 'active'}, t, rss_bytes=220 * mib)
    assert status == 'warn' and ev['memory_source'] == 'rss' and ev['memory_pct'] == 85.9 and ev['exceeded'] == ['memory']
    assert text.startswith('app-backend.service memory 220') and 'MemoryMax' in text
    status, text, ev = area_network.evaluate_unit_resources(
        'x.service', {'MemoryCurrent': str(240 * mib), 'MemoryMax': str(256 * mib)}, t, rss_bytes=1)
    assert status == 'crit' and ev['memory_source'] == 'cgroup' and ev['memory_used'] == 240 * mib
    status, text, ev = area_network.evaluate_unit_resources(
        'x.service', {'MemoryCurrent': str(mib), 'MemoryMax': 'infinity', 'MemoryHigh': 'infinity'}, t)
    assert status == 'ok' and ev['memory_limit'] is None and '(no MemoryMax)' in text
