"""testinfra: the lab's containers run with host networking and answer on 127.0.0.1."""
import json
import os

import pytest
import testinfra

INSTANCE = int(os.environ.get('LAB_INSTANCE', '0') or 0)
PREFIX = '' if INSTANCE == 0 else 'lab%d-' % INSTANCE
OFFSET = INSTANCE * 100
CONTAINERS = ['app-backend', 'app-db', 'app-redis', 'app-proxy', 'app-payments', 'app-dns']


@pytest.fixture(name='host')
def local_host():
    """The lab runs on the machine that runs molecule: talk to it locally."""
    return testinfra.get_host('local://')


def _logs(host, name):
    return host.run('docker logs --tail 30 %s%s 2>&1' % (PREFIX, name)).stdout


@pytest.mark.parametrize('name', CONTAINERS)
def test_container_running_on_host_network(host, name):
    out = host.run('docker inspect %s%s' % (PREFIX, name))
    assert out.rc == 0, out.stderr
    info = json.loads(out.stdout)[0]
    assert info['State']['Running'], _logs(host, name)
    assert info['HostConfig']['NetworkMode'] == 'host'


@pytest.mark.parametrize('port', [18000, 15432, 16379, 18443, 18081])
def test_service_listens_on_loopback_only(host, port):
    sock = host.socket('tcp://127.0.0.1:%d' % (port + OFFSET))
    assert sock.is_listening, _logs(host, 'app-backend')
    assert not host.socket('tcp://0.0.0.0:%d' % (port + OFFSET)).is_listening


def test_backend_ready(host):
    out = host.run('curl -fsS http://127.0.0.1:%d/health/ready' % (18000 + OFFSET))
    assert out.rc == 0, _logs(host, 'app-backend')
    assert json.loads(out.stdout)['status'] == 'ok'


def test_postgres_accepts_connections(host):
    out = host.run('docker exec -u postgres %sapp-db /usr/lib/postgresql/15/bin/pg_isready -h 127.0.0.1 -p %d'
                   % (PREFIX, 15432 + OFFSET))
    assert out.rc == 0, _logs(host, 'app-db')
