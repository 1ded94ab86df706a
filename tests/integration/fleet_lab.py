"""Helpers and fixtures of the fleet lab tests (tests/lab/fleet: systemd hosts reached over SSH).

- `fleet` (session, in conftest.py): the fleet lab of LAB_INSTANCE is up (fleet-up when it is not) and
  prepared (playbooks/prepare.yml), so every probe has its client library.
- `fleet_run(path, extra_vars, check, inventory)`: ansible-playbook with inventory/fleet.
- `fleet_fault(name)` (conftest.py): context manager injecting a fleet fault and healing it afterwards.
- `ssh(host, command)`: a command on a fleet host over SSH as the ansible user with sudo, host key
  checked against the lab's known_hosts: how the tests look at hosts from outside the playbook under test.

State-changing tests hold /tmp/sre-incident-fleet-<instance>.lock (a different lock from the Docker lab's).
"""
import json
import os
import subprocess
import urllib.request

from conftest import ROOT, reentrant_flock, run

INSTANCE = int(os.environ.get('LAB_INSTANCE', '0') or 0)
INVENTORY = 'inventory/fleet'
FAULT_PLAYBOOK = 'tests/lab/fleet/playbooks/fault.yml'


class FleetEnv(object):
    instance = INSTANCE
    ssh_base = 2200 + 20 * INSTANCE
    port_base = 25000 + 100 * INSTANCE
    ssh_ports = {'db-1': ssh_base + 1, 'cache-1': ssh_base + 2, 'web-1': ssh_base + 3}
    backend_port = port_base + 1
    proxy_port = port_base + 41
    db_port = port_base + 32
    redis_port = port_base + 79
    base_url = 'http://127.0.0.1:%d' % (port_base + 1)
    state_dir = os.path.join(ROOT, 'tests', 'lab', 'build', 'fleet%d' % INSTANCE)
    container_prefix = 'fleet%d-' % INSTANCE
    pg_password = 'fleet-pg-S3cret-61d0'
    analyst_password = 'fleet-analyst-S3cret-c3a7'
    redis_password = 'fleet-redis-S3cret-5be2'
    secrets = (pg_password, analyst_password, redis_password)


def ssh(host, command, check=True, timeout=60, stdin=None):
    """Run `command` (a shell string) on a fleet host as root through sudo, over SSH (`stdin`: text to feed it)."""
    cmd = ['ssh', '-i', os.path.join(FleetEnv.state_dir, 'id_ed25519'), '-o', 'IdentitiesOnly=yes',
           '-o', 'UserKnownHostsFile=%s' % os.path.join(FleetEnv.state_dir, 'known_hosts'),
           '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5',
           '-p', str(FleetEnv.ssh_ports[host]), 'ansible@127.0.0.1', 'sudo', 'sh', '-c', _quote(command)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=stdin, check=False)
    if check and proc.returncode != 0:
        raise AssertionError('ssh %s %r failed (%d): %s' % (host, command, proc.returncode, proc.stderr))
    return proc.stdout


def psql(sql):
    """Rows (lists of strings) of a query run on db-1 as postgres, over SSH."""
    out = ssh('db-1', 'runuser -u postgres -- psql -p %d -d app -X -q -t -A -F "|" -c %s' % (FleetEnv.db_port, _quote(sql)))
    return [line.split('|') for line in out.splitlines() if line.strip()]


def redis_cli(*args):
    """redis-cli over TLS on cache-1 (the password in REDISCLI_AUTH), over SSH."""
    return ssh('cache-1', 'REDISCLI_AUTH=%s redis-cli --tls --cacert /etc/redis/tls/ca.crt -h 127.0.0.1 -p %d --no-auth-warning %s'
               % (_quote(FleetEnv.redis_password), FleetEnv.redis_port, ' '.join(_quote(a) for a in args)))


def unit(host, name, *props):
    """systemctl show properties of a unit on a fleet host, over SSH."""
    out = ssh(host, 'systemctl show %s %s' % (name, ' '.join('-p ' + p for p in props)))
    return dict(line.split('=', 1) for line in out.splitlines() if '=' in line)


def _quote(text):
    return "'" + text.replace("'", "'\"'\"'") + "'"


def fleet_run(path, extra_vars=None, check=False, timeout=600, inventory=INVENTORY, args=None, env=None):
    return run(path, extra_vars, check=check, timeout=timeout, inventory=inventory, args=args, env=env)


# Exclusive, re-entrant (within this process) lock on the fleet lab instance.
fleet_lock = reentrant_flock('/tmp/sre-incident-fleet-%d.lock' % INSTANCE)


def ready():
    try:
        with urllib.request.urlopen(FleetEnv.base_url + '/health/ready', timeout=3) as resp:
            if resp.status != 200 or json.loads(resp.read()).get('status') != 'ok':
                return False
        return all(ssh(h, 'true', check=False, timeout=20) == '' for h in FleetEnv.ssh_ports) and \
            os.path.exists(os.path.join(FleetEnv.state_dir, 'known_hosts'))
    except Exception:  # pylint: disable=broad-except
        return False


def inject(name):
    res = fleet_run(FAULT_PLAYBOOK, {'lab_fault': name, 'lab_fault_state': 'present'})
    assert res.rc == 0, res
    return res


def heal(name):
    res = fleet_run(FAULT_PLAYBOOK, {'lab_fault': name, 'lab_fault_state': 'absent'})
    assert res.rc == 0, res
    return res


def fleet_up():
    with fleet_lock():
        if not ready():
            res = fleet_run('tests/lab/fleet/playbooks/up.yml', timeout=1200)
            assert res.rc == 0, res
        assert ready(), 'the fleet lab is not ready after fleet-up'
