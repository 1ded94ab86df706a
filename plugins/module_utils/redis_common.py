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
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

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


def redis_connect(params):
    """A redis.Redis client (lazy: the first command connects); raises ImportError without redis-py."""
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
    name = type(exc).__name__
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = ' '.join(lines[0].split()) if lines else ''
    for secret in secrets or []:
        if secret and len(str(secret)) >= 4:
            first = first.replace(str(secret), '********')
    if len(first) > 300:
        first = first[:297] + '...'
    return '%s: %s' % (name, first) if first else name
