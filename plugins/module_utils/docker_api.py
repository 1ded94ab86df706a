# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's one Docker client: the Docker Engine API over the unix socket, standard library only.

Every plugin and role of the collection talks to Docker through ``DockerClient`` (the lab under
tests/lab uses community.docker; that is test tooling). Why one stdlib client (docs/architecture.md):
nothing to install on the managed host (no Docker SDK, no requests), one code path for the default
socket and ``DOCKER_HOST``, and the same fast calls for the probes (inspect, stats, top, logs,
images, events, one exec) and the remediations (create, start, stop, restart, rename, remove).

``inspect()`` never returns a container's ``Config.Env`` (it holds secrets); only a caller that must
recreate the container (docker_rollback) asks for it with ``keep_env=True`` and never returns it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import socket
import struct

import http.client
from urllib.parse import quote, urlencode

DEFAULT_SOCKET = '/var/run/docker.sock'
API_VERSION = 'v1.41'


class DockerError(Exception):
    """An error talking to the engine; ``status`` is the HTTP status (404: no such container)."""

    def __init__(self, message, status=None):
        super(DockerError, self).__init__(message)
        self.status = status


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        http.client.HTTPConnection.__init__(self, 'localhost', timeout=timeout)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def _q(name):
    """A container or image reference as one path segment."""
    return quote(str(name), safe='')


def socket_path(docker_host=None):
    """The unix socket path from docker_host / DOCKER_HOST (unix:// only), or the default."""
    value = docker_host or os.environ.get('DOCKER_HOST') or ''
    if value.startswith('unix://'):
        return value[len('unix://'):]
    if value.startswith('/'):
        return value
    if value:
        raise DockerError('only unix:// Docker hosts are supported, got %s' % value)
    return DEFAULT_SOCKET


def demux(raw):
    """Split Docker's multiplexed stream (8-byte frame headers) into (stdout, stderr) text.

    A TTY container sends raw bytes without headers; those come back as stdout.
    """
    out, err = [], []
    pos = 0
    if len(raw) >= 8 and raw[0:1] in (b'\x00', b'\x01', b'\x02') and raw[1:4] == b'\x00\x00\x00':
        while pos + 8 <= len(raw):
            stream = raw[pos]
            size = struct.unpack('>I', raw[pos + 4:pos + 8])[0]
            chunk = raw[pos + 8:pos + 8 + size]
            (err if stream == 2 else out).append(chunk)
            pos += 8 + size
    else:
        out.append(raw)
    return b''.join(out).decode('utf-8', 'replace'), b''.join(err).decode('utf-8', 'replace')


class DockerClient(object):
    def __init__(self, docker_host=None, timeout=10):
        self.path = socket_path(docker_host)
        self.timeout = timeout

    def _request(self, method, path, params=None, body=None, timeout=None):
        url = '/%s%s' % (API_VERSION, path)
        if params:
            url += '?' + urlencode(params)
        conn = _UnixHTTPConnection(self.path, timeout or self.timeout)
        try:
            headers = {'Host': 'docker'}
            payload = None
            if body is not None:
                payload = json.dumps(body)
                headers['Content-Type'] = 'application/json'
            conn.request(method, url, body=payload, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise DockerError('Docker engine at unix://%s: %s' % (self.path, exc))
        finally:
            conn.close()
        if resp.status >= 400:
            try:
                message = json.loads(data.decode('utf-8')).get('message')
            except ValueError:
                message = data.decode('utf-8', 'replace')[:200]
            raise DockerError(message or 'HTTP %d' % resp.status, status=resp.status)
        return data

    def _json(self, method, path, params=None, body=None, timeout=None):
        data = self._request(method, path, params, body, timeout)
        return json.loads(data.decode('utf-8')) if data else None

    def inspect(self, name, keep_env=False):
        """Container inspect; without keep_env, Config.Env (it holds secrets) is dropped."""
        data = self._json('GET', '/containers/%s/json' % _q(name))
        if not keep_env and isinstance(data.get('Config'), dict):
            data['Config'].pop('Env', None)
        return data

    def container(self, name, keep_env=False):
        """inspect(), or None when there is no such container."""
        try:
            return self.inspect(name, keep_env=keep_env)
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise

    def find_image(self, ref):
        """Image inspect by reference (repo:tag, digest or ID), or None when the image is not present locally."""
        try:
            return self.image(ref)
        except DockerError as exc:
            if exc.status == 404:
                return None
            raise

    # -- changes: every call below changes the engine's state; callers honour check mode before calling
    def create(self, body, name=None):
        """Create a container from a full create body (Config + HostConfig + NetworkingConfig); returns its ID."""
        return self._json('POST', '/containers/create', {'name': name} if name else None, body=body)['Id']

    def start(self, name):
        self._request('POST', '/containers/%s/start' % _q(name))

    def stop(self, name, stop_timeout=10):
        """Stop (SIGTERM, SIGKILL after stop_timeout seconds); an already stopped container is fine (HTTP 304)."""
        self._request('POST', '/containers/%s/stop' % _q(name), {'t': int(stop_timeout)},
                      timeout=self.timeout + int(stop_timeout))

    def restart(self, name, stop_timeout=10):
        """Restart in place (same container, same spec); starts a stopped container."""
        self._request('POST', '/containers/%s/restart' % _q(name), {'t': int(stop_timeout)},
                      timeout=self.timeout + int(stop_timeout))

    def rename(self, name, new_name):
        self._request('POST', '/containers/%s/rename' % _q(name), {'name': new_name})

    def remove(self, name, force=False, volumes=False):
        self._request('DELETE', '/containers/%s' % _q(name), {'force': int(bool(force)), 'v': int(bool(volumes))})

    def stats(self, name, one_shot=False):
        """One stats sample; without one_shot the engine adds precpu_stats (about a second earlier) for CPU usage."""
        params = {'stream': 'false'}
        if one_shot:
            params['one-shot'] = 'true'
        return self._json('GET', '/containers/%s/stats' % _q(name), params, timeout=max(self.timeout, 10))

    def top(self, name, ps_args='-o pid,ppid,stat,etime,rss,args'):
        return self._json('GET', '/containers/%s/top' % _q(name), {'ps_args': ps_args})

    def logs(self, name, since=None, tail=None, timestamps=True):
        params = {'stdout': 1, 'stderr': 1, 'timestamps': 1 if timestamps else 0}
        if since is not None:
            params['since'] = int(since)
        if tail is not None:
            params['tail'] = str(tail)
        raw = self._request('GET', '/containers/%s/logs' % _q(name), params, timeout=max(self.timeout, 20))
        return demux(raw)

    def image(self, ref):
        return self._json('GET', '/images/%s/json' % _q(ref))

    def images(self, reference=None):
        params = {}
        if reference:
            params['filters'] = json.dumps({'reference': [reference]})
        return self._json('GET', '/images/json', params)

    def events(self, since, until, filters):
        """Engine events between two epoch times (the engine keeps a bounded in-memory history)."""
        raw = self._request('GET', '/events', {'since': int(since), 'until': int(until), 'filters': json.dumps(filters)},
                            timeout=max(self.timeout, 10))
        out = []
        for line in raw.decode('utf-8', 'replace').splitlines():
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def image_history(self, container, since, until):
        """[(time_ns, image)] of the containers of this name created or destroyed between since and until."""
        found = []
        for event in self.events(since, until, {'type': ['container'], 'container': [container],
                                                'event': ['create', 'destroy']}):
            attrs = (event.get('Actor') or {}).get('Attributes') or {}
            if attrs.get('name') == container and attrs.get('image'):
                found.append((int(event.get('timeNano') or 0), attrs['image']))
        return found

    def exec_run(self, name, cmd, timeout=10):
        """Run a command in a running container; returns (exit_code, stdout, stderr)."""
        created = self._json('POST', '/containers/%s/exec' % _q(name),
                             body={'Cmd': list(cmd), 'AttachStdout': True, 'AttachStderr': True, 'Tty': False})
        raw = self._request('POST', '/exec/%s/start' % created['Id'], body={'Detach': False, 'Tty': False},
                            timeout=timeout)
        out, err = demux(raw)
        info = self._json('GET', '/exec/%s/json' % created['Id'])
        return info.get('ExitCode'), out, err


def safe_inspect_summary(data):
    """The parts of an inspect worth keeping as evidence (no Env, no mounts' secrets)."""
    state = data.get('State') or {}
    config = data.get('Config') or {}
    health = state.get('Health') or {}
    return {
        'name': (data.get('Name') or '').lstrip('/'),
        'id': (data.get('Id') or '')[:12],
        'image': config.get('Image'),
        'image_id': data.get('Image'),
        'created': data.get('Created'),
        'status': state.get('Status'),
        'running': state.get('Running'),
        'restarting': state.get('Restarting'),
        'oom_killed': state.get('OOMKilled'),
        'exit_code': state.get('ExitCode'),
        'error': state.get('Error') or None,
        'started_at': state.get('StartedAt'),
        'finished_at': state.get('FinishedAt'),
        'restart_count': data.get('RestartCount'),
        'health': health.get('Status'),
        'health_failing_streak': health.get('FailingStreak'),
        'labels': config.get('Labels') or {},
        'memory_limit': (data.get('HostConfig') or {}).get('Memory'),
    }


def docker_argument_spec():
    """The Docker connection options of a module (doc fragment ``sre.incident_response.docker``)."""
    return dict(docker_host=dict(type='str'))
