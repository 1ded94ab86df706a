"""Unit tests: the collection's Docker client (against a fake engine on a unix socket) and docker_restart's rules."""
import http.server
import json
import os
import socketserver
import sys
import threading

import pytest

from ansible_collections.sre.incident_response.plugins.module_utils import docker_api
from ansible_collections.sre.incident_response.plugins.module_utils.docker_api import DockerClient, DockerError
from ansible_collections.sre.incident_response.plugins.modules import docker_restart


class FakeEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    errors = None

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if not isinstance(exc, (BrokenPipeError, ConnectionResetError)):  # a client that hung up is not a fault
            self.errors.append(repr(exc))


def make_handler(calls, routes):
    class Handler(http.server.BaseHTTPRequestHandler):
        def _serve(self):
            length = int(self.headers.get('Content-Length') or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            calls.append((self.command, self.path, body))
            path = self.path.split('?', 1)[0]
            status, payload = routes.get((self.command, path), (404, {'message': 'No such container: x'}))
            data = json.dumps(payload).encode() if payload is not None else b''
            self.send_response(status)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, *args):
            pass
    return Handler


@pytest.fixture
def engine(tmp_path):
    calls, routes = [], {}
    path = str(tmp_path / 'docker.sock')
    server = FakeEngine(path, make_handler(calls, routes))
    server.errors = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield DockerClient('unix://' + path, timeout=5), calls, routes
    finally:
        server.shutdown()
        server.server_close()
    assert not server.errors, server.errors


CONTAINER = {'Id': 'c' * 64, 'Name': '/app-backend', 'RestartCount': 2,
             'Config': {'Image': 'app-backend:1.0.0', 'Env': ['DB_PASSWORD=secret']},
             'State': {'Status': 'running', 'Running': True, 'StartedAt': '2026-11-27T03:48:01Z', 'Health': {'Status': 'healthy'}}}


def test_inspect_drops_the_environment_unless_asked(engine):
    client, calls, routes = engine
    routes[('GET', '/v1.41/containers/app-backend/json')] = (200, CONTAINER)
    assert 'Env' not in client.inspect('app-backend')['Config']
    assert client.container('app-backend', keep_env=True)['Config']['Env'] == ['DB_PASSWORD=secret']
    assert client.container('gone') is None and client.find_image('nope:1') is None


def test_changes_are_the_engine_calls_with_their_parameters(engine):
    client, calls, routes = engine
    for path in ('restart', 'stop', 'start', 'rename'):
        routes[('POST', '/v1.41/containers/app%2Fx/' + path)] = (204, None)
    routes[('POST', '/v1.41/containers/create')] = (201, {'Id': 'n' * 64, 'Warnings': []})
    routes[('DELETE', '/v1.41/containers/app%2Fx')] = (204, None)
    client.restart('app/x', 7)
    client.stop('app/x', 3)
    client.start('app/x')
    client.rename('app/x', 'app-aside')
    client.remove('app/x', force=True)
    assert client.create({'Image': 'app:1'}, name='app-rollback') == 'n' * 64
    assert [(m, p) for m, p, b in calls] == [
        ('POST', '/v1.41/containers/app%2Fx/restart?t=7'), ('POST', '/v1.41/containers/app%2Fx/stop?t=3'),
        ('POST', '/v1.41/containers/app%2Fx/start'), ('POST', '/v1.41/containers/app%2Fx/rename?name=app-aside'),
        ('DELETE', '/v1.41/containers/app%2Fx?force=1&v=0'), ('POST', '/v1.41/containers/create?name=app-rollback')]
    assert calls[-1][2] == {'Image': 'app:1'}


def test_engine_errors_carry_the_status(engine):
    client, calls, routes = engine
    routes[('POST', '/v1.41/containers/app/restart')] = (500, {'message': 'cannot restart: busy'})
    with pytest.raises(DockerError) as err:
        client.restart('app')
    assert err.value.status == 500 and 'busy' in str(err.value)
    with pytest.raises(DockerError) as err:
        DockerClient('unix://' + os.path.join(os.path.dirname(client.path), 'absent.sock')).inspect('x')
    assert err.value.status is None and 'absent.sock' in str(err.value)


def test_only_unix_sockets(monkeypatch):
    monkeypatch.delenv('DOCKER_HOST', raising=False)
    assert docker_api.socket_path() == '/var/run/docker.sock'
    monkeypatch.setenv('DOCKER_HOST', 'unix:///run/user/1000/docker.sock')
    assert docker_api.socket_path() == '/run/user/1000/docker.sock'
    with pytest.raises(DockerError):
        docker_api.socket_path('tcp://127.0.0.1:2376')


# --- docker_restart -----------------------------------------------------------------------------

def test_restart_plan_line_is_what_the_role_always_showed():
    before = docker_restart.describe('app-backend', CONTAINER)
    assert before == {'type': 'docker', 'container': 'app-backend', 'id': 'c' * 12, 'image': 'app-backend:1.0.0',
                      'status': 'running', 'running': True, 'started_at': '2026-11-27T03:48:01Z', 'restart_count': 2,
                      'health': 'healthy'}
    assert docker_restart.plan_line(before) == ('restart container app-backend (image app-backend:1.0.0, running since '
                                                '2026-11-27T03:48:01Z, health healthy, restarts 2)')
    assert docker_restart.describe('x', {'State': {}})['health'] == 'none'


def test_restart_once_per_observed_start():
    before = docker_restart.describe('app-backend', CONTAINER)
    assert docker_restart.decide(before, None) == (True, docker_restart.plan_line(before))
    assert docker_restart.decide(before, '2026-11-27T03:48:01Z')[0] is True
    again, line = docker_restart.decide(before, '2026-11-27T03:00:00Z')
    assert again is False and 'not restarted again' in line and '2026-11-27T03:00:00Z' in line
