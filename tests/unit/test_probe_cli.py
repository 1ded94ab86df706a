"""Unit tests: the probe's psql and redis-cli path (pg_cli, redis_cli) and the connection layer's switch.

The parsers are fed what psql and redis-cli 7.0 really print (captured on the lab); the command lines and
environments are checked for secrets; the areas' run() is driven with a fake child process to show the same
findings and statuses as the library path, and one finding for an area that has neither way.
"""
import json

import pytest

from ansible_collections.sre.incident_response.plugins.module_utils import (
    pg_cli, pg_common, redis_cli, redis_common)
from ansible_collections.sre.incident_response.plugins.module_utils.areas import (
    postgres as area_postgres,
    redis as area_redis)
from ansible_collections.sre.incident_response.plugins.module_utils.findings import validate

PG_SECRET = 'pg-S3cret-in-test-7a1e'
REDIS_SECRET = 'redis-S3cret-in-test-44c2'
PG_PARAMS = {'login_host': 'db.internal', 'login_port': 5433, 'login_db': 'app', 'login_user': 'monitor',
             'login_password': PG_SECRET, 'connect_timeout': 4, 'statement_timeout': 8000, 'ssl_mode': 'verify-full',
             'ca_cert': '/etc/ssl/pg-ca.crt'}
REDIS_PARAMS = {'login_host': 'cache.internal', 'login_port': 6380, 'login_user': 'probe',
                'login_password': REDIS_SECRET, 'db': 2, 'tls': True, 'validate_certs': True,
                'ca_cert': '/etc/redis/ca.crt', 'client_cert': '/etc/redis/c.crt', 'client_key': '/etc/redis/c.key',
                'connect_timeout': 2.0, 'socket_timeout': 3.0}


# --- psql: command line, environment, parsing ---------------------------------------------------------

def test_psql_argv_carries_no_connection_data_and_no_secret():
    argv = pg_cli.psql_argv('/usr/bin/psql')
    assert argv[:4] == ['/usr/bin/psql', '-X', '-A', '-t'] and argv[-2:] == ['-f', '-']
    text = ' '.join(argv)
    for value in (PG_SECRET, 'db.internal', 'monitor', 'SELECT'):
        assert value not in text


def test_psql_env_has_the_settings_and_the_password_only_there():
    env = pg_cli.psql_env(PG_PARAMS, 'sre probe', base={'PATH': '/usr/bin', 'PGSERVICE': 'evil', 'PGHOST': 'x',
                                                        'PGPASSWORD': 'inherited'})
    assert env['PGPASSWORD'] == PG_SECRET and env['PATH'] == '/usr/bin'
    assert 'PGSERVICE' not in env  # inherited PG* cannot redirect the probe
    assert (env['PGHOST'], env['PGPORT'], env['PGDATABASE'], env['PGUSER']) == ('db.internal', '5433', 'app', 'monitor')
    assert (env['PGSSLMODE'], env['PGSSLROOTCERT'], env['PGCONNECT_TIMEOUT']) == ('verify-full', '/etc/ssl/pg-ca.crt', '4')
    assert env['PGOPTIONS'] == '-c statement_timeout=8000 -c lock_timeout=8000'
    assert env['PGAPPNAME'] == 'sre probe'
    no_password = pg_cli.psql_env(dict(PG_PARAMS, login_password=None), 'x', base={'PGPASSWORD': 'inherited'})
    assert 'PGPASSWORD' not in no_password


def test_psql_call_timeout_covers_connect_and_statement():
    assert pg_cli.call_timeout(PG_PARAMS) == 4 + 8 + 5


def test_bind_quotes_parameters_as_literals():
    assert pg_cli.bind('SELECT left(query, %(n)s)', {'n': 500}) == 'SELECT left(query, 500)'
    assert pg_cli.bind("SELECT %(s)s", {'s': "it's; DROP TABLE x; --"}) == "SELECT 'it''s; DROP TABLE x; --'"
    assert pg_cli.bind('SELECT %s, %s', (None, True)) == 'SELECT NULL, true'
    assert pg_cli.bind("SELECT '100%'", None) == "SELECT '100%'"  # no params: the SQL as written (psycopg2 too)
    with pytest.raises(ValueError):
        pg_cli.literal('a\x00b')


def test_wrap_returns_the_rows_as_one_json_array():
    script = pg_cli.wrap('\nSELECT pid FROM pg_stat_activity\n;')
    assert 'standard_conforming_strings = on' in script
    assert "SELECT coalesce(json_agg(sre_q), '[]'::json) FROM (\nSELECT pid FROM pg_stat_activity\n) AS sre_q;" in script


def test_parse_rows_keeps_types_order_and_data_with_separators():
    out = ('[{"pid":48,"blocked_by":[51, 52],"query":"SELECT 1|2\\nFROM t -- \\"x\\"","xact_age_s":null,'
           '"in_recovery":false,"uptime_s":312.5}, \n {"pid":49,"blocked_by":[],"query":"","xact_age_s":0.25,'
           '"in_recovery":true,"uptime_s":1}]\n')
    rows = pg_cli.parse_rows(out)
    assert rows[0] == {'pid': 48, 'blocked_by': [51, 52], 'query': 'SELECT 1|2\nFROM t -- "x"', 'xact_age_s': None,
                       'in_recovery': False, 'uptime_s': 312.5}
    assert list(rows[0]) == ['pid', 'blocked_by', 'query', 'xact_age_s', 'in_recovery', 'uptime_s']
    assert pg_cli.parse_rows('[]\n') == [] and pg_cli.parse_rows('') == []


def test_error_line_is_the_message_without_prefixes_or_password():
    refused = ('psql: error: connection to server at "127.0.0.1", port 1 failed: Connection refused\n'
               '\tIs the server running on that host and accepting TCP/IP connections?\n')
    assert pg_cli.error_line(refused) == 'connection to server at "127.0.0.1", port 1 failed: Connection refused'
    query = 'psql:<stdin>:2: ERROR:  column "nosuch" does not exist\nLINE 1: select nosuch\n               ^\n'
    assert pg_cli.error_line(query) == 'column "nosuch" does not exist'
    leaked = 'psql: error: FATAL: password %s rejected' % PG_SECRET
    assert PG_SECRET not in pg_cli.error_line(leaked, [PG_SECRET])


class FakeRun(object):
    """A child process: records (argv, env, stdin, timeout) and answers from a list of (rc, stdout, stderr)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, argv, env, stdin, timeout):
        self.calls.append((list(argv), dict(env), stdin, timeout))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(argv, stdin) if callable(answer) else answer


def test_connection_raises_operational_error_when_the_server_is_down():
    run = FakeRun((2, '', 'psql: error: connection to server at "db.internal", port 5433 failed: Connection refused\n'))
    conn = pg_cli.Connection(PG_PARAMS, 'probe', psql='/usr/bin/psql', runner=run)
    with pytest.raises(pg_cli.OperationalError) as err:
        conn.connect()
    assert pg_common.describe_error(err.value) == (
        'OperationalError: connection to server at "db.internal", port 5433 failed: Connection refused')
    assert PG_SECRET not in ' '.join(run.calls[0][0]) and PG_SECRET not in run.calls[0][2]


def test_connection_timeout_is_an_operational_error():
    conn = pg_cli.Connection(PG_PARAMS, 'probe', psql='/usr/bin/psql', runner=FakeRun((None, '', '')))
    with pytest.raises(pg_cli.OperationalError, match='timed out'):
        conn.connect()


def test_cursor_is_what_collect_reads():
    run = FakeRun((0, '[{"a":1,"b":"x"},{"a":2,"b":null}]\n', ''))
    cur = pg_cli.Connection(PG_PARAMS, 'probe', psql='/usr/bin/psql', runner=run).cursor()
    cur.execute('SELECT a, b FROM t WHERE c < %(n)s', {'n': 3})
    assert area_postgres.rows(cur) == [{'a': 1, 'b': 'x'}, {'a': 2, 'b': None}]
    assert 'WHERE c < 3' in run.calls[0][2]
    run.answers = [(3, '', 'psql:<stdin>:2: ERROR:  permission denied for table t\n')]
    with pytest.raises(pg_cli.ProgrammingError, match='permission denied'):
        cur.execute('SELECT 1')


# --- redis-cli: command line, environment, parsing ---------------------------------------------------

def test_redis_cli_argv_has_tls_and_user_but_never_the_password():
    argv = redis_cli.cli_argv(REDIS_PARAMS, '/usr/bin/redis-cli')
    assert REDIS_SECRET not in ' '.join(argv) and '-a' not in argv and '--pass' not in argv
    assert '--no-auth-warning' in argv and '--no-raw' in argv
    assert argv[argv.index('-h') + 1] == 'cache.internal' and argv[argv.index('-p') + 1] == '6380'
    assert argv[argv.index('-n') + 1] == '2' and argv[argv.index('--user') + 1] == 'probe'
    assert '--tls' in argv and '--insecure' not in argv
    assert argv[argv.index('--cacert') + 1] == '/etc/redis/ca.crt'
    assert argv[argv.index('--cert') + 1] == '/etc/redis/c.crt' and argv[argv.index('--key') + 1] == '/etc/redis/c.key'
    insecure = redis_cli.cli_argv(dict(REDIS_PARAMS, validate_certs=False), 'redis-cli')
    assert '--insecure' in insecure
    plain = redis_cli.cli_argv({'login_host': '127.0.0.1'}, 'redis-cli')
    assert '--tls' not in plain and '--user' not in plain


def test_redis_cli_env_carries_the_password_in_rediscli_auth_only():
    env = redis_cli.cli_env(REDIS_PARAMS, base={'PATH': '/bin', 'REDISCLI_AUTH': 'inherited', 'REDISCLI_RCFILE': '/x'})
    assert env['REDISCLI_AUTH'] == REDIS_SECRET and env['REDISCLI_RCFILE'] != '/x' and env['PATH'] == '/bin'
    assert 'REDISCLI_AUTH' not in redis_cli.cli_env({}, base={'REDISCLI_AUTH': 'inherited'})


SLOWLOG_OUT = r'''1) 1) (integer) 6
   2) (integer) 1796476246
   3) (integer) 52000
   4) 1) "SET"
      2) "k\xffbin\ttab"
      3) "v"
   5) "127.0.0.1:58550"
   6) ""
2) 1) (integer) 4
   2) (integer) 1796476246
   3) (integer) 7
   4) 1) "GET"
      2) "k:we\"ird\\nx"
   5) "127.0.0.1:58536"
   6) "worker"
'''


def test_parse_nested_replies_and_escapes():
    reply = redis_cli.parse_replies(SLOWLOG_OUT)
    assert len(reply) == 1 and len(reply[0]) == 2
    assert reply[0][0][3] == ['SET', 'k\ufffdbin\ttab', 'v']
    assert reply[0][1][3] == ['GET', 'k:we"ird\\nx']
    entries = redis_cli.parse_slowlog(reply[0])
    assert entries[0] == {'id': 6, 'start_time': 1796476246, 'duration': 52000, 'command': 'SET k\ufffdbin\ttab v',
                          'client_address': '127.0.0.1:58550', 'client_name': ''}
    assert entries[1]['client_name'] == 'worker'


def test_parse_wide_arrays_and_several_replies():
    scan = '1) "0"\n2)  1) "a"\n    2) "b"\n    3) "c"\n    4) "d"\n    5) "e"\n    6) "f"\n    7) "g"\n' \
           '    8) "h"\n    9) "i"\n   10) "j\\nk"\n'
    reply = redis_cli.parse_replies(scan)
    assert reply == [['0', ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j\nk']]]
    several = redis_cli.parse_replies('(integer) 72\n(nil)\n(error) ERR no such key\n(empty array)\nPONG\n')
    assert several[:2] == [72, None] and isinstance(several[2], redis_cli.ReplyError)
    assert several[3:] == [[], 'PONG']


def test_quote_arg_hex_escapes_every_byte():
    assert redis_cli.quote_arg('a b"\n') == '"\\x61\\x20\\x62\\x22\\x0a"'
    assert redis_cli.unquote(redis_cli.quote_arg(u'caf\u00e9:\\x')).decode('utf-8') == u'caf\u00e9:\\x'


INFO_OUT = ('# Server\r\nredis_version:7.0.15\r\nrole:master\r\nuptime_in_seconds:360\r\n\r\n# Memory\r\n'
            'used_memory:1363448\r\nused_memory_human:1.30M\r\nmaxmemory:67108864\r\nmaxmemory_policy:noeviction\r\n'
            'mem_fragmentation_ratio:9.96\r\n# Errorstats\r\nerrorstat_OOM:count=3\r\n# Keyspace\r\n'
            'db0:keys=32,expires=30,avg_ttl=0\r\n')


def test_parse_info_like_redis_py():
    info = redis_cli.parse_info(INFO_OUT)
    assert info['redis_version'] == '7.0.15' and info['uptime_in_seconds'] == 360
    assert info['mem_fragmentation_ratio'] == 9.96 and info['used_memory_human'] == '1.30M'
    assert info['errorstat_OOM'] == {'count': 3}
    assert info['db0'] == {'keys': 32, 'expires': 30, 'avg_ttl': 0}
    try:
        from redis._parsers.helpers import parse_info
    except ImportError:  # older redis-py
        try:
            from redis.client import parse_info
        except ImportError:
            return
    assert info == parse_info(INFO_OUT)


def test_ping_failures_are_named_as_redis_py_names_them():
    refused = FakeRun((1, '', 'Could not connect to Redis at cache.internal:6380: Connection refused\n'))
    client = redis_cli.Client(REDIS_PARAMS, redis_cli='/usr/bin/redis-cli', runner=refused)
    with pytest.raises(redis_cli.RedisCliError) as err:
        client.ping()
    assert redis_common.describe_error(err.value) == (
        'ConnectionError: Could not connect to Redis at cache.internal:6380: Connection refused')
    wrong = FakeRun((0, '(error) NOAUTH Authentication required.\n',
                     'AUTH failed: WRONGPASS invalid username-password pair or user is disabled.\n'))
    with pytest.raises(redis_cli.RedisCliError) as err:
        redis_cli.Client(REDIS_PARAMS, redis_cli='redis-cli', runner=wrong).ping()
    assert redis_common.describe_error(err.value).startswith('AuthenticationError: AUTH failed: WRONGPASS')
    for argv, env, _stdin, _timeout in refused.calls + wrong.calls:
        assert REDIS_SECRET not in ' '.join(argv) and env['REDISCLI_AUTH'] == REDIS_SECRET


def test_pipeline_sends_keys_on_stdin_not_argv():
    run = FakeRun((0, '(integer) 72\n(nil)\n', ''))
    client = redis_cli.Client(REDIS_PARAMS, redis_cli='redis-cli', runner=run)
    pipe = client.pipeline(transaction=False)
    for key in ('user:1; FLUSHALL', 'gone'):
        pipe.memory_usage(key, samples=0)
    assert pipe.execute() == [72, None]
    argv, _env, stdin, _timeout = run.calls[0]
    assert 'FLUSHALL' not in ' '.join(argv) and 'user:1' not in ' '.join(argv)
    lines = stdin.splitlines()
    assert len(lines) == 2 and all(line.startswith('"\\x4d') for line in lines)  # every byte escaped
    assert redis_cli.unquote(lines[0].split(' ')[2]) == b'user:1; FLUSHALL'


# --- the switch: auto, library, cli, neither ------------------------------------------------------------

@pytest.mark.parametrize('mod', [pg_common, redis_common])
def test_choose_client(mod):
    assert mod.choose_client('auto', True, lambda: '/usr/bin/x') == ('library', None)
    assert mod.choose_client('auto', False, lambda: '/usr/bin/x') == ('cli', None)
    assert mod.choose_client('cli', True, lambda: '/usr/bin/x') == ('cli', None)
    assert mod.choose_client('library', True, lambda: None) == ('library', None)
    kind, reason = mod.choose_client('auto', False, lambda: None)
    assert kind is None and 'neither' in reason
    for package in (('python3-psycopg2', 'postgresql-client') if mod is pg_common else ('python3-redis', 'redis-tools')):
        assert package in reason
    assert mod.choose_client('library', False, lambda: '/usr/bin/x')[0] is None
    assert mod.choose_client('cli', True, lambda: None)[0] is None


class AreaModule(object):
    check_mode = False

    def __init__(self, params):
        self.params = params


def pg_params(**over):
    params = dict(PG_PARAMS, report_host='db-1', service='db', container=None, data_directory=None, thresholds={},
                  query_chars=500, docker_host=None, client='cli')
    params.update(over)
    return params


def test_postgres_area_with_neither_gives_one_finding(monkeypatch):
    monkeypatch.setattr(pg_common, 'HAS_PSYCOPG2', False)
    monkeypatch.setattr(pg_cli, 'find_psql', lambda which=None: None)
    out = area_postgres.run(AreaModule(pg_params(client='auto')))
    assert len(out['findings']) == 1
    f = out['findings'][0]
    assert (f['check'], f['status'], f['evidence']['client']) == ('pg.connectivity', 'unknown', 'none')
    assert 'python3-psycopg2' in f['summary'] and 'postgresql-client' in f['summary']
    assert validate(f) == []


def test_redis_area_with_neither_gives_one_finding(monkeypatch):
    monkeypatch.setattr(redis_common, 'HAS_REDIS', False)
    monkeypatch.setattr(redis_cli, 'find_redis_cli', lambda which=None: None)
    params = dict(REDIS_PARAMS, report_host='cache-1', service='redis', slowlog_count=10, window='15m', thresholds={},
                  evictable_patterns=[], protected_patterns=[], prefix_sample_keys=0, client='auto')
    out = area_redis.run(AreaModule(params))
    assert [(f['check'], f['status'], f['evidence']['client']) for f in out['findings']] == [
        ('redis.connectivity', 'unknown', 'none')]
    assert 'python3-redis' in out['findings'][0]['summary'] and 'redis-tools' in out['findings'][0]['summary']


def test_postgres_area_down_through_psql_is_the_unreachable_finding(monkeypatch):
    run = FakeRun((2, '', 'psql: error: connection to server at "db.internal", port 5433 failed: Connection refused\n'))
    monkeypatch.setattr(pg_cli, 'run_process', run)
    monkeypatch.setattr(pg_cli, 'find_psql', lambda which=None: '/usr/bin/psql')
    out = area_postgres.run(AreaModule(pg_params()))
    by_check = dict((f['check'], f) for f in out['findings'])
    assert by_check['pg.connectivity']['status'] == 'crit'
    assert by_check['pg.connectivity']['summary'].startswith('cannot connect: OperationalError: connection to server')
    assert all(f['evidence']['client'] == 'cli' for f in out['findings'])
    assert all(validate(f) == [] for f in out['findings'])
    assert PG_SECRET not in json.dumps(out)


def test_postgres_area_through_psql_evaluates_like_the_library(monkeypatch):
    """A lock chain read through psql: the same pg.locks the library gives for the same rows."""
    activity = [
        {'pid': 10, 'usename': 'app', 'application_name': 'report-job', 'client_addr': None, 'backend_type': 'client backend',
         'datname': 'app', 'state': 'idle in transaction', 'wait_event_type': None, 'wait_event': None, 'xact_age_s': 95.0,
         'query_age_s': 94.0, 'state_age_s': 94.0, 'blocked_by': [], 'query': 'LOCK TABLE orders'},
        {'pid': 11, 'usename': 'app', 'application_name': 'checkout-worker', 'client_addr': '127.0.0.5',
         'backend_type': 'client backend', 'datname': 'app', 'state': 'active', 'wait_event_type': 'Lock',
         'wait_event': 'relation', 'xact_age_s': 40.0, 'query_age_s': 40.0, 'state_age_s': 40.0, 'blocked_by': [10],
         'query': 'UPDATE orders\nSET x = 1 -- "|"'}]
    answers = dict(VIEW_ANSWERS)
    answers.update({'version()': [{'version': 'PostgreSQL 15.5', 'server_version': '15.5', 'max_connections': 40,
                                   'reserved_connections': 3, 'uptime_s': 3600.0, 'in_recovery': False}],
                    'pg_stat_activity': activity,
                    'pg_locks': [{'pid': 11, 'locktype': 'relation', 'mode': 'RowExclusiveLock', 'relation': 'orders',
                                  'wait_s': 40.0}],
                    'pg_database': [{'datname': 'app', 'bytes': 7800000}],
                    'data_directory': [{'data_directory': '/nonexistent/pgdata'}],
                    'SELECT 1 AS ok': [{'ok': 1}]})

    def answer(_argv, stdin):
        for needle, rows in answers.items():
            if needle in stdin:
                return 0, json.dumps(rows), ''
        raise AssertionError(stdin)

    monkeypatch.setattr(pg_cli, 'run_process', FakeRun(answer))
    monkeypatch.setattr(pg_cli, 'find_psql', lambda which=None: '/usr/bin/psql')
    out = area_postgres.run(AreaModule(pg_params()))
    by_check = dict((f['check'], f) for f in out['findings'])
    expected = area_postgres.evaluate_locks('db-1', 'db', activity, answers['pg_locks'], dict(
        area_postgres.thresholds_of(AreaModule(pg_params()), area_postgres.THRESHOLD_SPEC, area_postgres.PAIRS)))
    assert by_check['pg.locks']['status'] == expected['status'] == 'crit'
    assert by_check['pg.locks']['summary'] == expected['summary']
    assert by_check['pg.locks']['evidence']['client'] == 'cli'
    assert by_check['pg.locks']['evidence']['root_pids'] == [10]
    assert by_check['pg.connectivity']['status'] == 'ok'
    assert set(by_check) == {'pg.connectivity', 'pg.connections', 'pg.long_queries', 'pg.locks', 'pg.disk',
                             'pg.replication', 'pg.vacuum', 'pg.temp', 'pg.statements'}
    assert out['executed_queries'] and PG_SECRET not in json.dumps(out)


# --- the catalog views through psql: the same evidence as the library for the same rows --------------------

VIEW_ANSWERS = {
    # first: the vacuum query reads pg_replication_slots too (the slots' xmin), the answers match in this order
    'datfrozenxid': [{'databases': [{'database': 'app', 'xid_age': 1200000000}, {'database': 'postgres', 'xid_age': 90}],
                      'tables': [{'table': 'public.orders', 'dead_tuples': 50000, 'live_tuples': 200,
                                  'last_autovacuum_age_s': None, 'last_vacuum_age_s': None}],
                      'xmin_holders': [{'kind': 'session', 'pid': 4242, 'user': 'app', 'application': 'report-export',
                                        'state': 'idle in transaction', 'superuser': False, 'xid_age': 12,
                                        'age_s': 30.5, 'state_age_s': 30.0, 'name': None}],
                      'autovacuum': 'on', 'autovacuum_freeze_max_age': 200000000}],
    'pg_replication_slots': [{
        'slots': [{'name': 'lost_replica', 'type': 'physical', 'database': None, 'active': False, 'active_pid': None,
                   'wal_status': 'reserved', 'retained_bytes': 3 * 1024 ** 3}],
        'slot_count': 1,
        'replicas': [{'application_name': 'standby-1', 'client_addr': '127.0.0.8', 'state': 'streaming',
                      'sync_state': 'async', 'replay_lag_s': 2.5, 'lag_bytes': 8192}],
        'archiver': {'archive_mode': 'off', 'archived_count': 0, 'failed_count': 0, 'last_failed_wal': None,
                     'last_failed_age_s': None, 'last_archived_age_s': None}}],
    'temp_bytes': [{'database': 'app', 'temp_files': 3, 'temp_bytes': 4096, 'stats_reset_age_s': None}],
    "extname = 'pg_stat_statements'": [{'version': '1.10', 'schema': 'public', 'database': 'app',
                                        'server_version_num': 150005, 'on_search_path': True}],
    'FROM pg_stat_statements': [{'queryid': '-42', 'calls': 7, 'total_ms': 1234.5678, 'mean_ms': 176.3654, 'rows': 7,
                                 'query': "SELECT {{ lookup('pipe', 'id') }} FROM orders WHERE note = '%s' AND x = $1"
                                          % PG_SECRET}],
}


def test_the_catalog_views_through_psql_give_the_library_evidence(monkeypatch):
    """pg.replication, pg.vacuum, pg.temp and pg.statements read through psql are the findings the pure
    evaluation gives for the same rows (what the library path hands it); statement text is data, redacted."""
    answers = dict(VIEW_ANSWERS, **{'SELECT 1 AS ok': [{'ok': 1}]})
    calls = []

    def answer(_argv, stdin):
        calls.append(stdin)
        for needle, rows in answers.items():
            if needle in stdin:
                return 0, json.dumps(rows), ''
        return 0, '[]', ''

    monkeypatch.setattr(pg_cli, 'run_process', FakeRun(answer))
    monkeypatch.setattr(pg_cli, 'find_psql', lambda which=None: '/usr/bin/psql')
    module = AreaModule(pg_params())
    out = area_postgres.run(module)
    by_check = dict((f['check'], f) for f in out['findings'])
    t = area_postgres.thresholds_of(module, area_postgres.THRESHOLD_SPEC, area_postgres.PAIRS)
    data = {'replication': VIEW_ANSWERS['pg_replication_slots'][0], 'vacuum': VIEW_ANSWERS['datfrozenxid'][0],
            'temp': VIEW_ANSWERS['temp_bytes'][0:], 'statements_ext': VIEW_ANSWERS["extname = 'pg_stat_statements'"][0],
            'statements': VIEW_ANSWERS['FROM pg_stat_statements'], 'errors': {}}
    expected = dict((f['check'], f) for f in area_postgres.view_findings('db-1', 'db', data, t, 900))
    for check in area_postgres.VIEW_CHECKS:
        got = dict(by_check[check]['evidence'])
        assert got.pop('client') == 'cli'
        assert by_check[check]['status'] == expected[check]['status'], check
        if check != 'pg.statements':
            assert got == expected[check]['evidence'], check
        assert validate(by_check[check]) == [], check
    assert by_check['pg.replication']['status'] == 'warn'  # 3 GiB retained by an inactive slot: past 1 GiB, under 10
    assert by_check['pg.replication']['evidence']['inactive_retaining'] == ['lost_replica']
    assert by_check['pg.vacuum']['status'] == 'warn'  # 1.2e9 is 55.9 % of 2^31
    statement = by_check['pg.statements']['evidence']['statements'][0]
    assert by_check['pg.statements']['status'] == 'ok' and statement['calls'] == 7
    assert PG_SECRET not in json.dumps(out) and "{{ lookup('pipe', 'id') }}" in statement['query']  # data, not run
    # cheap: every view query has a LIMIT; the statements view is read only where the extension is installed
    views = [c for c in calls if 'pg_replication_slots' in c or 'datfrozenxid' in c or 'temp_bytes' in c
             or 'FROM pg_stat_statements' in c]
    # (and the statements spilling most to temporary files, the top 3)
    assert len(views) == 5 and all('LIMIT 10' in c or 'ORDER BY temp_blks_written DESC LIMIT 3' in c for c in views), views


def test_pg_stat_statements_absent_through_psql_is_ok_with_a_hint(monkeypatch):
    calls = []

    def answer(_argv, stdin):
        calls.append(stdin)
        return 0, json.dumps([{'ok': 1}]) if 'SELECT 1 AS ok' in stdin else '[]', ''

    monkeypatch.setattr(pg_cli, 'run_process', FakeRun(answer))
    monkeypatch.setattr(pg_cli, 'find_psql', lambda which=None: '/usr/bin/psql')
    by_check = dict((f['check'], f) for f in area_postgres.run(AreaModule(pg_params()))['findings'])
    assert by_check['pg.statements']['status'] == 'ok'
    assert by_check['pg.statements']['evidence']['installed'] is False
    assert 'CREATE EXTENSION pg_stat_statements' in by_check['pg.statements']['evidence']['hint']
    assert not [c for c in calls if 'FROM pg_stat_statements' in c], 'the view is not read where it does not exist'


# --- the console: a missing client once per host ---------------------------------------------------------

def test_console_prints_a_missing_client_once_per_host(monkeypatch):
    from ansible_collections.sre.incident_response.plugins.plugin_utils.render.console import Console
    monkeypatch.setattr(pg_common, 'HAS_PSYCOPG2', False)
    monkeypatch.setattr(pg_cli, 'find_psql', lambda which=None: None)
    monkeypatch.setattr(redis_common, 'HAS_REDIS', False)
    monkeypatch.setattr(redis_cli, 'find_redis_cli', lambda which=None: None)
    pg = area_postgres.run(AreaModule(pg_params(client='auto')))['findings']
    redis_params = dict(REDIS_PARAMS, report_host='db-1', service='redis', slowlog_count=10, window='15m',
                        thresholds={}, evictable_patterns=[], protected_patterns=[], prefix_sample_keys=0, client='auto')
    rd = area_redis.run(AreaModule(redis_params))['findings']
    other = area_postgres.run(AreaModule(pg_params(client='auto', report_host='db-2')))['findings']
    crit = {'host': 'db-1', 'check': 'health.container', 'status': 'crit', 'summary': 'db stopped'}
    console = Console()
    out = [text for text, _style in console.result('Record', 'sre.incident_response.finding',
                                                   {'findings': pg + rd + other + [crit], 'recorded': True})]
    db1 = [line for line in out if 'db-1/' in line and 'health.container' not in line]
    assert len(db1) == 1, out
    assert db1[0].startswith('   UNKNOWN db-1/pg.connectivity, redis.connectivity: no client on the host for PostgreSQL')
    for package in ('python3-psycopg2', 'postgresql-client', 'python3-redis', 'redis-tools'):
        assert package in db1[0]
    db2 = [line for line in out if 'db-2/' in line]
    assert len(db2) == 1 and 'python3-psycopg2' in db2[0] and 'postgresql-client' in db2[0]
    assert any('CRIT    db-1/health.container: db stopped' in line for line in out)
    # the next probe of the same host prints nothing new
    again = console.result('Record', 'sre.incident_response.finding', {'findings': pg + rd, 'recorded': True})
    assert again == []
