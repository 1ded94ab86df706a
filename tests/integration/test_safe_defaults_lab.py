"""Host keys are checked by default (issue 18): the shipped ansible.cfg no longer tells ssh to accept any key.

- The SSH command line Ansible builds for the example inventory, the fleet inventory and an inventory of one's
  own (no host key settings), read from `-vvv` against a closed loopback port (nothing is reached).
- Against the fleet lab's sshd (a real server, real keys): a host whose key changed is refused with the
  example-like settings (no host key options in the inventory, the shipped ansible.cfg decides), while the
  right known_hosts lets the same ping through.
"""
import os
import re
import subprocess
import uuid

import pytest

from conftest import ROOT, VENV_BIN, _env
from fleet_lab import FleetEnv, fleet_up

CLOSED_PORT = '9'  # discard: nothing listens on the loopback here, ssh is refused at once


def adhoc(inventory, host, tmp_path, extra=(), env=None, verbosity='-vvv'):
    """ansible HOST -m ping with the shipped ansible.cfg; a control socket directory of its own for every call (a
    master left by an earlier call would carry the connection without a new key exchange)."""
    control = tmp_path / ('cp-%s' % uuid.uuid4().hex[:8])
    control.mkdir()
    cmd = [os.path.join(VENV_BIN, 'ansible'), '-i', inventory, host, '-m', 'ansible.builtin.ping', verbosity]
    for item in extra:
        cmd += ['-e', item]
    run_env = _env(dict({'ANSIBLE_SSH_CONTROL_PATH_DIR': str(control), 'ANSIBLE_STDOUT_CALLBACK': 'ansible.builtin.default'},
                        **(env or {})))
    run_env.pop('ANSIBLE_HOST_KEY_CHECKING', None)
    return subprocess.run(cmd, cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=120, check=False)


def ssh_exec_lines(proc):
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if 'SSH: EXEC ssh' in line]
    assert lines, proc.stdout + proc.stderr
    return lines


def own_inventory(tmp_path):
    inv = tmp_path / 'own.yml'
    inv.write_text('---\nall:\n  hosts:\n    web-01.internal.example:\n      ansible_host: 127.0.0.1\n'
                   '      ansible_user: ops\n')
    return str(inv)


@pytest.mark.parametrize('inventory,host', [
    ('inventory/example', 'api-01.prod.example.com'),
    ('inventory/fleet', 'web-1'),
    ('own', 'web-01.internal.example'),
])
def test_ssh_command_line_never_disables_host_key_checking(inventory, host, tmp_path):
    if inventory == 'own':
        inventory = own_inventory(tmp_path)
    proc = adhoc(inventory, host, tmp_path, extra=['ansible_host=127.0.0.1', 'ansible_port=%s' % CLOSED_PORT])
    assert 'UNREACHABLE' in proc.stdout, proc.stdout + proc.stderr
    for line in ssh_exec_lines(proc):
        assert 'StrictHostKeyChecking=no' not in line, line
        assert 'UserKnownHostsFile=/dev/null' not in line, line
        if host == 'web-1':
            assert 'StrictHostKeyChecking=yes' in line, line


def test_example_inventory_checks_host_keys_even_when_the_environment_turns_it_off(tmp_path):
    """Copied into a project whose ansible.cfg or environment disables checking, the example still checks."""
    proc = adhoc('inventory/example', 'api-01.prod.example.com', tmp_path,
                 extra=['ansible_host=127.0.0.1', 'ansible_port=%s' % CLOSED_PORT],
                 env={'ANSIBLE_HOST_KEY_CHECKING': 'False'})
    for line in ssh_exec_lines(proc):
        assert 'StrictHostKeyChecking=no' not in line, line


# --- a real sshd: the fleet lab ----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def fleet_sshd():
    """The fleet lab of LAB_INSTANCE is up (only its sshd is used: nothing is changed on the hosts)."""
    fleet_up()
    return FleetEnv


def example_like_inventory(tmp_path, known_hosts):
    """Like inventory/example: a user, a key, and nothing about host keys (the shipped ansible.cfg decides).

    known_hosts is where ssh looks (the user's ~/.ssh/known_hosts in real life)."""
    port = FleetEnv.ssh_ports['web-1']
    inv = tmp_path / ('example-like-%s.yml' % os.path.basename(known_hosts))
    inv.write_text('---\nall:\n  hosts:\n    web-1.prod.example.com:\n      ansible_host: 127.0.0.1\n'
                   '      ansible_port: %d\n      ansible_user: ansible\n      ansible_python_interpreter: /usr/bin/python3\n'
                   '      ansible_ssh_private_key_file: %s\n'
                   '      ansible_ssh_common_args: -o UserKnownHostsFile=%s -o IdentitiesOnly=yes\n'
                   % (port, os.path.join(FleetEnv.state_dir, 'id_ed25519'), known_hosts))
    return str(inv)


def test_a_changed_host_key_is_refused(fleet_sshd, tmp_path):
    port = FleetEnv.ssh_ports['web-1']
    with open(os.path.join(FleetEnv.state_dir, 'known_hosts'), encoding='utf-8') as handle:
        known = handle.read()
    entry = '[127.0.0.1]:%d' % port
    assert entry in known, known

    right = tmp_path / 'known_hosts_right'
    right.write_text(known)
    ok = adhoc(example_like_inventory(tmp_path, str(right)), 'web-1.prod.example.com', tmp_path, verbosity='-v')
    assert ok.returncode == 0 and '"ping": "pong"' in ok.stdout, ok.stdout + ok.stderr

    # the same host presenting another key (a man in the middle, a rebuilt host nobody verified)
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', str(tmp_path / 'impostor')], check=True)
    impostor = (tmp_path / 'impostor.pub').read_text().split()[:2]
    changed = tmp_path / 'known_hosts_changed'
    changed.write_text(''.join('%s %s\n' % (entry, ' '.join(impostor)) if line.startswith(entry + ' ') else line + '\n'
                               for line in known.splitlines()))
    assert ' '.join(impostor) in changed.read_text()
    refused = adhoc(example_like_inventory(tmp_path, str(changed)), 'web-1.prod.example.com', tmp_path, verbosity='-v')
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0 and '"ping": "pong"' not in out, out
    assert 'UNREACHABLE' in out and re.search(r'Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED', out), out
