"""testinfra over SSH (molecule's ansible backend): each fleet host boots systemd, runs its services as units
bound to 127.0.0.1, and has the libraries the probes import (installed by the prepare step)."""
import os

INSTANCE = int(os.environ.get('LAB_INSTANCE', '0') or 0)
BASE = 25000 + 100 * INSTANCE
UNITS = {'web-1': ['app-backend.service', 'nginx.service', 'ssh.service'],
         'db-1': ['postgresql@15-main.service', 'ssh.service'],
         'cache-1': ['redis-server.service', 'ssh.service']}
PORTS = {'web-1': [BASE + 1, BASE + 41], 'db-1': [BASE + 32], 'cache-1': [BASE + 79]}
MODULES = {'web-1': 'cryptography', 'db-1': 'psycopg2', 'cache-1': 'redis'}


def _name(host):
    return host.backend.get_hostname()


def test_systemd_is_pid_1_and_units_run(host):
    assert host.process.get(pid=1).comm == 'systemd'
    for unit in UNITS[_name(host)]:
        service = host.service(unit)
        assert service.is_running, host.run('journalctl -u %s -n 30 --no-pager' % unit).stdout


def test_services_listen_on_loopback_only(host):
    for port in PORTS[_name(host)]:
        assert host.socket('tcp://127.0.0.1:%d' % port).is_listening
        assert not host.socket('tcp://0.0.0.0:%d' % port).is_listening


def test_connected_as_ansible_with_sudo(host):
    # molecule's ansible backend logs in as ansible and becomes root with sudo (group_vars/fleet.yml)
    assert host.run('id -un').stdout.strip() == 'root'
    assert host.run('printenv SUDO_USER').stdout.strip() == 'ansible'


def test_client_library_of_the_host_imports(host):
    assert host.run('python3 -c "import %s"' % MODULES[_name(host)]).rc == 0


def test_release_symlink_on_web(host):
    if _name(host) == 'web-1':
        link = host.file('/opt/app/current')
        assert link.is_symlink and link.linked_to.startswith('/opt/app/releases/')
