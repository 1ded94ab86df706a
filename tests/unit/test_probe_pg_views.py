"""The database's own catalog views (plugins/module_utils/areas/postgres.py): pg.replication, pg.vacuum, pg.temp,
pg.statements evaluated from the rows collect() reads, against their thresholds; and the diagnosis of a slot."""
import json

from ansible_collections.sre.incident_response.plugins.module_utils.areas import postgres as area
from ansible_collections.sre.incident_response.plugins.module_utils.findings import validate
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import diagnosis as dx
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import safety

T = dict((k, v['default']) for k, v in area.THRESHOLD_SPEC.items())
GIB = 1024 ** 3
CTX = {'incident_id': 'INC-20261205-1700-aaaa', 'inventory': 'inventory/lab', 'playbook_dir': 'playbooks',
       'backends': ['app-backend'], 'backend_services': ['backend'], 'owners': {'db': 'platform'}}


def slot(name, active=False, retained=0, wal_status='reserved'):
    return {'name': name, 'type': 'physical', 'database': None, 'active': active, 'active_pid': 77 if active else None,
            'wal_status': wal_status, 'retained_bytes': retained}


def repl(slots=(), replicas=(), archiver=None):
    return {'slots': list(slots), 'slot_count': len(slots), 'replicas': list(replicas),
            'archiver': archiver or {'archive_mode': 'off', 'archived_count': 0, 'failed_count': 0,
                                     'last_failed_wal': None, 'last_failed_age_s': None, 'last_archived_age_s': None}}


def _valid(f):
    assert validate(f) == [], validate(f)
    return f


def test_inactive_slot_warns_then_crits_by_retained_bytes_and_an_active_one_does_not():
    ok = _valid(area.evaluate_replication('db-1', 'db', repl([slot('busy', active=True, retained=50 * GIB)]), T, 900))
    assert ok['status'] == 'ok' and ok['evidence']['inactive_retaining'] == []
    small = area.evaluate_replication('db-1', 'db', repl([slot('old', retained=GIB - 1)]), T, 900)
    assert small['status'] == 'ok'
    warn = _valid(area.evaluate_replication('db-1', 'db', repl([slot('old', retained=2 * GIB)]), T, 900))
    assert warn['status'] == 'warn' and warn['evidence']['inactive_retaining'] == ['old']
    assert 'inactive slot retaining WAL: old (physical, 2.0 GiB)' in warn['summary']
    crit = area.evaluate_replication('db-1', 'db', repl([slot('old', retained=11 * GIB), slot('x', retained=0)]), T, 900)
    assert crit['status'] == 'crit' and crit['evidence']['slots'][0]['past_threshold'] is True
    lowered = dict(T, slot_retained_warn_bytes=1048576, slot_retained_crit_bytes=16777216)
    assert area.evaluate_replication('db-1', 'db', repl([slot('lab', retained=24 * 1048576)]), lowered, 900)['status'] == 'crit'


def test_replica_lag_and_archiver_failures():
    lag = {'application_name': 'standby-1', 'client_addr': '127.0.0.8', 'state': 'streaming', 'sync_state': 'async',
           'replay_lag_s': 120.0, 'lag_bytes': 64 * 1048576}
    f = _valid(area.evaluate_replication('db-1', 'db', repl(replicas=[lag]), T, 900))
    assert f['status'] == 'warn' and 'replica lag: standby-1' in f['summary']
    assert area.evaluate_replication('db-1', 'db', repl(replicas=[dict(lag, replay_lag_s=301)]), T, 900)['status'] == 'crit'
    failing = {'archive_mode': 'on', 'archived_count': 10, 'failed_count': 4, 'last_failed_wal': '00000001000000000000000A',
               'last_failed_age_s': 30.0, 'last_archived_age_s': 600.0}
    f = _valid(area.evaluate_replication('db-1', 'db', repl(archiver=failing), T, 900))
    assert f['status'] == 'crit' and 'archiver failing: 4 failures' in f['summary'] and f['evidence']['archive_failing']
    recovered = dict(failing, last_archived_age_s=10.0)
    assert area.evaluate_replication('db-1', 'db', repl(archiver=recovered), T, 900)['status'] == 'warn'
    old = dict(failing, last_failed_age_s=3600.0)  # a failure before the window is history
    assert area.evaluate_replication('db-1', 'db', repl(archiver=old), T, 900)['status'] == 'ok'


def test_vacuum_rates_the_transaction_id_age_against_2_31():
    def vac(age):
        return {'databases': [{'database': 'app', 'xid_age': age}], 'autovacuum': 'on',
                'autovacuum_freeze_max_age': 200000000,
                'tables': [{'table': 'public.orders', 'dead_tuples': 120000, 'live_tuples': 1000,
                            'last_autovacuum_age_s': 7200.0, 'last_vacuum_age_s': None}]}
    ok = _valid(area.evaluate_vacuum('db-1', 'db', vac(200000000), T))
    assert ok['status'] == 'ok' and 'public.orders 120,000' in ok['summary'] and 'last autovacuum 2 h' in ok['summary']
    assert ok['evidence']['databases'][0]['pct_of_wraparound'] == 9.3
    assert area.evaluate_vacuum('db-1', 'db', vac(int(0.5 * 2 ** 31)), T)['status'] == 'warn'
    assert area.evaluate_vacuum('db-1', 'db', vac(int(0.8 * 2 ** 31)), T)['status'] == 'crit'
    off = dict(vac(100), autovacuum='off')
    assert area.evaluate_vacuum('db-1', 'db', off, T)['status'] == 'warn'
    assert area.evaluate_vacuum('db-1', 'db', None, T, error='ProgrammingError: x')['status'] == 'unknown'


def test_temp_reports_totals_and_warns_only_past_the_threshold():
    rows = [{'database': 'app', 'temp_files': 12, 'temp_bytes': 3 * GIB, 'stats_reset_age_s': 86400.0},
            {'database': 'postgres', 'temp_files': 0, 'temp_bytes': 0, 'stats_reset_age_s': None}]
    f = _valid(area.evaluate_temp('db-1', 'db', rows, T))
    assert f['status'] == 'ok' and f['summary'].startswith('12 temp files, 3.0 GiB since statistics reset (1 d')
    assert area.evaluate_temp('db-1', 'db', rows, dict(T, temp_bytes_warn=GIB))['status'] == 'warn'


def test_statements_not_installed_is_ok_with_a_hint_and_text_is_cut():
    absent = _valid(area.evaluate_statements('db-1', 'db', None, None))
    assert absent['status'] == 'ok' and absent['evidence']['installed'] is False and 'CREATE EXTENSION' in absent['evidence']['hint']
    ext = {'version': '1.10', 'schema': 'public', 'database': 'app', 'server_version_num': 150005, 'on_search_path': True}
    unloaded = area.evaluate_statements('db-1', 'db', ext, None, error='ProgrammingError: pg_stat_statements must be '
                                        'loaded via "shared_preload_libraries"')
    assert unloaded['status'] == 'ok' and 'shared_preload_libraries' in unloaded['evidence']['hint']
    elsewhere = area.evaluate_statements('db-1', 'db', dict(ext, on_search_path=False, schema='ext'), None)
    assert elsewhere['status'] == 'ok' and 'search_path' in elsewhere['summary']
    long_text = 'SELECT ' + 'x, ' * 500 + '{{ 7 * 7 }}'
    rows = [{'queryid': '1', 'calls': 3, 'total_ms': 90000.0, 'mean_ms': 30000.0, 'rows': 3, 'query': long_text}]
    top = _valid(area.evaluate_statements('db-1', 'db', ext, rows))
    assert top['status'] == 'ok' and len(top['evidence']['statements'][0]['query']) <= area.STATEMENT_CHARS
    assert top['summary'].startswith('top statement by total time: ') and '3 calls' in top['summary']


def test_collect_reads_pg_stat_statements_only_where_installed():
    class Cur(object):
        def __init__(self, log, answers):
            self.log, self.answers, self.description, self._rows = log, answers, None, []

        def execute(self, sql, params=None):
            self.log.append(sql)
            for needle, rows in self.answers.items():
                if needle in sql:
                    names = list(rows[0]) if rows else []
                    self.description = [(n,) for n in names]
                    self._rows = [tuple(r[n] for n in names) for r in rows]
                    return
            self.description, self._rows = [], []

        def fetchall(self):
            return self._rows

        def close(self):
            pass

    class Conn(object):
        def __init__(self, answers):
            self.log, self.answers = [], answers

        def cursor(self):
            return Cur(self.log, self.answers)

    absent = Conn({})
    area.collect(absent)
    assert not [s for s in absent.log if 'FROM pg_stat_statements' in s]
    ext = {'version': '1.10', 'schema': 'public', 'database': 'app', 'server_version_num': 120010, 'on_search_path': True}
    present = Conn({"extname = 'pg_stat_statements'": [ext]})
    area.collect(present)
    read = [s for s in present.log if 'FROM pg_stat_statements' in s]
    assert len(read) == 2 and 'total_time' in read[0] and 'total_exec_time' not in read[0]  # PostgreSQL 12 names
    assert 'ORDER BY temp_blks_written DESC' in read[1]  # the statements spilling most to temporary files


def test_slot_retaining_wal_is_an_escalation_naming_the_slot_never_a_restart_or_drop():
    f = area.evaluate_replication('app-db', 'db', repl([slot('lab_lost_replica', retained=24 * 1048576)]),
                                  dict(T, slot_retained_warn_bytes=1048576, slot_retained_crit_bytes=16777216), 900)
    doc = dx.diagnose([f], CTX)
    top = doc['hypotheses'][0]
    assert top['action'] is None and 'investigate.yml' in top['first_action'] and 'area=db' in top['first_action']
    assert '"lab_lost_replica"' in top['escalation'] and 'breaks the consumer' in top['escalation']
    assert 'platform' in top['escalation'] and 'Do not restart db' in top['escalation']
    verdict = safety.judge('restart', 'db', [f], CTX)
    assert verdict['allowed'] is False and verdict['kind'] == 'wal_retained' and '"lab_lost_replica"' in verdict['escalation']


def test_disk_pressure_on_the_db_host_points_at_the_slot():
    f = area.evaluate_replication('app-db', 'db', repl([slot('cdc_debezium', retained=40 * GIB)]), T, 900)
    disk = {'host': 'app-db', 'check': 'pg.disk', 'status': 'crit', 'service': 'db',
            'summary': 'data directory /var/lib/postgresql/data 97% used', 'evidence': {}}
    top = dx.diagnose([f, disk], CTX)['hypotheses'][0]
    assert top['likely_cause'].startswith('Disk pressure on app-db: inactive replication slot "cdc_debezium"'), top
    assert top['action'] is None and 'app-db/pg.disk' in top['evidence'] and top['confidence'] >= 0.85


def test_a_slot_name_from_the_database_is_data():
    hostile = '{{ lookup("pipe", "id") }}$(id)'
    f = area.evaluate_replication('app-db', 'db', repl([slot(hostile, retained=20 * GIB)]), T, 900)
    top = dx.diagnose([f], CTX)['hypotheses'][0]
    text = json.dumps([top['escalation'], top['likely_cause']])
    assert '{{' not in text and '$(' not in text
