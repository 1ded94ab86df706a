# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL connection helpers shared by the probe and the remediation modules.

Stable API (other modules import these names):

- ``pg_argument_spec()``: the connection options (doc fragment ``pg_connection``)
  as an AnsibleModule argument_spec dict; ``login_password`` is ``no_log``.
- ``pg_connect(params, autocommit=True, application_name=None)``: a psycopg2
  connection with connect and statement timeouts. Raises on failure; turn the
  exception into one line with ``describe_error``.
- ``describe_error(exc)``: one line, no password, for a finding summary or fail_json.
- ``HAS_PSYCOPG2`` / ``PSYCOPG2_IMPORT_ERROR``: for ``missing_required_lib``.
- ``choose_client(choice)``: the connection layer's switch for the probe (option ``client``: ``auto``,
  ``library``, ``cli``): ``('library'|'cli', None)``, or ``(None, reason)`` naming both ways to fix it.
- ``pg_connect(..., client='cli')``: the same queries through ``psql`` (pg_cli.Connection), for hosts
  without psycopg2.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible_collections.sre.incident_response.plugins.module_utils import pg_cli

try:
    import psycopg2
    import psycopg2.extras  # noqa: F401  (RealDictCursor for callers)
    HAS_PSYCOPG2 = True
    PSYCOPG2_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - depends on the controller/target
    psycopg2 = None
    HAS_PSYCOPG2 = False
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()

# what to install where the module runs (the managed host on a fleet: playbooks/prepare.yml)
PSYCOPG2_PACKAGES = 'python3-psycopg2 (Debian, Ubuntu, RHEL) or psycopg2-binary (pip)'

DEFAULT_APPLICATION_NAME = 'sre.incident_response'

# the probe's option client: auto (the library when it imports, else psql), library, cli
CLIENTS = ['auto', 'library', 'cli']

SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']


def pg_argument_spec():
    """The connection options, documented by the doc fragment sre.incident_response.pg_connection."""
    return dict(
        login_host=dict(type='str', default='127.0.0.1', aliases=['host']),
        login_port=dict(type='int', default=5432, aliases=['port']),
        login_db=dict(type='str', default='postgres', aliases=['db', 'database']),
        login_user=dict(type='str', default='postgres', aliases=['user']),
        login_password=dict(type='str', no_log=True, aliases=['password']),
        connect_timeout=dict(type='int', default=5),
        statement_timeout=dict(type='int', default=10000),
        ssl_mode=dict(type='str', default='prefer', choices=SSL_MODES),
        ca_cert=dict(type='path', aliases=['ssl_rootcert']),
    )


def connection_kwargs(params, application_name=None):
    """psycopg2.connect() keyword arguments for the module params (pure, unit-tested)."""
    kwargs = {
        'host': params.get('login_host') or '127.0.0.1',
        'port': int(params.get('login_port') or 5432),
        'dbname': params.get('login_db') or 'postgres',
        'user': params.get('login_user') or 'postgres',
        'connect_timeout': max(1, int(params.get('connect_timeout') or 5)),
        'sslmode': params.get('ssl_mode') or 'prefer',
        'application_name': application_name or DEFAULT_APPLICATION_NAME,
    }
    if params.get('login_password'):
        kwargs['password'] = params['login_password']
    if params.get('ca_cert'):
        kwargs['sslrootcert'] = params['ca_cert']
    timeout_ms = int(params.get('statement_timeout') or 0)
    if timeout_ms > 0:
        kwargs['options'] = '-c statement_timeout=%d -c lock_timeout=%d' % (timeout_ms, timeout_ms)
    return kwargs


def choose_client(choice, has_library=None, find_cli=None):
    """The client a probe uses: ('library' | 'cli', None), or (None, reason) when the one asked for (or, with
    auto, both) is missing; the reason names what to install for each way."""
    has_library = HAS_PSYCOPG2 if has_library is None else has_library
    cli = (find_cli or pg_cli.find_psql)()
    choice = choice or 'auto'
    if choice == 'library' or (choice == 'auto' and has_library):
        if has_library:
            return 'library', None
        return None, ('psycopg2 is not importable by this host\'s python (client: library): install %s, '
                      'or set client: cli (psql from %s)' % (PSYCOPG2_PACKAGES, pg_cli.PSQL_PACKAGES))
    if cli:
        return 'cli', None
    if choice == 'cli':
        return None, ('psql not found on this host (client: cli): install %s, or set client: auto with %s'
                      % (pg_cli.PSQL_PACKAGES, PSYCOPG2_PACKAGES))
    return None, ('neither psycopg2 nor psql on this host: install python3-psycopg2 or postgresql-client '
                  '(pip: psycopg2-binary; RHEL: postgresql), e.g. with playbooks/prepare.yml')


def pg_connect(params, autocommit=True, application_name=None, client='library'):
    """Connect with timeouts; autocommit by default so a probe never holds a transaction open.

    client='cli': a pg_cli.Connection (psql, autocommit by nature) proven with one query, so that a server that
    is down raises here as it does with the library."""
    if client == 'cli':
        return pg_cli.Connection(params, application_name or DEFAULT_APPLICATION_NAME).connect()
    if not HAS_PSYCOPG2:
        raise ImportError('psycopg2 is required (pip install psycopg2-binary)')
    conn = psycopg2.connect(**connection_kwargs(params, application_name))
    conn.autocommit = autocommit
    return conn


def describe_error(exc, secrets=None):
    """One line describing a connection or query error, without secrets."""
    if exc is None:
        return ''
    name = type(exc).__name__
    text = str(exc).strip()
    pgerror = getattr(exc, 'pgerror', None)
    if pgerror:
        text = str(pgerror).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # libpq puts the useful part first ("connection to server at ... failed: FATAL: ...")
    first = lines[0] if lines else ''
    if first.endswith(':') and len(lines) > 1:
        first = first + ' ' + lines[1]
    for secret in secrets or []:
        if secret and len(str(secret)) >= 4:
            first = first.replace(str(secret), '********')
    first = ' '.join(first.split())
    if len(first) > 300:
        first = first[:297] + '...'
    return '%s: %s' % (name, first) if first else name
