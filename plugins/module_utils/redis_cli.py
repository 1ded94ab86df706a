# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redis through ``redis-cli``: the probe's commands on a host without redis-py.

Every Redis host has ``redis-cli`` (redis-tools); not every one may get python3-redis. ``Client`` is the small
part of a ``redis.Redis`` the probe uses (``ping``, ``info``, ``slowlog_get``, ``slowlog_len``, ``scan``,
``config_get``, ``pipeline()`` with ``memory_usage``, ``config_get``, ``execute_command``, ``close``), returning what redis-py returns with
``decode_responses=True``, so the same ``collect()`` runs over either (redis_common.redis_connect picks one).

Output: ``--no-raw`` (the formatted replies: strings quoted with every unprintable byte escaped, ``(integer)``,
``(nil)``, ``(error)``, nested arrays numbered and indented), parsed by ``parse_replies``: a key or a slow-log
argument with newlines or quotes stays one value. ``INFO`` is always printed raw by redis-cli (its lines are
``key:value``) and parsed like redis-py's ``parse_info``.

Secrets and outside input: the password goes in ``REDISCLI_AUTH`` of the child only, never ``-a``; the user name,
host, port and TLS files are options. Key names (from SCAN) go back to the server on stdin, every byte
hex-escaped inside double quotes, never in argv. Every call has a timeout (connect + socket timeout + a margin);
a call that outlives it is killed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shutil
import subprocess

REDIS_CLI_PACKAGES = 'redis-tools (Debian, Ubuntu) or redis (RHEL)'

_ITEM = re.compile(r'( *)(\d+)\) ')


class RedisCliError(Exception):
    """A redis-cli call that failed; ``error_name`` is what redis-py would have raised."""

    error_name = 'RedisError'

    def __init__(self, message, error_name=None):
        super(RedisCliError, self).__init__(message)
        if error_name:
            self.error_name = error_name


class ReplyError(Exception):
    """An ``(error)`` reply: redis-py's ResponseError."""

    error_name = 'ResponseError'


def find_redis_cli(which=None):
    return (which or shutil.which)('redis-cli')


def cli_argv(params, redis_cli):
    """Options only: host, port, db, user, TLS. Never the password (REDISCLI_AUTH), never a key."""
    argv = [redis_cli, '--no-auth-warning', '--no-raw',
            '-h', str(params.get('login_host') or '127.0.0.1'), '-p', str(int(params.get('login_port') or 6379)),
            '-n', str(int(params.get('db') or 0))]
    if params.get('login_user'):
        argv += ['--user', str(params['login_user'])]
    if params.get('tls'):
        argv.append('--tls')
        if not params.get('validate_certs', True):
            argv.append('--insecure')
        for option, key in (('--cacert', 'ca_cert'), ('--cert', 'client_cert'), ('--key', 'client_key')):
            if params.get(key):
                argv += [option, str(params[key])]
    return argv


def cli_env(params, base=None):
    """The child's environment: without inherited REDISCLI_* variables, the password in REDISCLI_AUTH."""
    env = dict((k, v) for k, v in (os.environ if base is None else base).items() if not k.startswith('REDISCLI_'))
    env['REDISCLI_HISTFILE'] = os.devnull
    env['REDISCLI_RCFILE'] = os.devnull
    if params.get('login_password'):
        env['REDISCLI_AUTH'] = str(params['login_password'])
    return env


def call_timeout(params):
    return float(params.get('connect_timeout') or 3.0) + float(params.get('socket_timeout') or 5.0) + 2


def quote_arg(value):
    """An argument for redis-cli's stdin: every byte hex-escaped in double quotes (binary safe, no splitting)."""
    data = value if isinstance(value, bytes) else str(value).encode('utf-8', 'surrogateescape')
    return '"%s"' % ''.join('\\x%02x' % b for b in bytearray(data))


def unquote(text):
    """The bytes of a redis-cli quoted string ("..." with \\n, \\r, \\t, \\a, \\b, \\\\, \\", \\xHH escapes)."""
    body = text[1:-1]
    out = bytearray()
    i = 0
    simple = {'n': b'\n', 'r': b'\r', 't': b'\t', 'a': b'\a', 'b': b'\b', '\\': b'\\', '"': b'"'}
    while i < len(body):
        ch = body[i]
        if ch == '\\' and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == 'x' and i + 3 < len(body) and re.match(r'[0-9a-fA-F]{2}$', body[i + 2:i + 4]):
                out.append(int(body[i + 2:i + 4], 16))
                i += 4
                continue
            if nxt in simple:
                out += simple[nxt]
                i += 2
                continue
        out += ch.encode('utf-8')
        i += 1
    return bytes(out)


def _scalar(text):
    """One formatted scalar reply (the rest of a line) as redis-py returns it decoded."""
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        return unquote(text).decode('utf-8', 'replace')
    if text.startswith('(integer) '):
        return int(text[len('(integer) '):])
    if text.startswith('(double) '):
        return float(text[len('(double) '):])
    if text == '(nil)':
        return None
    if text in ('(empty array)', '(empty list or set)', '(empty set)', '(empty hash)'):
        return []
    if text.startswith('(error) '):
        return ReplyError(text[len('(error) '):])
    return text  # a status reply (PONG, OK) is printed as is


def _parse(lines, pos, col):
    """(value, next line) of the reply that starts at column col of lines[pos]."""
    rest = lines[pos][col:]
    match = _ITEM.match(rest)
    if not match or match.group(2) != '1':
        return _scalar(rest), pos + 1
    items = []
    width = len(match.group(1)) + len(match.group(2))
    expected = 1
    while pos < len(lines):
        line = lines[pos]
        head = line[col:]
        match = _ITEM.match(head)
        if (not match or int(match.group(2)) != expected or len(match.group(1)) + len(match.group(2)) != width
                or (expected > 1 and line[:col].strip())):
            break
        value, pos = _parse(lines, pos, col + match.end())
        items.append(value)
        expected += 1
    return items, pos


def parse_replies(text):
    """Every top-level reply of a --no-raw output, in order."""
    lines = (text or '').split('\n')
    while lines and lines[-1] == '':
        lines.pop()
    replies, pos = [], 0
    while pos < len(lines):
        value, pos = _parse(lines, pos, 0)
        replies.append(value)
    return replies


def _info_value(value):
    """redis-py's parse_info value rules: numbers, comma lists, k=v dicts."""
    if ',' not in value and '=' not in value:
        try:
            return float(value) if '.' in value else int(value)
        except ValueError:
            return value
    if '=' not in value:
        return [_info_value(v) for v in value.split(',') if v]
    out = {}
    for item in value.split(','):
        if not item:
            continue
        if '=' in item:
            k, v = item.rsplit('=', 1)
            out[k] = _info_value(v)
        else:
            out[item] = True
    return out


def parse_info(text):
    """INFO's raw text as redis-py's parse_info returns it."""
    info = {}
    for line in (text or '').splitlines():
        line = line.rstrip('\r')
        if not line or line.startswith('#'):
            continue
        if ':' in line:
            key, value = line.split(':', 1)
            if key == 'cmdstat_host':
                key, value = line.rsplit(':', 1)
            if key == 'module':
                info.setdefault('modules', []).append(_info_value(value))
            else:
                info[key] = _info_value(value)
        else:
            info.setdefault('__raw__', []).append(line)
    return info


def parse_slowlog(reply):
    """SLOWLOG GET's reply as redis-py's slowlog_get returns it (decoded)."""
    out = []
    for item in reply or []:
        if not isinstance(item, list) or len(item) < 4:
            continue
        entry = {'id': item[0], 'start_time': int(item[1]), 'duration': int(item[2])}
        if isinstance(item[3], list):
            entry['command'] = ' '.join(str(a) for a in item[3])
            if len(item) >= 6:
                entry['client_address'], entry['client_name'] = item[4], item[5]
        elif len(item) >= 5:
            entry['complexity'] = item[3]
            entry['command'] = ' '.join(str(a) for a in item[4] or [])
            if len(item) >= 7:
                entry['client_address'], entry['client_name'] = item[5], item[6]
        out.append(entry)
    return out


def parse_client_list(text, limit=100000):
    """CLIENT LIST's reply as redis-py's client_list() gives it: one dict of str per client line (id=.. addr=..)."""
    out = []
    for line in str(text or '').splitlines()[:limit]:
        row = {}
        for field in line.split(' '):
            key, sep, value = field.partition('=')
            if sep and key:
                row[key] = value
        if 'id' in row:
            out.append(row)
    return out


def connection_error(stderr, stdout, secrets=None):
    """The one line of a connection that failed, named as redis-py names its exception."""
    text = ' '.join(x.strip() for x in ((stderr or '') + '\n' + (stdout or '')).splitlines() if x.strip())
    for secret in secrets or []:
        if secret and len(str(secret)) >= 4:
            text = text.replace(str(secret), '********')
    name = 'ConnectionError'
    if 'max number of clients reached' in text:  # the server is up and full, as redis-py names it
        text = 'max number of clients reached'
    elif 'WRONGPASS' in text or 'NOAUTH' in text or 'AUTH failed' in text:
        name = 'AuthenticationError'
    return RedisCliError(text[:300] or 'redis-cli failed', name)


def run_process(argv, env, stdin, timeout):
    """(rc, stdout, stderr) of a child with a timeout; on timeout the child is killed and rc is None."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            close_fds=True)
    try:
        out, err = proc.communicate((stdin or '').encode('utf-8'), timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None, '', ''
    return proc.returncode, out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')


class Pipeline(object):
    """Many commands in one redis-cli call (the arguments on stdin), as redis-py's pipeline(transaction=False):
    ``memory_usage``, ``config_get`` and ``execute_command`` queue, ``execute`` sends them all."""

    def __init__(self, client):
        self._client = client
        self._commands = []

    def memory_usage(self, key, samples=None):
        args = ['MEMORY', 'USAGE', key]
        if samples is not None:
            args += ['SAMPLES', int(samples)]
        self._commands.append((args, None))
        return self

    def config_get(self, pattern):
        self._commands.append((['CONFIG', 'GET', pattern], config_pairs))
        return self

    def execute_command(self, *args):
        self._commands.append((list(args), None))
        return self

    def execute(self, raise_on_error=None):
        """The replies in order. An (error) reply is None (MEMORY USAGE of a key gone meanwhile), or with
        raise_on_error=False the error itself, as redis-py returns it."""
        commands, self._commands = self._commands, []
        if not commands:
            return []
        script = ''.join(' '.join(quote_arg(a) for a in cmd) + '\n' for cmd, _parse in commands)
        replies = self._client.call([], stdin=script)
        if len(replies) != len(commands):
            raise RedisCliError('redis-cli answered %d of %d commands' % (len(replies), len(commands)))
        out = []
        for (_cmd, parse), reply in zip(commands, replies):
            if isinstance(reply, ReplyError):
                out.append(reply if raise_on_error is False else None)
            else:
                out.append(parse(reply) if parse else reply)
        return out


def config_pairs(reply):
    """CONFIG GET's reply as redis-py returns it: {name: value}."""
    if not isinstance(reply, list):
        raise RedisCliError('unexpected CONFIG GET reply')
    return dict(zip([str(x) for x in reply[0::2]], [str(x) for x in reply[1::2]]))


class Client(object):
    """A 'connection' over redis-cli: each command is one redis-cli call with the same settings."""

    def __init__(self, params, redis_cli=None, runner=None):
        self.redis_cli = redis_cli or find_redis_cli()
        if not self.redis_cli:
            raise RedisCliError('redis-cli not found; install %s' % REDIS_CLI_PACKAGES, 'ConnectionError')
        self._argv = cli_argv(params, self.redis_cli)
        self._env = cli_env(params)
        self._timeout = call_timeout(params)
        self._secrets = [params.get('login_password')]
        self._runner = runner or run_process

    def call(self, args, stdin=None):
        """Every reply of one call: args (the command's fixed words and numbers) in argv, or commands on stdin."""
        rc, out, err = self._runner(self._argv + [str(a) for a in args], self._env, stdin, self._timeout)
        if rc is None:
            raise RedisCliError('redis-cli timed out after %d s' % self._timeout, 'TimeoutError')
        if rc != 0 or (not out.strip() and err.strip()):
            raise connection_error(err, out, self._secrets)
        replies = parse_replies(out)
        if stdin is None and len(replies) != 1:
            raise RedisCliError('unexpected redis-cli output (%d replies)' % len(replies))
        return replies

    def command(self, *args):
        reply = self.call(args)[0]
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    def ping(self):
        """True on PONG; a refused connection or a failed AUTH raise, as redis-py's ping does."""
        rc, out, err = self._runner(self._argv + ['PING'], self._env, None, self._timeout)
        if rc is None:
            raise RedisCliError('redis-cli timed out after %d s' % self._timeout, 'TimeoutError')
        replies = parse_replies(out) if rc == 0 else []
        if replies and replies[0] == 'PONG':
            return True
        if replies and isinstance(replies[0], ReplyError) and not any(
                word in str(replies[0]) for word in ('NOAUTH', 'WRONGPASS', 'NOPERM')):
            raise replies[0]
        raise connection_error(err, out, self._secrets)

    def info(self, section=None):
        args = ['INFO'] + ([section] if section else [])
        rc, out, err = self._runner(self._argv + args, self._env, None, self._timeout)
        if rc is None:
            raise RedisCliError('redis-cli timed out after %d s' % self._timeout, 'TimeoutError')
        if rc != 0:
            raise connection_error(err, out, self._secrets)
        if out.startswith('(error) '):
            raise ReplyError(out.strip()[len('(error) '):])
        return parse_info(out)

    def slowlog_get(self, num=None):
        return parse_slowlog(self.command('SLOWLOG', 'GET', *([int(num)] if num is not None else [])))

    def slowlog_len(self):
        return self.command('SLOWLOG', 'LEN')

    def config_get(self, pattern):
        """CONFIG GET as redis-py returns it: {name: value}."""
        return config_pairs(self.command('CONFIG', 'GET', pattern))

    def client_list(self):
        return parse_client_list(self.command('CLIENT', 'LIST'))

    def client_list_with_id(self):
        """(this call's own client id, CLIENT LIST) over one connection, as the library path reads them."""
        replies = self.call([], stdin='CLIENT ID\nCLIENT LIST\n')
        if len(replies) < 2 or any(isinstance(r, ReplyError) for r in replies):
            raise RedisCliError('unexpected CLIENT ID/LIST reply')
        # redis-cli prints the list's lines as they are when it reads commands from stdin: one reply per line
        return replies[0], parse_client_list('\n'.join(str(r) for r in replies[1:]))

    def scan(self, cursor=0, count=None):
        args = ['SCAN', int(cursor)] + (['COUNT', int(count)] if count else [])
        reply = self.command(*args)
        if not isinstance(reply, list) or len(reply) != 2:
            raise RedisCliError('unexpected SCAN reply')
        return int(reply[0]), list(reply[1] or [])

    def pipeline(self, transaction=False):  # pylint: disable=unused-argument
        return Pipeline(self)

    def close(self):
        return None
