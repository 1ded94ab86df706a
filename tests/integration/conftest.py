"""Integration fixtures: real playbooks against the real incident lab.

- `lab` (session): the lab is up and healthy (starts it when it is not).
- `run_playbook(path, extra_vars=None, check=False, tags=None, env=None, timeout=600)`:
  runs ansible-playbook from the repository root with the lab inventory and
  returns a PlaybookResult (rc, stdout, stderr).
- `incident(…)`: a fresh incident id and directory under the test's tmp path.
- `fault(name)`: context manager that injects a lab fault and heals it afterwards.
- `lab_env`: ports and container names of the lab instance under test (LAB_INSTANCE).
- `receiver`: the HTTP receiver of test_comms_delivery.py (Slack, webhook, PagerDuty, Statuspage) on 127.0.0.1.
- `fleet`, `fleet_fault`, `exclusive_fleet`: the fleet lab (tests/integration/fleet_lab.py).
Fixtures used by several modules live here: pytest finds them without a module importing them.

Tests that change lab state hold an exclusive lock (/tmp/sre-incident-lab-<instance>.lock)
so that parallel runs against the same lab instance never interleave faults.
"""
import contextlib
import fcntl
import json
import os
import subprocess
import uuid

import pytest

# The tests read the default callback's output (task banners, debug messages, PLAY RECAP); the collection's
# ansible.cfg makes the on-call console the stdout callback, and test_oncall_console.py tests that one.
os.environ.setdefault('ANSIBLE_STDOUT_CALLBACK', 'ansible.builtin.default')

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, '.venv', 'bin')
INSTANCE = int(os.environ.get('LAB_INSTANCE', '0') or 0)
PREFIX = '' if INSTANCE == 0 else 'lab%d-' % INSTANCE
OFFSET = INSTANCE * 100


def pytest_configure(config):
    config.addinivalue_line('markers', 'fleet_full: fleet lab tests run by make test-full only (CI budget of make test)')


class LabEnv(object):
    instance = INSTANCE
    prefix = PREFIX
    backend_port = 18000 + OFFSET
    proxy_port = 18443 + OFFSET
    payments_port = 18081 + OFFSET
    db_port = 15432 + OFFSET
    redis_port = 16379 + OFFSET
    dns_port = 15353 + OFFSET
    backend = PREFIX + 'app-backend'
    db = PREFIX + 'app-db'
    redis = PREFIX + 'app-redis'
    proxy = PREFIX + 'app-proxy'
    payments = PREFIX + 'app-payments'
    dns = PREFIX + 'app-dns'
    log_volume_path = '/var/lib/docker/volumes/%sapp-logs/_data' % PREFIX
    pg_password = 'lab-pg-S3cret-4f9a'
    pg_superuser_password = 'lab-pgsu-S3cret-77c1'
    analyst_password = 'lab-analyst-S3cret-2b8e'
    redis_password = 'lab-redis-S3cret-9d3e'
    secrets = (pg_password, pg_superuser_password, analyst_password, redis_password)
    base_url = 'http://127.0.0.1:%d' % (18000 + OFFSET)


class PlaybookResult(object):
    def __init__(self, proc, cmd):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.cmd = cmd

    def __repr__(self):
        return 'PlaybookResult(rc=%s)\n--- cmd: %s\n--- stdout (tail):\n%s\n--- stderr (tail):\n%s' % (
            self.rc, ' '.join(self.cmd), self.stdout[-6000:], self.stderr[-3000:])


def _env(extra=None):
    env = dict(os.environ)
    env['PATH'] = VENV_BIN + os.pathsep + env.get('PATH', '')
    env['ANSIBLE_CONFIG'] = os.path.join(ROOT, 'ansible.cfg')
    env.setdefault('ANSIBLE_FORCE_COLOR', '0')
    env['ANSIBLE_NOCOLOR'] = '1'
    env['LAB_INSTANCE'] = str(INSTANCE)
    env.update(extra or {})
    return env


def run(path, extra_vars=None, check=False, tags=None, env=None, timeout=600, inventory='inventory/lab', args=None):
    cmd = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory, path]
    if extra_vars:
        cmd += ['-e', json.dumps(extra_vars)]
    if check:
        cmd.append('--check')
    if tags:
        cmd += ['--tags', tags]
    cmd += list(args or [])
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(env), capture_output=True, text=True, timeout=timeout, check=False)
    return PlaybookResult(proc, cmd)


def docker(*args, check=True):
    proc = subprocess.run(['docker'] + list(args), capture_output=True, text=True, timeout=120, check=False)
    if check and proc.returncode != 0:
        raise AssertionError('docker %s failed: %s' % (' '.join(args), proc.stderr))
    return proc.stdout


def reentrant_flock(path):
    """An exclusive lock on a file, re-entrant within this process (a context manager factory)."""
    state = {'depth': 0, 'handle': None}

    @contextlib.contextmanager
    def lock():
        if state['depth'] == 0:
            handle = open(path, 'w')
            fcntl.flock(handle, fcntl.LOCK_EX)
            state['handle'] = handle
        state['depth'] += 1
        try:
            yield
        finally:
            state['depth'] -= 1
            if state['depth'] == 0:
                fcntl.flock(state['handle'], fcntl.LOCK_UN)
                state['handle'].close()
                state['handle'] = None
    return lock


# Exclusive, re-entrant (within this process) lock on the lab instance.
lab_lock = reentrant_flock('/tmp/sre-incident-lab-%d.lock' % INSTANCE)


def _ready():
    import urllib.request
    try:
        with urllib.request.urlopen(LabEnv.base_url + '/health/ready', timeout=3) as resp:
            return resp.status == 200 and json.loads(resp.read()).get('status') == 'ok'
    except Exception:
        return False


def inject(name):
    res = run('tests/lab/playbooks/fault.yml', {'lab_fault': name, 'lab_fault_state': 'present'})
    assert res.rc == 0, res
    return res


def heal(name):
    res = run('tests/lab/playbooks/fault.yml', {'lab_fault': name, 'lab_fault_state': 'absent'})
    assert res.rc == 0, res
    return res


@pytest.fixture(scope='session')
def lab_env():
    return LabEnv


@pytest.fixture(scope='session')
def lab():
    """The lab is up and healthy; brought up when it is not."""
    with lab_lock():
        if not _ready():
            res = run('tests/lab/playbooks/up.yml', timeout=900)
            assert res.rc == 0, res
        assert _ready(), 'lab is not ready after up.yml'
    return LabEnv


@pytest.fixture
def run_playbook():
    return run


@pytest.fixture
def incident(tmp_path):
    """A fresh incident: {'id', 'dir' (incident_dir root), 'path' (dir/id), 'vars' (extra vars)}."""
    incident_id = 'INC-TEST-%s' % uuid.uuid4().hex[:8]
    root = tmp_path / 'incidents'
    return {'id': incident_id, 'dir': str(root), 'path': str(root / incident_id),
            'vars': {'incident_id': incident_id, 'incident_dir': str(root)}}


@pytest.fixture
def fault(lab):
    """fault('name') injects a lab fault for the test and heals it afterwards (under the lab lock)."""
    injected = []

    @contextlib.contextmanager
    def _fault(name):
        with lab_lock():
            inject(name)
            injected.append(name)
            try:
                yield name
            finally:
                heal(name)
                injected.remove(name)

    return _fault


@pytest.fixture
def exclusive_lab(lab):
    """Hold the lab lock for a test that changes lab state itself (remediation tests)."""
    with lab_lock():
        yield lab


@pytest.fixture
def receiver():
    """A local HTTP receiver that records every request (test_comms_delivery.Receiver)."""
    from test_comms_delivery import Receiver
    rec = Receiver()
    yield rec
    rec.close()


@pytest.fixture(scope='session')
def fleet():
    """The fleet lab is up and prepared (client libraries of the probes installed from Debian packages)."""
    import fleet_lab
    fleet_lab.fleet_up()
    with fleet_lab.fleet_lock():
        res = fleet_lab.fleet_run('playbooks/prepare.yml', timeout=600)
        assert res.rc == 0, res
    return fleet_lab.FleetEnv


@pytest.fixture
def fleet_fault(fleet):
    """Context manager injecting a fleet fault and healing it afterwards, under the fleet lock."""
    import fleet_lab

    @contextlib.contextmanager
    def _fault(name):
        with fleet_lab.fleet_lock():
            fleet_lab.inject(name)
            try:
                yield name
            finally:
                fleet_lab.heal(name)

    return _fault


@pytest.fixture
def exclusive_fleet(fleet):
    """Hold the fleet lock for a test that changes fleet state itself."""
    import fleet_lab
    with fleet_lab.fleet_lock():
        yield fleet
