# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redis connection helpers shared by the probe and the remediation modules.

Stable API (other modules import these names):

- ``redis_argument_spec()``: the connection options (doc fragment ``redis_connection``)
  as an AnsibleModule argument_spec dict; ``login_password`` is ``no_log``.
- ``redis_connect(params)``: a ``redis.Redis`` client with connect and socket
  timeouts, plain TCP or TLS. redis-py connects lazily: call ``.ping()`` first.
- ``describe_error(exc)``: one line, no password, for a finding summary or fail_json.
- ``HAS_REDIS`` / ``REDIS_IMPORT_ERROR``: for ``missing_required_lib``.
- ``choose_client(choice)``: the connection layer's switch for the probe (option ``client``: ``auto``,
  ``library``, ``cli``): ``('library'|'cli', None)``, or ``(None, reason)`` naming both ways to fix it.
- ``redis_connect(params, client='cli')``: the same commands through ``redis-cli`` (redis_cli.Client), for
  hosts without redis-py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible_collections.sre.incident_response.plugins.module_utils import redis_cli

try:
    import redis
    HAS_REDIS = True
    REDIS_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - depends on the controller/target
    redis = None
    HAS_REDIS = False
    REDIS_IMPORT_ERROR = traceback.format_exc()

# what to install where the module runs (the managed host on a fleet: playbooks/prepare.yml)
REDIS_PACKAGES = 'python3-redis (Debian, Ubuntu, RHEL/EPEL) or redis (pip)'

# the probe's option client: auto (the library when it imports, else redis-cli), library, cli
CLIENTS = ['auto', 'library', 'cli']


def redis_argument_spec():
    """The connection options, documented by the doc fragment sre.incident_response.redis_connection."""
    return dict(
        login_host=dict(type='str', default='127.0.0.1', aliases=['host']),
        login_port=dict(type='int', default=6379, aliases=['port']),
        login_user=dict(type='str', aliases=['user', 'username']),
        login_password=dict(type='str', no_log=True, aliases=['password']),
        db=dict(type='int', default=0),
        tls=dict(type='bool', default=False),
        validate_certs=dict(type='bool', default=True),
        ca_cert=dict(type='path'),
        client_cert=dict(type='path'),
        client_key=dict(type='path', no_log=False),
        connect_timeout=dict(type='float', default=3.0),
        socket_timeout=dict(type='float', default=5.0),
    )


def connection_kwargs(params):
    """redis.Redis() keyword arguments for the module params (pure, unit-tested)."""
    kwargs = {
        'host': params.get('login_host') or '127.0.0.1',
        'port': int(params.get('login_port') or 6379),
        'db': int(params.get('db') or 0),
        'socket_connect_timeout': float(params.get('connect_timeout') or 3.0),
        'socket_timeout': float(params.get('socket_timeout') or 5.0),
        'decode_responses': True,
    }
    if params.get('login_user'):
        kwargs['username'] = params['login_user']
    if params.get('login_password'):
        kwargs['password'] = params['login_password']
    if params.get('tls'):
        kwargs['ssl'] = True
        kwargs['ssl_cert_reqs'] = 'required' if params.get('validate_certs', True) else 'none'
        kwargs['ssl_check_hostname'] = bool(params.get('validate_certs', True))
        if params.get('ca_cert'):
            kwargs['ssl_ca_certs'] = params['ca_cert']
        if params.get('client_cert'):
            kwargs['ssl_certfile'] = params['client_cert']
        if params.get('client_key'):
            kwargs['ssl_keyfile'] = params['client_key']
    return kwargs


def choose_client(choice, has_library=None, find_cli=None):
    """The client a probe uses: ('library' | 'cli', None), or (None, reason) when the one asked for (or, with
    auto, both) is missing; the reason names what to install for each way."""
    has_library = HAS_REDIS if has_library is None else has_library
    cli = (find_cli or redis_cli.find_redis_cli)()
    choice = choice or 'auto'
    if choice == 'library' or (choice == 'auto' and has_library):
        if has_library:
            return 'library', None
        return None, ('redis-py is not importable by this host\'s python (client: library): install %s, '
                      'or set client: cli (redis-cli from %s)' % (REDIS_PACKAGES, redis_cli.REDIS_CLI_PACKAGES))
    if cli:
        return 'cli', None
    if choice == 'cli':
        return None, ('redis-cli not found on this host (client: cli): install %s, or set client: auto with %s'
                      % (redis_cli.REDIS_CLI_PACKAGES, REDIS_PACKAGES))
    return None, ('neither redis-py nor redis-cli on this host: install python3-redis or redis-tools '
                  '(pip: redis; RHEL: redis), e.g. with playbooks/prepare.yml')


def redis_connect(params, client='library'):
    """A redis.Redis client (lazy: the first command connects); raises ImportError without redis-py.

    client='cli': a redis_cli.Client (redis-cli, one call per command; also lazy: call .ping() first)."""
    if client == 'cli':
        return redis_cli.Client(params)
    if not HAS_REDIS:
        raise ImportError('redis is required (pip install redis)')
    kwargs = connection_kwargs(params)
    try:  # no silent retries: a probe reports a down server at once
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        kwargs['retry'] = Retry(NoBackoff(), 0)
    except ImportError:  # pragma: no cover - very old redis-py
        pass
    return redis.Redis(**kwargs)


def describe_error(exc, secrets=None):
    """One line describing a Redis error, without secrets."""
    if exc is None:
        return ''
    name = getattr(exc, 'error_name', None) or type(exc).__name__  # redis_cli errors carry redis-py's names
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = ' '.join(lines[0].split()) if lines else ''
    for secret in secrets or []:
        if secret and len(str(secret)) >= 4:
            first = first.replace(str(secret), '********')
    if len(first) > 300:
        first = first[:297] + '...'
    return '%s: %s' % (name, first) if first else name
