"""pg.log (plugins/module_utils/areas/postgres.py, its own section): the server's FATAL/ERROR lines of the window,
grouped by kind, from the PostgreSQL log as the server writes it (the lab container's stderr through the engine
with Docker's time stamps, Debian's log file with its log_line_prefix '%m [%p] %q%u@%d ')."""
import calendar
import time

from ansible_collections.sre.incident_response.plugins.module_utils import findings as contract
from ansible_collections.sre.incident_response.plugins.module_utils.areas import postgres as area

NOW = calendar.timegm(time.strptime('2026-12-05 13:20:00', '%Y-%m-%d %H:%M:%S'))
SINCE = NOW - 900

DOCKER = '\n'.join([
    '2026-12-05T13:00:00.000000000Z 2026-12-05 13:00:00.100 UTC [10] FATAL:  password authentication failed for user "old"',
    '2026-12-05T13:10:00.000000000Z 2026-12-05 13:10:00.100 UTC [44] LOG:  checkpoint starting: time',
] + ['2026-12-05T13:1%d:00.0Z 2026-12-05 13:1%d:00.%03d UTC [%d] FATAL:  password authentication failed for user "app"'
     % (i % 10, i % 10, i, 100 + i) for i in range(6)] + [
    '2026-12-05T13:11:00.0Z 2026-12-05 13:11:00.100 UTC [105] DETAIL:  Connection matched pg_hba.conf line 5: "host all all 127.0.0.1/32 scram-sha-256"',
    '2026-12-05T13:12:00.0Z 2026-12-05 13:12:00.100 UTC [200] FATAL:  sorry, too many clients already',
    '2026-12-05T13:12:01.0Z 2026-12-05 13:12:01.100 UTC [201] ERROR:  deadlock detected',
    '2026-12-05T13:12:01.0Z 2026-12-05 13:12:01.100 UTC [201] DETAIL:  Process 201 waits for ShareLock on transaction 900; blocked by process 202.',
    '2026-12-05T13:12:02.0Z 2026-12-05 13:12:02.100 UTC [203] ERROR:  duplicate key value violates unique constraint "orders_pkey"',
    '2026-12-05T13:12:03.0Z 2026-12-05 13:12:03.100 UTC [204] ERROR:  duplicate key value violates unique constraint "items_pkey"',
    '2026-12-05T13:12:04.0Z 2026-12-05 13:12:04.100 UTC [205] STATEMENT:  ALTER ROLE app PASSWORD \'s3cret-value\'',
])

DEBIAN = '\n'.join([
    '2026-12-05 14:12:00.100 +01 [300] LOG:  connection received: host=127.0.0.7 port=51234',
    '2026-12-05 14:12:00.200 +01 [300] app@app FATAL:  password authentication failed for user "app"',
    '2026-12-05 14:12:05.000 +01:00 [301] LOG:  checkpoints are occurring too frequently (9 seconds apart)',
    '2026-12-05 13:12:06.000 UTC [302] postgres@app ERROR:  could not extend file "base/16384/16385": No space left on device',
    '2026-12-05 13:12:07.000 UTC [303] [unknown]@[unknown] FATAL:  no pg_hba.conf entry for host "127.0.0.29", user "report", database "app", no encryption',
])


def _valid(f):
    assert contract.validate(f) == [], contract.validate(f)
    return f


def test_lines_of_the_window_are_grouped_by_kind_and_auth_failures_by_role():
    parsed = area.parse_pg_log(DOCKER, SINCE, NOW)
    groups = parsed['groups']
    assert groups['auth_failed']['count'] == 6 and groups['auth_failed']['by_role'] == {'app from unknown client': 6}
    assert groups['too_many_connections']['count'] == 1 and groups['deadlock']['count'] == 1
    assert parsed['other'] == {'ERROR: duplicate key value violates unique constraint ?': 2}
    f = _valid(area.evaluate_log('app-db', 'db', parsed, 'docker logs app-db', 900))
    assert f['status'] == 'crit'  # too many connections
    assert f['summary'].startswith('in the window: auth failed 6 (app from unknown client: 6); too many connections 1; '
                                   'deadlock 1; 2 other error lines')
    assert f['evidence']['auth_failed_roles'] == ['app']
    assert 's3cret' not in str(f)  # a STATEMENT line is never kept


def test_debian_prefix_offsets_and_clients_from_connection_lines():
    parsed = area.parse_pg_log(DEBIAN, SINCE, NOW)
    groups = parsed['groups']
    assert groups['auth_failed']['by_role'] == {'app from 127.0.0.7': 1, 'report from 127.0.0.29': 1}
    assert groups['checkpoints_too_frequent']['count'] == 1 and groups['disk_full']['count'] == 1
    f = _valid(area.evaluate_log('db-1', 'db', parsed, '/var/log/postgresql/postgresql-15-main.log', 900))
    assert f['status'] == 'crit' and groups['auth_failed']['status'] == 'ok'  # 2 failures: below AUTH_FAILED_WARN


def test_a_few_auth_failures_are_evidence_a_stream_of_them_is_warn():
    few = '\n'.join('2026-12-05 13:1%d:00 UTC [1] FATAL:  role "root" does not exist' % i for i in range(3))
    f = _valid(area.evaluate_log('h', 'db', area.parse_pg_log(few, SINCE, NOW), 'x', 900))
    assert f['status'] == 'ok' and 'auth failed 3 (root from unknown client: 3)' in f['summary']
    many = '\n'.join('2026-12-05 13:1%d:00 UTC [1] FATAL:  role "root" does not exist' % i for i in range(5))
    assert _valid(area.evaluate_log('h', 'db', area.parse_pg_log(many, SINCE, NOW), 'x', 900))['status'] == 'warn'


def test_a_quiet_log_is_ok_and_an_unreadable_one_is_unknown_with_the_reason():
    f = _valid(area.evaluate_log('h', 'db', area.parse_pg_log('', SINCE, NOW), 'docker logs app-db', 900))
    assert f['status'] == 'ok' and f['summary'].startswith('no FATAL/ERROR line of a known kind in the window')
    f = _valid(area.evaluate_log('h', 'db', None, 'log file', 900, error='no log file found'))
    assert f['status'] == 'unknown' and f['evidence']['error'] == 'no log file found'


def test_the_log_file_is_found_by_option_then_in_the_known_directories(tmp_path, monkeypatch):
    log = tmp_path / 'postgresql-15-main.log'
    log.write_text(DEBIAN)
    assert area.find_log_file({'log_file': str(log)}) == str(log)
    assert area.find_log_file({'log_file': 'log/pg.log', 'data_directory': '/srv/pg'}) == '/srv/pg/log/pg.log'
    monkeypatch.setattr(area, 'PG_LOG_DIRS', (str(tmp_path),))
    assert area.find_log_file({}) == str(log)
    assert area._tail_file(str(log), 60).count('\n') < DEBIAN.count('\n')  # only whole lines of the tail


def test_errors_that_stopped_rate_ok_and_stay_in_the_evidence():
    """Live over stale: auth failures that ended two minutes before the probe are evidence, not a symptom."""
    lines = '\n'.join('2026-12-05 13:12:%02d.169 UTC [44] app@app FATAL:  password authentication failed for user "app"'
                      % second for second in range(10))
    parsed = area.parse_pg_log(lines, 0)
    last = parsed['groups']['auth_failed']['last_ts']
    live = _valid(area.evaluate_log('h', 'db', area.parse_pg_log(lines, 0), 'x', 900, now=last + 5))
    assert live['status'] == 'warn' and 'stopped' not in live['summary']
    stale = _valid(area.evaluate_log('h', 'db', parsed, 'x', 900, now=last + 125))
    assert stale['status'] == 'ok', stale
    assert 'stopped 2 min ago' in stale['summary'] and stale['evidence']['groups']['auth_failed']['stopped_ago_s'] == 125


def test_a_slow_recurring_kind_is_live_until_three_of_its_intervals_pass():
    every_minute = '\n'.join('2026-12-05 13:%02d:00.000 UTC [4%d] batch@app FATAL:  password authentication failed for '
                             'user "batch"' % (minute, minute) for minute in range(10, 16))
    parsed = area.parse_pg_log(every_minute, 0)
    last = parsed['groups']['auth_failed']['last_ts']
    assert area.log_kind_stopped(parsed['groups']['auth_failed'], last + 150) is None  # 2.5 intervals: still failing
    assert area.log_kind_stopped(parsed['groups']['auth_failed'], last + 200) == 200
    single = area.parse_pg_log('2026-12-05 13:12:00.000 UTC [44] app@app ERROR:  deadlock detected', 0)
    assert area.log_kind_stopped(single['groups']['deadlock'], single['groups']['deadlock']['last_ts'] + 90) is None
