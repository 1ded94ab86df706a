"""playbooks/triage.yml and investigate.yml over SSH against the fleet lab (systemd hosts, become).

The same contract as the Docker lab (test_triage.py): for each fault the right pattern comes first in
diagnosis.json, backed by a non-ok finding, with the exact first action. Plus what only a fleet has:
plain-text logs read from a file and from journald, client libraries missing on a host (an `unknown`
finding naming the package, installed by playbooks/prepare.yml), and a host whose sshd is down.
"""
import json
import os

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files

from fleet_lab import FleetEnv, fleet_run, heal, ssh


def triage(incident, **extra):
    res = fleet_run('playbooks/triage.yml', dict(incident['vars'], **extra), timeout=400)
    assert res.rc == 0, res
    return res, load(incident)


def load(incident):
    path = incident['path']
    return {
        'diagnosis': files.read_json(os.path.join(path, 'diagnosis.json')),
        'findings': files.read_json(os.path.join(path, 'findings.json')),
    }


def finding(out, host, check):
    return [f for f in out['findings'] if f['host'] == host and f['check'] == check][0]


def assert_no_secrets(incident, res):
    texts = [res.stdout, res.stderr]
    for base, dummy, names in os.walk(incident['path']):
        texts += [open(os.path.join(base, n), encoding='utf-8', errors='replace').read() for n in names]
    for secret in FleetEnv.secrets:
        assert not any(secret in t for t in texts), secret


FULL = pytest.mark.fleet_full
FAULTS = [
    # fault, acceptable first patterns, evidence that must back the first hypothesis
    ('bad_deploy', {'error_spike_after_deploy'}, 'web-1/deploy.recent'),
    ('backend_down', {'backend_down'}, 'web-1/health.'),
    ('db_lock', {'slow_responses', 'gradual_degradation'}, 'db-1/pg.'),
    ('redis_full', {'gradual_degradation', 'partial_failures'}, 'cache-1/redis.memory'),
    pytest.param('pool_exhaustion', {'gradual_degradation', 'slow_responses', 'backend_down'}, 'db-1/pg.', marks=FULL),
    pytest.param('disk_full', {'gradual_degradation'}, 'web-1/host.disk', marks=FULL),
    pytest.param('memory_growth', {'memory_growth'}, 'web-1/container.resources', marks=FULL),
    pytest.param('tls_expiring', {'gradual_degradation'}, 'net.tls_expiry', marks=FULL),
    ('unit_failed', {'backend_down'}, 'web-1/'),
    pytest.param('oom_kill', {'memory_growth'}, 'web-1/host.oom', marks=FULL),
    pytest.param('fd_leak', {'gradual_degradation'}, 'web-1/host.fds', marks=FULL),
]


@pytest.mark.parametrize('fault_name,patterns,evidence', FAULTS,
                         ids=[f.values[0] if hasattr(f, 'values') else f[0] for f in FAULTS])
def test_fault_is_diagnosed_over_ssh(fleet_fault, incident, fault_name, patterns, evidence):
    # leaked sessions count once idle in transaction for postgres_idle_in_transaction_warn_seconds (30 s by
    # default): the test says 1 s rather than waiting for the clock
    extra = {'postgres_idle_in_transaction_warn_seconds': 1} if fault_name == 'pool_exhaustion' else {}
    with fleet_fault(fault_name):
        res, out = triage(incident, **extra)
    dx = out['diagnosis']
    top = dx['hypotheses'][0]
    assert top['pattern'] in patterns, json.dumps(dx['hypotheses'], indent=1)
    assert any(evidence in key for key in top['evidence']), top
    bad = {'%s/%s' % (f['host'], f['check']) for f in out['findings'] if f['status'] in ('warn', 'crit')}
    for hyp in dx['hypotheses']:
        assert set(hyp['evidence']) & bad, hyp
        assert hyp['first_action'].startswith('ansible-playbook playbooks/')
        assert '-i inventory/fleet' in hyp['first_action'] and '-e incident_id=%s' % incident['id'] in hyp['first_action']
    assert 'traceback' not in res.stdout.lower()
    if fault_name == 'bad_deploy':
        assert top['first_action'] == ('ansible-playbook playbooks/remediate.yml -i inventory/fleet -e remediation_action=rollback '
                                       '-e incident_id=%s -e service=backend' % incident['id'])
        errors = finding(out, 'web-1', 'app.errors')
        assert errors['status'] == 'crit' and errors['evidence']['format'] == 'logfmt', errors
        assert errors['evidence']['source'].startswith('/var/log/app/app.log')
        assert '/opt/app/releases/1.1.0' in json.dumps(finding(out, 'web-1', 'deploy.recent')['evidence'])
    if fault_name == 'backend_down':
        assert 'app-backend.service inactive (dead' in finding(out, 'web-1', 'health.container')['summary']
    if fault_name == 'unit_failed':
        # the host's own view (areas/host.py): the service's unit failed, named with its result
        units = finding(out, 'web-1', 'host.units')
        assert units['status'] == 'crit' and units['service'] == 'backend', units
        assert 'backend (app-backend.service) failed/failed' in units['summary'] and '(result signal)' in units['summary']
        assert 'web-1/host.units' in top['evidence'] and top['action'] == 'restart', top
        assert finding(out, 'db-1', 'host.units')['status'] == 'ok'
    if fault_name == 'oom_kill':
        # the kill counted in app-backend.service's own cgroup (the kernel log is not readable in the lab's
        # unprivileged containers: the counter is the evidence), attributed to the service
        oom = finding(out, 'web-1', 'host.oom')
        assert oom['status'] in ('warn', 'crit') and oom['service'] == 'backend', oom
        assert oom['summary'].startswith('backend (app-backend.service): 1 OOM kill'), oom
        counted = [c for c in oom['evidence']['cgroups'] if c.get('unit') == 'app-backend.service']
        assert counted and counted[0]['oom_kill'] >= 1, oom['evidence']
        assert 'web-1/host.oom' in top['evidence'] and top['action'] == 'restart' and top['service'] == 'backend', top
        assert '-e service=backend' in top['first_action'], top
        assert finding(out, 'web-1', 'health.endpoint')['status'] == 'ok'  # the main process kept serving
        assert finding(out, 'db-1', 'host.oom')['status'] == 'ok'
        # the heal restarted the unit: systemd removed its cgroup, the counter starts again at 0
        counter = ssh('web-1', 'cg=$(systemctl show -p ControlGroup --value app-backend.service); '
                               'cat /sys/fs/cgroup$cg/memory.events /sys/fs/cgroup/memory$cg/memory.oom_control 2>/dev/null; true')
        assert 'oom_kill 0' in counter.splitlines(), counter
    if fault_name == 'fd_leak':
        # the backend's process at its unit's LimitNOFILE, named through the unit's cgroup: restart that service
        fds = finding(out, 'web-1', 'host.fds')
        assert fds['status'] == 'crit' and fds['service'] == 'backend', fds
        assert fds['evidence']['top_fds'][0]['fd_limit'] == 4096 and fds['evidence']['top_fds'][0]['service'] == 'backend'
        assert top['action'] == 'restart' and top['service'] == 'backend' and 'Descriptor leak in backend' in top['likely_cause']
        assert finding(out, 'db-1', 'host.fds')['status'] == 'ok'
    assert_no_secrets(incident, res)


def test_journald_lines_are_read_like_the_log_file(fleet_fault, incident):
    """The same plain-text lines, read with journalctl -u app-backend.service instead of the file."""
    with fleet_fault('bad_deploy'):
        res = fleet_run('playbooks/investigate.yml', dict(incident['vars'], area='app', fleet_backend_log_source='journald'),
                        timeout=300)
    assert res.rc == 0, res
    out = load(incident)
    errors = finding(out, 'web-1', 'app.errors')
    assert errors['status'] == 'crit', errors
    assert errors['evidence']['source'].startswith('journalctl -u app-backend.service')
    assert errors['evidence']['format'] == 'logfmt' and errors['evidence']['by_path']['/api/orders']['errors'] >= 3
    assert errors['summary'].startswith('/api/orders: ')


@pytest.mark.fleet_full
def test_investigate_over_ssh_healthy_fleet(exclusive_fleet, incident):
    heal('pool_exhaustion')  # a fresh backend: no errors left over from earlier faults in the window
    res = fleet_run('playbooks/investigate.yml', incident['vars'], timeout=400)
    assert res.rc == 0, res
    out = load(incident)
    by_key = {'%s/%s' % (f['host'], f['check']): f for f in out['findings']}
    for key in ('web-1/health.endpoint', 'web-1/health.container', 'web-1/app.errors', 'web-1/app.process',
                'db-1/pg.connectivity', 'db-1/pg.locks', 'db-1/pg.disk', 'cache-1/redis.connectivity',
                'cache-1/redis.memory', 'controller/net.tls_expiry', 'web-1/host.disk', 'web-1/container.resources'):
        assert key in by_key, sorted(by_key)
        assert by_key[key]['status'] == 'ok', by_key[key]
    assert 'TLS' in by_key['cache-1/redis.connectivity']['summary'] or by_key['cache-1/redis.connectivity']['evidence']
    assert_no_secrets(incident, res)


def test_missing_client_libraries_are_unknown_findings_until_prepare(exclusive_fleet, incident):
    """Hosts without psycopg2/redis-py and the probe told to use them (client: library; the default, auto, falls
    back to psql/redis-cli: test_zero_install.py): unknown findings that name the package, never a traceback;
    playbooks/prepare.yml installs them from the distribution's packages, and a second run changes nothing."""
    try:
        _missing_libraries_then_prepare(incident)
    finally:
        assert fleet_run('playbooks/prepare.yml').rc == 0  # leave the fleet prepared for the other tests


def _missing_libraries_then_prepare(incident):
    for host, package in (('db-1', 'python3-psycopg2'), ('cache-1', 'python3-redis')):
        ssh(host, 'apt-get remove -y -q %s >/dev/null 2>&1; python3 -c "import %s" 2>/dev/null && exit 1 || true'
            % (package, 'psycopg2' if 'psycopg' in package else 'redis'))
    library = {'postgres_client': 'library', 'redis_client': 'library'}
    res = fleet_run('playbooks/investigate.yml', dict(incident['vars'], area='db', **library), timeout=300)
    assert res.rc == 0, res
    res2 = fleet_run('playbooks/investigate.yml', dict(incident['vars'], area='redis', **library), timeout=300)
    assert res2.rc == 0, res2
    out = load(incident)
    pg = finding(out, 'db-1', 'pg.connectivity')
    rd = finding(out, 'cache-1', 'redis.connectivity')
    assert pg['status'] == 'unknown' and 'psycopg2' in pg['summary'] and 'python3-psycopg2' in pg['summary'], pg
    assert rd['status'] == 'unknown' and 'python3-redis' in rd['summary'], rd
    # one per area (pg.log reads the server's log file and needs no client library)
    assert [f['check'] for f in out['findings'] if f['host'] == 'db-1' and f['check'].startswith('pg.')
            and f['check'] != 'pg.log'] == ['pg.connectivity']
    for text in (res.stdout, res2.stdout):
        assert 'Traceback' not in text and 'MODULE FAILURE' not in text

    check = fleet_run('playbooks/prepare.yml', check=True)
    assert check.rc == 0, check
    assert ssh('db-1', 'python3 -c "import psycopg2" >/dev/null 2>&1 || echo missing').strip() == 'missing'  # --check: nothing
    first = fleet_run('playbooks/prepare.yml')
    assert first.rc == 0, first
    assert 'db-1 (postgres): python3-psycopg2 ok' in first.stdout and 'cache-1 (redis): python3-redis ok' in first.stdout
    again = fleet_run('playbooks/prepare.yml')
    assert again.rc == 0 and ' changed=0 ' in again.stdout.split('PLAY RECAP', 1)[1].replace('changed=0  ', 'changed=0 ')
    res3 = fleet_run('playbooks/investigate.yml', dict(incident['vars'], area='db'), timeout=300)
    assert res3.rc == 0, res3
    assert finding(load(incident), 'db-1', 'pg.connectivity')['status'] == 'ok'
    assert finding(load(incident), 'db-1', 'pg.connectivity')['evidence']['client'] == 'library'


def test_a_host_with_sshd_stopped_is_a_reachability_finding_and_the_rest_finish(exclusive_fleet, incident):
    container = FleetEnv.container_prefix + 'cache-1'
    import subprocess
    # sshd and its sessions go (ssh.service's own processes): SSH's ControlPersist master cannot carry on either
    subprocess.run(['docker', 'exec', container, 'systemctl', 'stop', 'ssh.service'], check=True, timeout=60)
    subprocess.run(['docker', 'exec', container, 'systemctl', 'kill', '--signal=SIGKILL', 'ssh.service'], timeout=60, check=False)
    try:
        res = fleet_run('playbooks/triage.yml', incident['vars'], timeout=400)
    finally:
        subprocess.run(['docker', 'exec', container, 'systemctl', 'start', 'ssh.service'], check=True, timeout=60)
    assert res.rc in (0, 4), res  # 4: Ansible's own exit code when a host was unreachable
    assert 'cache-1' in res.stdout.split('PLAY RECAP', 1)[1] and 'unreachable=1' in res.stdout.split('PLAY RECAP', 1)[1]
    out = load(incident)
    reach = finding(out, 'cache-1', 'host.reachability')
    assert reach['status'] == 'crit' and 'unreachable' in reach['summary'], reach
    assert finding(out, 'web-1', 'health.endpoint')['status'] == 'ok'
    assert finding(out, 'db-1', 'health.container')['status'] == 'ok'  # the others were investigated
    assert finding(out, 'db-1', 'pg.connectivity')['status'] in ('ok', 'unknown')
    assert os.path.exists(os.path.join(incident['path'], 'diagnosis.json'))
