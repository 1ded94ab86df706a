# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small read-only Docker Engine API client over the unix socket (standard library only).

The probes need a handful of GET calls (inspect, stats, top, logs, images) and one
exec for the runtime version; a dependency-free client keeps them one fast call.
Nothing here ever returns a container's ``Config.Env``: ``inspect()`` drops it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import socket
import struct

try:
    import http.client as httplib
    from urllib.parse import quote, urlencode
except ImportError:  # pragma: no cover - Python 2
    import httplib
    from urllib import quote, urlencode

DEFAULT_SOCKET = '/var/run/docker.sock'
API_VERSION = 'v1.41'


class DockerError(Exception):
    """An error talking to the engine; ``status`` is the HTTP status (404: no such container)."""

    def __init__(self, message, status=None):
        super(DockerError, self).__init__(message)
        self.status = status


class _UnixHTTPConnection(httplib.HTTPConnection):
    def __init__(self, path, timeout):
        httplib.HTTPConnection.__init__(self, 'localhost', timeout=timeout)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


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
            if isinstance(stream, str):  # pragma: no cover - Python 2
                stream = ord(stream)
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
        except (OSError, socket.error, httplib.HTTPException) as exc:
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

    def inspect(self, name):
        """Container inspect without Config.Env (it holds secrets)."""
        data = self._json('GET', '/containers/%s/json' % quote(name, safe=''))
        if isinstance(data.get('Config'), dict):
            data['Config'].pop('Env', None)
        return data

    def stats(self, name, one_shot=False):
        """One stats sample; without one_shot the engine adds precpu_stats (about a second earlier) for CPU usage."""
        params = {'stream': 'false'}
        if one_shot:
            params['one-shot'] = 'true'
        return self._json('GET', '/containers/%s/stats' % quote(name, safe=''), params, timeout=max(self.timeout, 10))

    def top(self, name, ps_args='-o pid,ppid,stat,etime,rss,args'):
        return self._json('GET', '/containers/%s/top' % quote(name, safe=''), {'ps_args': ps_args})

    def logs(self, name, since=None, tail=None, timestamps=True):
        params = {'stdout': 1, 'stderr': 1, 'timestamps': 1 if timestamps else 0}
        if since is not None:
            params['since'] = int(since)
        if tail is not None:
            params['tail'] = str(tail)
        raw = self._request('GET', '/containers/%s/logs' % quote(name, safe=''), params, timeout=max(self.timeout, 20))
        return demux(raw)

    def image(self, ref):
        return self._json('GET', '/images/%s/json' % quote(ref, safe=''))

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
        created = self._json('POST', '/containers/%s/exec' % quote(name, safe=''),
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
