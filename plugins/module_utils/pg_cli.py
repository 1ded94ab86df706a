# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL through ``psql``: the probe's queries on a host without psycopg2.

Every PostgreSQL host has ``psql``; not every one may get python3-psycopg2. ``Connection`` is the small part of
a psycopg2 connection the probe uses (``cursor()``, ``cursor.execute(sql, params)``, ``description``,
``fetchall()``, ``close()``), so the same ``collect()`` runs over either (pg_common.pg_connect picks one).

How a query runs: one ``psql -X -A -t -q -v ON_ERROR_STOP=1 -f -`` per query, the SELECT wrapped in
``json_agg`` and read on stdin, so a value from the database (a query text with newlines, a ``|`` in an
application name) is JSON data and never splits a row. Types come back as the library gives them: integers,
floats, booleans, arrays as lists, NULL as None.

Secrets and outside input: the connection settings go in the child's environment (``PGHOST``, ``PGPORT``, ...),
the password in ``PGPASSWORD`` of the child only, never in argv; the SQL and its parameters on stdin, never in
argv. The child's environment drops every inherited ``PG*`` variable (a ``PGSERVICE`` or ``PGHOST`` of the
environment cannot redirect the probe). Every call has a timeout (the connect timeout plus the statement timeout plus
a margin); a call that outlives it is killed.

Pure helpers (``psql_argv``, ``psql_env``, ``literal``, ``bind``, ``wrap``, ``parse_rows``, ``error_line``) are
unit-tested in tests/unit/test_probe_cli.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import json
import math
import os
import shutil
import subprocess

# what to install where the module runs to use this path
PSQL_PACKAGES = 'postgresql-client (Debian, Ubuntu) or postgresql (RHEL)'

# where distributions put psql when it is not on PATH (newest version first)
PSQL_GLOBS = ('/usr/lib/postgresql/*/bin/psql', '/usr/pgsql-*/bin/psql', '/usr/local/pgsql/bin/psql')

# psql exits 2 when the connection failed or went bad, 3 when a statement failed under ON_ERROR_STOP
RC_CONNECTION = 2


class PsqlError(Exception):
    """A psql call that failed; ``str()`` is one line from psql's stderr, without the password."""


class OperationalError(PsqlError):
    """The connection failed (server down, refused, authentication, timeout): named as psycopg2 names it."""


class ProgrammingError(PsqlError):
    """A statement failed (the server said ERROR)."""


def find_psql(which=None):
    """The psql to run: PATH first, then the distributions' versioned directories; None when there is none."""
    found = (which or shutil.which)('psql')
    if found:
        return found
    for pattern in PSQL_GLOBS:
        for path in sorted(glob.glob(pattern), reverse=True):
            if os.access(path, os.X_OK):
                return path
    return None


def psql_argv(psql):
    """The command line: options only. No host, user, password, SQL or parameter is ever in it."""
    return [psql, '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=terse', '-f', '-']


def psql_env(params, application_name, base=None):
    """The child's environment: the inherited one without any PG* variable, plus the connection settings."""
    env = dict((k, v) for k, v in (os.environ if base is None else base).items() if not k.startswith('PG'))
    env.update({
        'PGHOST': str(params.get('login_host') or '127.0.0.1'),
        'PGPORT': str(int(params.get('login_port') or 5432)),
        'PGDATABASE': str(params.get('login_db') or 'postgres'),
        'PGUSER': str(params.get('login_user') or 'postgres'),
        'PGCONNECT_TIMEOUT': str(max(1, int(params.get('connect_timeout') or 5))),
        'PGSSLMODE': str(params.get('ssl_mode') or 'prefer'),
        'PGAPPNAME': str(application_name),
        'PGCLIENTENCODING': 'UTF8',
        # libpq and psql messages in English: error_line() and the findings read them
        'LC_ALL': 'C', 'LC_MESSAGES': 'C', 'LANG': 'C',
    })
    if params.get('login_password'):
        env['PGPASSWORD'] = str(params['login_password'])
    if params.get('ca_cert'):
        env['PGSSLROOTCERT'] = str(params['ca_cert'])
    timeout_ms = int(params.get('statement_timeout') or 0)
    if timeout_ms > 0:
        env['PGOPTIONS'] = '-c statement_timeout=%d -c lock_timeout=%d' % (timeout_ms, timeout_ms)
    return env


def call_timeout(params):
    """Seconds a psql call may take: connect, the statement timeout, and a margin."""
    return max(1, int(params.get('connect_timeout') or 5)) + int(params.get('statement_timeout') or 0) / 1000.0 + 5


def literal(value):
    """A SQL literal for a query parameter (the probe's are numbers and short strings)."""
    if value is None:
        return 'NULL'
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return "'%s'::float8" % ('NaN' if math.isnan(value) else ('Infinity' if value > 0 else '-Infinity'))
        return repr(value)
    text = str(value)
    if '\x00' in text:
        raise ValueError('a query parameter cannot contain NUL')
    # standard_conforming_strings is on (set in the script): a backslash is an ordinary character
    return "'%s'" % text.replace("'", "''")


def bind(sql, params):
    """psycopg2's pyformat parameters (%(name)s, %s) filled with literals; without params the SQL is unchanged."""
    if params is None:
        return sql
    if isinstance(params, dict):
        return sql % dict((k, literal(v)) for k, v in params.items())
    return sql % tuple(literal(v) for v in params)


def wrap(sql):
    """The script psql reads on stdin: the SELECT as one JSON array of its rows (columns in their order)."""
    body = sql.strip().rstrip(';').strip()
    return ("SET standard_conforming_strings = on;\n"
            "SELECT coalesce(json_agg(sre_q), '[]'::json) FROM (\n%s\n) AS sre_q;\n" % body)


def parse_rows(stdout):
    """The rows of one wrapped query: a list of dicts, keys in the SELECT's column order."""
    text = (stdout or '').strip()
    if not text:
        return []
    rows = json.loads(text)
    if not isinstance(rows, list):
        raise ValueError('psql output is not a JSON array')
    return rows


def error_line(stderr, secrets=None):
    """One line from psql's stderr: the message, without psql's prefixes or the password."""
    lines = [ln.strip() for ln in (stderr or '').splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(('LINE ', '^', 'HINT:', 'DETAIL:', 'WARNING:', 'NOTICE:',
                                                               'Is the server running'))] or lines
    text = lines[0] if lines else ''
    for prefix in ('psql: error: ', 'psql: '):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if text.startswith('psql:') and ': ' in text:  # psql:<stdin>:2: ERROR:  ...
        text = text.split(': ', 1)[1]
    if text.startswith('ERROR:'):
        text = text[len('ERROR:'):]
    text = ' '.join(text.split())
    for secret in secrets or []:
        if secret and len(str(secret)) >= 4:
            text = text.replace(str(secret), '********')
    return text[:297] + '...' if len(text) > 300 else text


def run_process(argv, env, stdin, timeout):
    """(rc, stdout, stderr) of a child with a timeout; on timeout the child is killed and rc is None."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            close_fds=True)
    try:
        out, err = proc.communicate(stdin.encode('utf-8'), timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None, '', ''
    return proc.returncode, out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')


class Cursor(object):
    """The part of a psycopg2 cursor the probe uses."""

    def __init__(self, conn):
        self._conn = conn
        self._rows = []
        self.description = None

    def execute(self, sql, params=None):
        rows = self._conn.query(bind(sql, params))
        names = list(rows[0].keys()) if rows else []
        self.description = [(name,) for name in names]
        self._rows = [tuple(row.get(name) for name in names) for row in rows]

    def fetchall(self):
        rows, self._rows = self._rows, []
        return rows

    def close(self):
        self._rows = []


class Connection(object):
    """A 'connection' over psql: each query is one psql call with the same settings (autocommit by nature)."""

    def __init__(self, params, application_name, psql=None, runner=None):
        self.psql = psql or find_psql()
        if not self.psql:
            raise OperationalError('psql not found; install %s' % PSQL_PACKAGES)
        self._env = psql_env(params, application_name)
        self._timeout = call_timeout(params)
        self._secrets = [params.get('login_password')]
        self._runner = runner or run_process
        self.autocommit = True
        self.closed = False

    def connect(self):
        """Prove the connection (the library connects when it is created): raises OperationalError when it fails."""
        self.query('SELECT 1 AS ok')
        return self

    def query(self, sql):
        rc, out, err = self._runner(psql_argv(self.psql), self._env, wrap(sql), self._timeout)
        if rc is None:
            raise OperationalError('psql timed out after %d s' % self._timeout)
        if rc == RC_CONNECTION or (rc != 0 and 'connection to server' in err):
            raise OperationalError(error_line(err, self._secrets) or 'psql exited %d' % rc)
        if rc != 0:
            raise ProgrammingError(error_line(err, self._secrets) or 'psql exited %d' % rc)
        try:
            return parse_rows(out)
        except ValueError as exc:
            raise ProgrammingError('cannot read psql output: %s' % exc)

    def cursor(self):
        return Cursor(self)

    def close(self):
        self.closed = True
