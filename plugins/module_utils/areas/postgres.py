# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The postgres area: postgreSQL diagnostics: the queries (run in one connection) and their evaluation into findings.

Everything about the area is here: its argument spec (SPEC), run(module) and the pure
evaluate_*() functions that turn what it read into findings (unit-tested without a host).
The module sre.incident_response.pg_probe runs this one area; the module probe runs every area of a host
concurrently. run() takes an AnsibleModule or the probe's per-area view of one (params, run_command,
get_bin_path, fail_json) and returns the module result.

collect() runs every query over one connection and returns plain data; the connection is psycopg2's or,
on a host without psycopg2, pg_cli's (the same queries through psql): option client (auto, library, cli),
chosen in pg_common.choose_client. Every finding says which in evidence.client (library or cli); a host with
neither gets one finding for the area (pg.connectivity unknown, evidence.client none) naming both fixes.
The evaluate_*() functions are pure and unit-tested.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

from ansible_collections.sre.incident_response.plugins.module_utils import pg_common, probe_common, timefmt
from ansible_collections.sre.incident_response.plugins.module_utils.docker_api import DockerClient, DockerError
from ansible_collections.sre.incident_response.plugins.module_utils.findings import make_finding as finding, worst
from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import (
    fmt_pct, human_bytes, level, one_line, pct, parse_duration, thresholds_of)
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor


SQL_SERVER = """
SELECT version() AS version,
       current_setting('server_version') AS server_version,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved_connections,
       EXTRACT(EPOCH FROM (now() - pg_postmaster_start_time()))::float AS uptime_s,
       pg_is_in_recovery() AS in_recovery
"""

SQL_ACTIVITY = """
SELECT pid, usename, application_name, client_addr::text AS client_addr, backend_type, datname,
       state, wait_event_type, wait_event,
       EXTRACT(EPOCH FROM (now() - xact_start))::float AS xact_age_s,
       EXTRACT(EPOCH FROM (now() - query_start))::float AS query_age_s,
       EXTRACT(EPOCH FROM (now() - state_change))::float AS state_age_s,
       pg_blocking_pids(pid) AS blocked_by,
       left(query, %(query_chars)s) AS query
FROM pg_stat_activity
WHERE pid <> pg_backend_pid()
ORDER BY pid
"""

SQL_LOCK_WAITS = """
SELECT l.pid, l.locktype, l.mode,
       CASE WHEN l.relation IS NOT NULL THEN l.relation::regclass::text END AS relation,
       EXTRACT(EPOCH FROM (now() - l.waitstart))::float AS wait_s
FROM pg_locks l
WHERE NOT l.granted
"""

SQL_DB_SIZES = """
SELECT datname, pg_database_size(datname)::bigint AS bytes
FROM pg_database WHERE datallowconn ORDER BY 2 DESC
"""

SQL_DATA_DIRECTORY = "SELECT current_setting('data_directory') AS data_directory"

# --- the database's own catalog views: pg.replication, pg.vacuum, pg.temp, pg.statements -------------------------
# Cheap by construction: catalog and statistics views only, each with a LIMIT, no user table read. Every number is
# cast to bigint/float8 and every time is an age in seconds, so psycopg2 and psql give the same values (json
# columns come back as lists on both paths).

SQL_REPLICATION = """
WITH cur AS (SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END AS lsn)
SELECT
  (SELECT coalesce(json_agg(s), '[]'::json) FROM (
     SELECT slot_name::text AS name, slot_type AS type, database::text AS database, active, active_pid,
            wal_status, pg_wal_lsn_diff(cur.lsn, restart_lsn)::bigint AS retained_bytes
     FROM pg_replication_slots, cur
     ORDER BY pg_wal_lsn_diff(cur.lsn, restart_lsn) DESC NULLS LAST, slot_name
     LIMIT %(limit)s) s) AS slots,
  (SELECT count(*) FROM pg_replication_slots)::int AS slot_count,
  (SELECT coalesce(json_agg(r), '[]'::json) FROM (
     SELECT application_name, client_addr::text AS client_addr, state, sync_state,
            EXTRACT(EPOCH FROM replay_lag)::float8 AS replay_lag_s,
            pg_wal_lsn_diff(cur.lsn, replay_lsn)::bigint AS lag_bytes
     FROM pg_stat_replication, cur
     ORDER BY replay_lag DESC NULLS LAST
     LIMIT %(limit)s) r) AS replicas,
  (SELECT row_to_json(a) FROM (
     SELECT current_setting('archive_mode') AS archive_mode, archived_count, failed_count, last_failed_wal,
            EXTRACT(EPOCH FROM (now() - last_failed_time))::float8 AS last_failed_age_s,
            EXTRACT(EPOCH FROM (now() - last_archived_time))::float8 AS last_archived_age_s
     FROM pg_stat_archiver) a) AS archiver
"""

SQL_VACUUM = """
SELECT
  (SELECT coalesce(json_agg(d), '[]'::json) FROM (
     SELECT datname::text AS database, age(datfrozenxid)::bigint AS xid_age
     FROM pg_database WHERE datallowconn ORDER BY age(datfrozenxid) DESC LIMIT %(limit)s) d) AS databases,
  (SELECT coalesce(json_agg(t), '[]'::json) FROM (
     SELECT schemaname::text || '.' || relname::text AS "table", n_dead_tup::bigint AS dead_tuples,
            n_live_tup::bigint AS live_tuples,
            EXTRACT(EPOCH FROM (now() - last_autovacuum))::float8 AS last_autovacuum_age_s,
            EXTRACT(EPOCH FROM (now() - last_vacuum))::float8 AS last_vacuum_age_s
     FROM pg_stat_user_tables WHERE n_dead_tup > 0 ORDER BY n_dead_tup DESC LIMIT %(limit)s) t) AS tables,
  (SELECT coalesce(json_agg(h), '[]'::json) FROM (
     SELECT * FROM (
       SELECT 'session' AS kind, a.pid, a.usename::text AS "user", a.application_name::text AS application, a.state,
              coalesce(r.rolsuper, false) AS superuser, greatest(age(a.backend_xmin), age(a.backend_xid))::bigint AS xid_age,
              EXTRACT(EPOCH FROM (now() - a.xact_start))::float8 AS age_s,
              EXTRACT(EPOCH FROM (now() - a.state_change))::float8 AS state_age_s, NULL::text AS name
       FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
       WHERE a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
         AND (a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL)
       UNION ALL
       SELECT 'prepared', NULL, p.owner::text, NULL, 'prepared', false, age(p.transaction)::bigint,
              EXTRACT(EPOCH FROM (now() - p.prepared))::float8, NULL, p.gid::text
       FROM pg_prepared_xacts p
       UNION ALL
       SELECT 'slot', s.active_pid, NULL, NULL, CASE WHEN s.active THEN 'active' ELSE 'inactive' END, false,
              greatest(age(s.xmin), age(s.catalog_xmin))::bigint, NULL, NULL, s.slot_name::text
       FROM pg_replication_slots s WHERE s.xmin IS NOT NULL OR s.catalog_xmin IS NOT NULL) x
     ORDER BY xid_age DESC NULLS LAST, age_s DESC NULLS LAST LIMIT %(limit)s) h) AS xmin_holders,
  current_setting('autovacuum') AS autovacuum,
  current_setting('autovacuum_freeze_max_age')::bigint AS autovacuum_freeze_max_age
"""

SQL_TEMP = """
SELECT datname::text AS database, temp_files::bigint AS temp_files, temp_bytes::bigint AS temp_bytes,
       EXTRACT(EPOCH FROM (now() - stats_reset))::float8 AS stats_reset_age_s, current_setting('work_mem') AS work_mem
FROM pg_stat_database WHERE datname IS NOT NULL ORDER BY temp_bytes DESC LIMIT %(limit)s
"""

SQL_STATEMENTS_EXT = """
SELECT e.extversion AS version, n.nspname::text AS schema, current_database()::text AS database,
       current_setting('server_version_num')::int AS server_version_num,
       n.nspname = ANY (current_schemas(false)) AS on_search_path
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
"""

# pg_stat_statements of PostgreSQL 13 and later (total_exec_time), and before (total_time); the view is read
# unqualified (the extension's schema must be on the search path: SQL_STATEMENTS_EXT tells).
SQL_STATEMENTS = """
SELECT queryid::text AS queryid, calls::bigint AS calls, total_exec_time::float8 AS total_ms,
       mean_exec_time::float8 AS mean_ms, rows::bigint AS rows, left(query, %(query_chars)s) AS query
FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT %(limit)s
"""
SQL_STATEMENTS_12 = SQL_STATEMENTS.replace('total_exec_time', 'total_time').replace('mean_exec_time', 'mean_time')
# the statements that spill most to temporary files (pg.temp's culprits; same columns on 12 and later)
SQL_STATEMENTS_TEMP = """
SELECT queryid::text AS queryid, calls::bigint AS calls, temp_blks_written::bigint AS temp_blks_written,
       (temp_blks_written * current_setting('block_size')::bigint)::bigint AS temp_bytes, left(query, %(query_chars)s) AS query
FROM pg_stat_statements WHERE temp_blks_written > 0 ORDER BY temp_blks_written DESC LIMIT %(limit)s
"""
TEMP_STATEMENT_ROWS = 3

VIEW_ROWS = 10  # rows each catalog view keeps (slots, replicas, databases, tables, statements)
XID_WRAP = 2 ** 31


def rows(cursor):
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def collect(conn, query_chars=500):
    """Run every query in one connection; per-query errors are kept, not raised."""
    data = {'errors': {}}
    queries = (
        ('server', SQL_SERVER, None),
        ('activity', SQL_ACTIVITY, {'query_chars': query_chars}),
        ('lock_waits', SQL_LOCK_WAITS, None),
        ('db_sizes', SQL_DB_SIZES, None),
        ('data_directory', SQL_DATA_DIRECTORY, None),
        ('replication', SQL_REPLICATION, {'limit': VIEW_ROWS}),
        ('vacuum', SQL_VACUUM, {'limit': VIEW_ROWS}),
        ('temp', SQL_TEMP, {'limit': VIEW_ROWS}),
        ('statements_ext', SQL_STATEMENTS_EXT, None),
    )
    executed = []

    def run_one(key, sql, params):
        cur = conn.cursor()
        try:
            cur.execute(sql, params)
            result = rows(cur)
            data[key] = (result[0] if result else None) if key in SINGLE_ROW else result
        except Exception as exc:  # pylint: disable=broad-except
            data['errors'][key] = '%s: %s' % (type(exc).__name__, one_line(str(exc), 200))
            data[key] = None
        finally:
            cur.close()
        executed.append(' '.join(sql.split()))

    for key, sql, params in queries:
        run_one(key, sql, params)
    ext = data.get('statements_ext')
    if ext and ext.get('on_search_path'):  # only where the extension is installed: its view exists
        sql = SQL_STATEMENTS if (ext.get('server_version_num') or 0) >= 130000 else SQL_STATEMENTS_12
        run_one('statements', sql, {'query_chars': min(query_chars, STATEMENT_CHARS), 'limit': VIEW_ROWS})
        run_one('statements_temp', SQL_STATEMENTS_TEMP, {'query_chars': min(query_chars, STATEMENT_CHARS),
                                                         'limit': TEMP_STATEMENT_ROWS})
    data['executed_queries'] = executed
    return data


SINGLE_ROW = ('server', 'data_directory', 'replication', 'vacuum', 'statements_ext')
STATEMENT_CHARS = 300  # characters of a statement's text kept (pg_stat_statements' text is normalized, $1 for values)


def _client(activity):
    return [a for a in activity or [] if (a.get('backend_type') or 'client backend') == 'client backend']


def _who(a):
    parts = [str(a.get('usename') or '?')]
    if a.get('application_name'):
        parts.append(str(a['application_name']))
    return ' '.join(parts)


def _q(text, limit=80):
    return one_line(text, limit)


def evaluate_connectivity(host, service, server, latency_ms, error=None):
    if error:
        return finding('pg.connectivity', host, service, 'crit', 'cannot connect: %s' % error, {'error': error})
    server = server or {}
    summary = 'accepting connections in %d ms (PostgreSQL %s, up %s%s)' % (
        latency_ms, server.get('server_version', '?'), timefmt.duration(server.get('uptime_s')),
        ', in recovery' if server.get('in_recovery') else '')
    return finding('pg.connectivity', host, service, 'ok', summary,
                   {'latency_ms': latency_ms, 'version': server.get('version'), 'uptime_s': server.get('uptime_s'),
                    'in_recovery': server.get('in_recovery')})


def connection_holders(clients, idle_tx_seconds):
    """Who holds the connections: one row per (application_name, role, client address, state), most first.

    count, oldest_s (age in that state) and past_threshold (idle in transaction longer than idle_tx_seconds).
    """
    groups = {}
    for a in clients:
        state = a.get('state') or 'unknown'
        ident = (a.get('application_name') or '', a.get('usename') or '?', a.get('client_addr') or '', state)
        row = groups.setdefault(ident, {'application_name': ident[0], 'role': ident[1], 'client_addr': ident[2],
                                        'state': state, 'count': 0, 'oldest_s': 0, 'past_threshold': 0, 'pids': []})
        age = a.get('state_age_s') or 0
        row['count'] += 1
        row['oldest_s'] = int(max(row['oldest_s'], age))
        if state.startswith('idle in transaction') and age >= idle_tx_seconds:
            row['past_threshold'] += 1
        if len(row['pids']) < 10:
            row['pids'].append(a.get('pid'))
    return sorted(groups.values(), key=lambda r: (-r['count'], r['application_name'], r['role'], r['state']))


def evaluate_connections(host, service, server, activity, t):
    """pg.connections: client connections by state vs max_connections, idle in transaction."""
    clients = _client(activity)
    max_conn = (server or {}).get('max_connections')
    by_state = {}
    by_app = {}
    for a in clients:
        state = a.get('state') or 'unknown'
        by_state[state] = by_state.get(state, 0) + 1
        app = '%s/%s' % (a.get('usename') or '?', a.get('application_name') or '')
        by_app[app] = by_app.get(app, 0) + 1
    total = len(clients)
    used_pct = pct(total, max_conn)
    idle_tx = [a for a in clients if str(a.get('state') or '').startswith('idle in transaction')]
    oldest_idle_tx = max([a.get('state_age_s') or 0 for a in idle_tx] or [0])
    statuses = [level(used_pct, t['connections_warn_pct'], t['connections_crit_pct'])]
    idle_tx_old = [a for a in idle_tx if (a.get('state_age_s') or 0) >= t['idle_in_transaction_warn_seconds']]
    if idle_tx_old:
        statuses.append('crit' if len(idle_tx_old) >= t['idle_in_transaction_crit_count'] else 'warn')
    status = worst(statuses)
    states = ', '.join('%d %s' % (n, s) for s, n in sorted(by_state.items(), key=lambda kv: -kv[1]))
    summary = '%d of %s connections used (%s)%s' % (total, max_conn if max_conn else '?', fmt_pct(used_pct),
                                                    ': ' + states if states else '')
    if idle_tx:
        worst_tx = max(idle_tx, key=lambda a: a.get('state_age_s') or 0)
        summary = '%d of %d connections idle in transaction (oldest %d s, pid %s %s); %s' % (
            len(idle_tx), total, oldest_idle_tx, worst_tx.get('pid'), _who(worst_tx), summary)
    top_apps = sorted(by_app.items(), key=lambda kv: -kv[1])[:5]
    holders = connection_holders(clients, t['idle_in_transaction_warn_seconds'])
    if holders and status != 'ok':
        summary += '; held by: %s' % ', '.join(
            '%s (role %s, %s) %d %s, oldest %d s' % (h['application_name'] or '(no application_name)', h['role'],
                                                     h['client_addr'] or 'local socket', h['count'], h['state'],
                                                     h['oldest_s'])
            for h in holders[:3])
    evidence = {
        'max_connections': max_conn, 'reserved_connections': (server or {}).get('reserved_connections'),
        'holders': holders[:10], 'idle_in_transaction_threshold_s': t['idle_in_transaction_warn_seconds'],
        'total': total, 'used_pct': used_pct, 'by_state': by_state, 'by_user_application': dict(top_apps),
        'idle_in_transaction': [{'pid': a.get('pid'), 'user': a.get('usename'), 'application': a.get('application_name'),
                                 'idle_s': round(a.get('state_age_s') or 0, 1), 'xact_age_s': round(a.get('xact_age_s') or 0, 1),
                                 'query': _q(a.get('query'), 300)} for a in idle_tx],
    }
    return finding('pg.connections', host, service, status, summary, evidence)


def evaluate_long_queries(host, service, activity, t):
    """pg.long_queries: not idle, running longer than the threshold."""
    clients = _client(activity)
    long_q = sorted([a for a in clients if not str(a.get('state') or 'idle').startswith('idle')
                     and (a.get('query_age_s') or 0) >= t['long_query_seconds']],
                    key=lambda a: -(a.get('query_age_s') or 0))
    evidence = {'threshold_s': t['long_query_seconds'], 'queries': [{
        'pid': a.get('pid'), 'user': a.get('usename'), 'application': a.get('application_name'),
        'state': a.get('state'), 'duration_s': round(a.get('query_age_s') or 0, 1),
        'wait_event': '%s:%s' % (a.get('wait_event_type'), a.get('wait_event')) if a.get('wait_event_type') else None,
        'query': _q(a.get('query'), 500)} for a in long_q]}
    if not long_q:
        active = [a for a in clients if a.get('state') == 'active']
        longest = max([a.get('query_age_s') or 0 for a in active] or [0])
        return finding('pg.long_queries', host, service, 'ok', 'no query running longer than %d s (%d active, longest %.1f s)' % (
            t['long_query_seconds'], len(active), longest), evidence)
    top = long_q[0]
    status = level(top.get('query_age_s') or 0, t['long_query_seconds'], t['long_query_crit_seconds'])
    summary = '%d quer%s running longer than %d s; longest pid %s (%s) %s%s: %s' % (
        len(long_q), 'y' if len(long_q) == 1 else 'ies', t['long_query_seconds'], top.get('pid'), _who(top),
        timefmt.duration(top.get('query_age_s')), ' waiting on %s' % top.get('wait_event_type') if top.get('wait_event_type') else '',
        _q(top.get('query'), 80))
    return finding('pg.long_queries', host, service, status, summary, evidence)


def blocking_chains(blocked_by):
    """Chains root -> ... -> leaf from {pid: [blocking pids]}; roots block others and are not blocked."""
    children = {}
    for pid, blockers in blocked_by.items():
        for b in blockers:
            children.setdefault(b, []).append(pid)
    roots = sorted(b for b in children if not blocked_by.get(b))
    if not roots and children:  # a cycle (deadlock about to be broken): start anywhere
        roots = [sorted(children)[0]]
    chains = []

    def walk(pid, path):
        kids = sorted(children.get(pid, []))
        if not kids or pid in path:
            chains.append(path + [pid])
            return
        for kid in kids:
            walk(kid, path + [pid])

    for root in roots:
        walk(root, [])
    return roots, chains


def evaluate_locks(host, service, activity, lock_waits, t):
    """pg.locks: blocked pid, blocking pid, both queries, wait time and the whole chain."""
    by_pid = {a.get('pid'): a for a in activity or []}
    waits = {}
    for lw in lock_waits or []:
        waits.setdefault(lw.get('pid'), lw)
    blocked = {a['pid']: list(a.get('blocked_by') or []) for a in activity or [] if a.get('blocked_by')}
    if not blocked:
        return finding('pg.locks', host, service, 'ok', 'no lock waits (%d ungranted locks)' % len(lock_waits or []),
                       {'blocked': [], 'chains': []})
    roots, chains = blocking_chains(blocked)

    def wait_s(pid):
        lw = waits.get(pid) or {}
        if lw.get('wait_s') is not None:
            return lw['wait_s']
        return (by_pid.get(pid) or {}).get('state_age_s') or 0

    blocked_list = []
    for pid in sorted(blocked, key=lambda p: -wait_s(p)):
        a = by_pid.get(pid, {})
        lw = waits.get(pid) or {}
        blocked_list.append({
            'pid': pid, 'user': a.get('usename'), 'application': a.get('application_name'), 'blocked_by': blocked[pid],
            'wait_s': round(wait_s(pid), 1), 'lock': '%s %s' % (lw.get('mode') or '', lw.get('relation') or lw.get('locktype') or ''),
            'query': _q(a.get('query'), 500)})
    blocking_pids = sorted({b for bs in blocked.values() for b in bs})
    blockers = []
    for pid in blocking_pids:
        a = by_pid.get(pid, {})
        blockers.append({'pid': pid, 'user': a.get('usename'), 'application': a.get('application_name'),
                         'state': a.get('state'), 'xact_age_s': round(a.get('xact_age_s') or 0, 1),
                         'query_age_s': round(a.get('query_age_s') or 0, 1), 'blocked_by': blocked.get(pid, []),
                         'root': pid in roots, 'query': _q(a.get('query'), 500)})
    longest = blocked_list[0]
    status = level(longest['wait_s'], t['lock_wait_warn_seconds'], t['lock_wait_crit_seconds'])
    if status == 'ok':
        status = 'warn' if len(blocked_list) >= t['blocked_sessions_warn'] else 'ok'
    root = by_pid.get(roots[0], {}) if roots else {}
    chain_text = '; '.join(' <- '.join(str(p) for p in c) for c in chains[:3])
    summary = '%d session%s blocked by pid %s (%s, %s %s: %s); longest wait %d s pid %s: %s; chain %s' % (
        len(blocked_list), '' if len(blocked_list) == 1 else 's', ', '.join(str(r) for r in roots) or '?',
        _who(root), root.get('state', '?'), timefmt.duration(root.get('xact_age_s')), _q(root.get('query'), 60),
        longest['wait_s'], longest['pid'], _q(longest['query'], 60), chain_text)
    evidence = {'blocked': blocked_list, 'blocking': blockers, 'root_pids': roots, 'chains': chains,
                'blocked_pids': [b['pid'] for b in blocked_list], 'blocking_pids': blocking_pids}
    return finding('pg.locks', host, service, status, summary, evidence)


def evaluate_disk(host, service, db_sizes, data_directory, fs, t, fs_error=None):
    """pg.disk: database sizes and the data directory's filesystem usage."""
    sizes = {d['datname']: d['bytes'] for d in db_sizes or []}
    size_text = ', '.join('%s %s' % (k, human_bytes(v)) for k, v in list(sizes.items())[:4])
    evidence = {'databases': sizes, 'data_directory': data_directory, 'filesystem': fs, 'filesystem_error': fs_error}
    if fs and fs.get('total'):
        used_pct = pct(fs['used'], fs['used'] + (fs.get('avail') or 0)) if fs.get('avail') is not None else pct(fs['used'], fs['total'])
        inode_pct = pct(fs.get('inodes_used'), fs.get('inodes_total')) if fs.get('inodes_total') else None
        status = level(max(used_pct, inode_pct or 0), t['disk_warn_pct'], t['disk_crit_pct'])
        summary = 'data directory %s %s used (%s of %s, %s free)%s; databases: %s' % (
            data_directory or '?', fmt_pct(used_pct), human_bytes(fs['used']), human_bytes(fs['total']),
            human_bytes(fs.get('avail')), ', inodes %s' % fmt_pct(inode_pct) if inode_pct is not None else '', size_text or 'none visible')
        return finding('pg.disk', host, service, status, summary, evidence)
    if sizes:
        return finding('pg.disk', host, service, 'ok', 'databases: %s (data directory usage not reachable: %s)' % (
            size_text, fs_error or 'no container or local path'), evidence)
    return finding('pg.disk', host, service, 'unknown', 'no size information: %s' % (fs_error or 'queries failed'), evidence)


def _age(seconds):
    return timefmt.duration(seconds) if seconds is not None else 'never'


def evaluate_replication(host, service, repl, t, window_s, error=None):
    """pg.replication: slots and their retained WAL, replicas' lag, archiver failures.

    An inactive slot keeps every WAL segment from its restart_lsn on: warn/crit past the retained-bytes thresholds
    (the disk fills until someone drops the slot or starts its consumer). A replica's replay lag past its
    thresholds; the archiver failing in the window (warn), failing now, its last failure after its last success
    (crit)."""
    if error or repl is None:
        return not_checked('pg.replication', host, service, error or 'no answer')
    slots = [dict(s) for s in repl.get('slots') or []]
    replicas = repl.get('replicas') or []
    archiver = repl.get('archiver') or {}
    statuses, parts = [], []
    inactive = [s for s in slots if not s.get('active')]
    retaining = [s for s in inactive if (s.get('retained_bytes') or 0) >= t['slot_retained_warn_bytes']]
    for s in slots:
        s['past_threshold'] = s in retaining
    for s in retaining:
        statuses.append(level(s.get('retained_bytes'), t['slot_retained_warn_bytes'], t['slot_retained_crit_bytes']))
    lost = [s for s in slots if s.get('wal_status') == 'lost']
    if lost:
        statuses.append('warn')
    if retaining:
        parts.append('inactive slot%s retaining WAL: %s' % ('' if len(retaining) == 1 else 's', ', '.join(
            '%s (%s, %s)' % (_q(s.get('name'), 64), s.get('type') or '?', human_bytes(s.get('retained_bytes')))
            for s in retaining[:3])))
    if lost:
        parts.append('slot%s lost (WAL removed, consumer must resync): %s' % (
            '' if len(lost) == 1 else 's', ', '.join(_q(s.get('name'), 64) for s in lost[:3])))
    lagging = [r for r in replicas if (r.get('replay_lag_s') or 0) >= t['replica_lag_warn_seconds']]
    for r in lagging:
        statuses.append(level(r.get('replay_lag_s'), t['replica_lag_warn_seconds'], t['replica_lag_crit_seconds']))
    if lagging:
        parts.append('replica lag: %s' % ', '.join('%s %s (%s behind)' % (
            _q(r.get('application_name') or r.get('client_addr') or '?', 64), timefmt.duration(r.get('replay_lag_s')),
            human_bytes(r.get('lag_bytes'))) for r in lagging[:3]))
    failed_age = archiver.get('last_failed_age_s')
    archived_age = archiver.get('last_archived_age_s')
    archive_failing = failed_age is not None and failed_age <= window_s
    if archive_failing:
        failing_now = archived_age is None or failed_age < archived_age
        statuses.append('crit' if failing_now else 'warn')
        parts.append('archiver %s: %s failures, last %s ago (%s)%s' % (
            'failing' if failing_now else 'failed in the window', archiver.get('failed_count'),
            timefmt.duration(failed_age), _q(archiver.get('last_failed_wal'), 40),
            ', last archived %s ago' % timefmt.duration(archived_age) if archived_age is not None else ', never archived'))
    status = worst(statuses or ['ok'])
    if not parts:
        parts.append('%d slot%s (%d inactive, most retained %s), %d replica%s%s, archiver %s' % (
            repl.get('slot_count') or 0, '' if (repl.get('slot_count') or 0) == 1 else 's', len(inactive),
            human_bytes(slots[0].get('retained_bytes')) if slots and slots[0].get('retained_bytes') is not None else '0 B',
            len(replicas), '' if len(replicas) == 1 else 's',
            ' (longest lag %s)' % timefmt.duration(max(r.get('replay_lag_s') or 0 for r in replicas)) if replicas else '',
            'off' if archiver.get('archive_mode') in (None, 'off') else 'ok'))
    evidence = {
        'slots': slots, 'slot_count': repl.get('slot_count'),
        'inactive_retaining': [s.get('name') for s in retaining], 'replicas': replicas, 'archiver': archiver,
        'archive_failing': archive_failing,
        'thresholds': {'slot_retained_warn_bytes': t['slot_retained_warn_bytes'],
                       'slot_retained_crit_bytes': t['slot_retained_crit_bytes'],
                       'replica_lag_warn_seconds': t['replica_lag_warn_seconds'],
                       'replica_lag_crit_seconds': t['replica_lag_crit_seconds']},
    }
    return finding('pg.replication', host, service, status, '; '.join(parts), evidence)


def _holder(h, t):
    """One xmin horizon holder as evidence (text from the database cut with _q) and whether it is past the threshold:
    a session or a prepared transaction older than vacuum_xmin_holder_warn_seconds, an inactive slot (no consumer
    advances its xmin)."""
    kind = h.get('kind')
    age = h.get('age_s')
    row = {'kind': kind, 'pid': h.get('pid'), 'user': _q(h.get('user'), 64) if h.get('user') is not None else None,
           'application': _q(h.get('application'), 64) if h.get('application') else None,
           'state': _q(h.get('state'), 40) if h.get('state') else None, 'superuser': bool(h.get('superuser')),
           'xid_age': h.get('xid_age'), 'age_s': round(age, 1) if age is not None else None,
           'state_age_s': round(h['state_age_s'], 1) if h.get('state_age_s') is not None else None,
           'name': _q(h.get('name'), 64) if h.get('name') else None}
    if kind == 'slot':
        row['past_threshold'] = row['state'] == 'inactive'
    else:
        row['past_threshold'] = age is not None and age >= t['vacuum_xmin_holder_warn_seconds']
    return row


def describe_holder(h):
    """'pid 42 (app report-export, idle in transaction, 6 min)', 'prepared transaction "x" (app, 2 h)', 'slot ...'."""
    if h.get('kind') == 'slot':
        return 'replication slot %s (%s%s)' % (h.get('name'), h.get('state') or '?',
                                               ', pid %s' % h['pid'] if h.get('pid') else '')
    if h.get('kind') == 'prepared':
        return 'prepared transaction %s (owner %s, %s)' % (h.get('name'), h.get('user') or '?', timefmt.duration(h.get('age_s')))
    return 'pid %s (%s%s%s, %s, transaction %s old)' % (
        h.get('pid'), h.get('user') or '?', ' ' + h['application'] if h.get('application') else '',
        ', superuser' if h.get('superuser') else '', h.get('state') or '?', timefmt.duration(h.get('age_s')))


def evaluate_vacuum(host, service, vac, t, error=None):
    """pg.vacuum: transaction ID age per database against 2^31 (wraparound: the server stops assigning IDs near
    it), the tables with the most dead tuples with their last autovacuum, and what holds the xmin horizon back
    (sessions with a snapshot or a transaction ID, prepared transactions, replication slots' xmin/catalog_xmin).

    Rated by the age (warn/crit) and, held back: warn when a table has vacuum_dead_tuples_warn dead tuples or more
    AND a holder is past its threshold (a session or prepared transaction older than vacuum_xmin_holder_warn_seconds,
    an inactive slot holding xmin): vacuum cannot remove tuples that holder may still see."""
    if error or vac is None:
        return not_checked('pg.vacuum', host, service, error or 'no answer')
    databases = [dict(d, pct_of_wraparound=pct(d.get('xid_age') or 0, XID_WRAP)) for d in vac.get('databases') or []]
    tables = vac.get('tables') or []
    holders = [_holder(h, t) for h in vac.get('xmin_holders') or [] if isinstance(h, dict)]
    oldest = databases[0] if databases else {}
    oldest_pct = oldest.get('pct_of_wraparound')
    status = level(oldest_pct, t['xid_age_warn_pct'], t['xid_age_crit_pct']) if databases else 'unknown'
    summary = 'oldest transaction ID age %s in %s (%s of 2^31)' % (
        '{:,}'.format(oldest.get('xid_age') or 0), _q(oldest.get('database'), 64), fmt_pct(oldest_pct)) \
        if databases else 'no database visible'
    bloated = [tb for tb in tables if (tb.get('dead_tuples') or 0) >= t['vacuum_dead_tuples_warn']]
    holding = [h for h in holders if h['past_threshold']]
    held_back = bool(bloated and holding)
    if held_back:
        top = bloated[0]
        summary = 'vacuum held back: %s dead tuples in %s (live %s, last autovacuum %s%s) cannot be removed while ' \
                  '%s holds the xmin horizon%s; %s' % (
                      '{:,}'.format(top.get('dead_tuples') or 0), _q(top.get('table'), 80),
                      '{:,}'.format(top.get('live_tuples') or 0), _age(top.get('last_autovacuum_age_s')),
                      ' ago' if top.get('last_autovacuum_age_s') is not None else '', describe_holder(holding[0]),
                      ' (and %d more)' % (len(holding) - 1) if len(holding) > 1 else '', summary)
        status = worst([status, 'warn'])
    elif tables:
        top = tables[0]
        summary += '; most dead tuples: %s %s (live %s, last autovacuum %s%s)' % (
            _q(top.get('table'), 80), '{:,}'.format(top.get('dead_tuples') or 0), '{:,}'.format(top.get('live_tuples') or 0),
            _age(top.get('last_autovacuum_age_s')), ' ago' if top.get('last_autovacuum_age_s') is not None else '')
    if holders and not held_back:
        summary += '; oldest xmin holder: %s' % describe_holder(holders[0])
    if vac.get('autovacuum') == 'off':
        summary += '; autovacuum is off'
        status = worst([status, 'warn'])
    evidence = {'databases': databases, 'tables': tables, 'autovacuum': vac.get('autovacuum'),
                'autovacuum_freeze_max_age': vac.get('autovacuum_freeze_max_age'),
                'xid_age_warn_pct': t['xid_age_warn_pct'], 'xid_age_crit_pct': t['xid_age_crit_pct'],
                'xmin_holders': holders, 'held_back': held_back,
                'holding_pids': sorted({h['pid'] for h in holding if h['kind'] == 'session' and isinstance(h.get('pid'), int)}),
                'dead_tuples_warn': t['vacuum_dead_tuples_warn'],
                'xmin_holder_warn_seconds': t['vacuum_xmin_holder_warn_seconds']}
    return finding('pg.vacuum', host, service, status, summary, evidence)


def evaluate_temp(host, service, temp, t, error=None):
    """pg.temp: temporary files written per database since its statistics were reset (totals: one probe has no
    rate); warn past temp_bytes_warn."""
    if error or temp is None:
        return not_checked('pg.temp', host, service, error or 'no answer')
    total_files = sum(d.get('temp_files') or 0 for d in temp)
    total_bytes = sum(d.get('temp_bytes') or 0 for d in temp)
    over = [d for d in temp if (d.get('temp_bytes') or 0) >= t['temp_bytes_warn']]
    status = 'warn' if over else 'ok'
    top = temp[0] if temp else {}
    reset = top.get('stats_reset_age_s')
    summary = '%d temp file%s, %s since statistics reset%s%s' % (
        total_files, '' if total_files == 1 else 's', human_bytes(total_bytes),
        ' (%s ago)' % timefmt.duration(reset) if reset is not None else ' (never reset)',
        '; most: %s %s in %d files' % (_q(top.get('database'), 64), human_bytes(top.get('temp_bytes')),
                                       top.get('temp_files') or 0) if total_bytes else '')
    if over:
        summary += '; past %s: %s' % (human_bytes(t['temp_bytes_warn']), ', '.join(_q(d.get('database'), 64) for d in over[:3]))
    if over and top.get('work_mem'):
        summary += ' (work_mem %s)' % _q(top.get('work_mem'), 16)
    evidence = {'databases': temp, 'temp_files': total_files, 'temp_bytes': total_bytes,
                'temp_bytes_warn': t['temp_bytes_warn'], 'work_mem': _q(top.get('work_mem'), 16) if top.get('work_mem') else None}
    return finding('pg.temp', host, service, status, summary, evidence)


STATEMENTS_HINT = ('pg_stat_statements is not installed in this database: add it to shared_preload_libraries '
                   '(restart needed) and run CREATE EXTENSION pg_stat_statements; to see the top statements')


def evaluate_statements(host, service, ext, statements, error=None, ext_error=None, temp_statements=None):
    """pg.statements: the top statements by total execution time when pg_stat_statements is installed in the
    probed database. Not installed (or not loaded) is ok with a hint, never a failure. Statement texts are the
    server's (normalized, $1 for values), cut to STATEMENT_CHARS: data, never templated."""
    if ext_error:
        return not_checked('pg.statements', host, service, ext_error)
    if not ext:
        return finding('pg.statements', host, service, 'ok', 'pg_stat_statements not installed (no top statements)',
                       {'installed': False, 'hint': STATEMENTS_HINT, 'statements': [], 'top_temp': []})
    base = {'installed': True, 'version': ext.get('version'), 'schema': ext.get('schema'), 'statements': [],
            'top_temp': [{'queryid': r.get('queryid'), 'calls': r.get('calls'), 'temp_blks_written': r.get('temp_blks_written'),
                          'temp_bytes': r.get('temp_bytes'), 'query': _q(r.get('query'), STATEMENT_CHARS)}
                         for r in temp_statements or [] if isinstance(r, dict) and r.get('temp_blks_written')]}
    if not ext.get('on_search_path'):
        base['hint'] = 'pg_stat_statements is installed in schema %s, not on the probe role\'s search_path' % _q(
            ext.get('schema'), 64)
        return finding('pg.statements', host, service, 'ok', base['hint'], base)
    if error:
        if 'shared_preload_libraries' in error:
            base['hint'] = 'pg_stat_statements is installed but not loaded: add it to shared_preload_libraries (restart needed)'
            return finding('pg.statements', host, service, 'ok', base['hint'], base)
        return not_checked('pg.statements', host, service, error)
    rows_ = [dict(r, total_ms=round(r.get('total_ms') or 0, 1), mean_ms=round(r.get('mean_ms') or 0, 2),
                  query=_q(r.get('query'), STATEMENT_CHARS)) for r in statements or []]
    base['statements'] = rows_
    if not rows_:
        return finding('pg.statements', host, service, 'ok', 'pg_stat_statements has no statements yet', base)
    top = rows_[0]
    summary = 'top statement by total time: %s over %s calls (mean %.1f ms): %s' % (
        timefmt.duration((top['total_ms'] or 0) / 1000.0), '{:,}'.format(top.get('calls') or 0), top['mean_ms'],
        _q(top.get('query'), 80))
    return finding('pg.statements', host, service, 'ok', summary, base)


def parse_df(kb_output, inode_output=None):
    """Filesystem usage from `df -P -k PATH` (and `df -P -i PATH`) output."""
    def last_fields(text):
        lines = [ln for ln in (text or '').splitlines() if ln.strip()]
        return lines[-1].split() if len(lines) >= 2 else None
    fields = last_fields(kb_output)
    if not fields or len(fields) < 6:
        return None
    out = {'filesystem': fields[0], 'total': int(fields[1]) * 1024, 'used': int(fields[2]) * 1024,
           'avail': int(fields[3]) * 1024, 'mount': fields[5]}
    ifields = last_fields(inode_output)
    if ifields and len(ifields) >= 6 and ifields[1].isdigit():
        out.update({'inodes_total': int(ifields[1]), 'inodes_used': int(ifields[2])})
    return out


def statvfs_usage(path):
    """Filesystem usage of a local path (bytes and inodes), like df."""
    import os
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    free = st.f_bfree * st.f_frsize
    return {'path': path, 'total': total, 'used': total - free, 'avail': avail,
            'inodes_total': st.f_files, 'inodes_used': st.f_files - st.f_ffree}


def not_checked(check, host, service, reason):
    return finding(check, host, service, 'unknown', 'not checked: %s' % reason, {'error': reason})


def no_client(host, service, reason):
    """The one finding of an area that has no way to talk to the server (no psycopg2, no psql)."""
    return finding('pg.connectivity', host, service, 'unknown', 'not checked: %s' % reason,
                   {'error': reason, 'client': 'none', 'install': ['python3-psycopg2', 'postgresql-client']})


THRESHOLD_SPEC = dict(
    connections_warn_pct=dict(type='float', default=80),
    connections_crit_pct=dict(type='float', default=95),
    idle_in_transaction_warn_seconds=dict(type='float', default=30),
    idle_in_transaction_crit_count=dict(type='int', default=5),
    long_query_seconds=dict(type='float', default=30),
    long_query_crit_seconds=dict(type='float', default=300),
    lock_wait_warn_seconds=dict(type='float', default=5),
    lock_wait_crit_seconds=dict(type='float', default=30),
    blocked_sessions_warn=dict(type='int', default=3),
    disk_warn_pct=dict(type='float', default=90),
    disk_crit_pct=dict(type='float', default=95),
    slot_retained_warn_bytes=dict(type='int', default=1073741824),
    slot_retained_crit_bytes=dict(type='int', default=10737418240),
    replica_lag_warn_seconds=dict(type='float', default=60),
    replica_lag_crit_seconds=dict(type='float', default=300),
    xid_age_warn_pct=dict(type='float', default=50),
    xid_age_crit_pct=dict(type='float', default=75),
    temp_bytes_warn=dict(type='int', default=107374182400),
    vacuum_dead_tuples_warn=dict(type='int', default=100000),
    vacuum_xmin_holder_warn_seconds=dict(type='float', default=300),
)
PAIRS = (('connections_warn_pct', 'connections_crit_pct'), ('long_query_seconds', 'long_query_crit_seconds'),
         ('lock_wait_warn_seconds', 'lock_wait_crit_seconds'), ('disk_warn_pct', 'disk_crit_pct'),
         ('slot_retained_warn_bytes', 'slot_retained_crit_bytes'), ('replica_lag_warn_seconds', 'replica_lag_crit_seconds'),
         ('xid_age_warn_pct', 'xid_age_crit_pct'))
# the checks of the catalog views (one finding each)
VIEW_CHECKS = ('pg.replication', 'pg.vacuum', 'pg.temp', 'pg.statements')


def data_dir_usage(module, path):
    """(usage dict, error) of the data directory: in the container when given, else on this host."""
    container = module.params['container']
    if not path:
        return None, 'data directory unknown (grant pg_read_all_settings or set data_directory)'
    if container:
        try:
            client = DockerClient(module.params['docker_host'])
            rc, out, err = client.exec_run(container, ['df', '-P', '-k', path], timeout=10)
            if rc != 0:
                return None, 'df in %s: %s' % (container, one_line(err or out))
            rc2, out2, err2 = client.exec_run(container, ['df', '-P', '-i', path], timeout=10)
            usage = parse_df(out, out2 if rc2 == 0 else None)
            if usage:
                usage['path'] = path
                usage['read_in'] = container
            return usage, None if usage else 'cannot parse df output'
        except DockerError as exc:
            return None, 'container %s: %s' % (container, one_line(str(exc)))
    try:
        return statvfs_usage(path), None
    except OSError as exc:
        return None, '%s: %s' % (path, exc.strerror or exc)


SPEC = pg_common.pg_argument_spec()
SPEC.update(
    report_host=dict(type='str', required=True),
    service=dict(type='str', required=True),
    container=dict(type='str'),
    data_directory=dict(type='path'),
    thresholds=dict(type='dict', default={}, options=THRESHOLD_SPEC),
    query_chars=dict(type='int', default=500),
    docker_host=dict(type='str'),
    log_check=dict(type='bool', default=True),
    window=dict(type='str', default='15m'),
    log_file=dict(type='path'),
    log_max_bytes=dict(type='int', default=8388608),
    client=dict(type='str', default='auto', choices=pg_common.CLIENTS),
)


def run(module):
    """The area's result, scrubbed of the login password as keys and values (AnsibleModule's no_log scrubs values
    only, and application names and queries are the sessions' own text)."""
    p = module.params
    client, missing = pg_common.choose_client(p.get('client'))
    if missing:  # a missing tool is one finding for the area, not a failed play nor one per check
        result = dict(changed=False, executed_queries=[], evidence_files={},
                      findings=[no_client(p['report_host'], p['service'], missing)])
    else:
        result = _run(module, client)
        for item in result['findings']:
            item['evidence']['client'] = client
    if p.get('log_check'):  # the server's own log needs no connection: read also when no client could run
        result['findings'].append(log_check(module, parse_duration(p.get('window') or '15m')))
    return Redactor(literals=[p.get('login_password')]).data(result)


def _run(module, client='library'):
    p = module.params
    t = thresholds_of(module, THRESHOLD_SPEC, PAIRS)
    host, service = p['report_host'], p['service']
    secrets = [p['login_password']]
    started = time.monotonic()
    try:
        conn = pg_common.pg_connect(p, autocommit=True, application_name='sre.incident_response pg_probe',
                                    client=client)
    except Exception as exc:  # pylint: disable=broad-except
        error = pg_common.describe_error(exc, secrets)
        findings = [evaluate_connectivity(host, service, None, None, error=error)]
        findings += [not_checked(c, host, service, 'no connection to %s:%s' % (p['login_host'], p['login_port']))
                     for c in ('pg.connections', 'pg.long_queries', 'pg.locks', 'pg.disk') + VIEW_CHECKS]
        return dict(changed=False, findings=findings, evidence_files={}, executed_queries=[])
    latency_ms = round((time.monotonic() - started) * 1000, 1)
    try:
        data = collect(conn, p['query_chars'])
    finally:
        conn.close()
    errors = data['errors']
    findings = [evaluate_connectivity(host, service, data.get('server'), latency_ms)]
    if data.get('activity') is None:
        reason = 'pg_stat_activity: %s' % errors.get('activity')
        findings += [not_checked(c, host, service, reason) for c in ('pg.connections', 'pg.long_queries', 'pg.locks')]
    else:
        findings.append(evaluate_connections(host, service, data.get('server'), data['activity'], t))
        findings.append(evaluate_long_queries(host, service, data['activity'], t))
        findings.append(evaluate_locks(host, service, data['activity'], data.get('lock_waits'), t))
    datadir = (data.get('data_directory') or {}).get('data_directory') or p['data_directory']
    fs, fs_error = data_dir_usage(module, datadir)
    findings.append(evaluate_disk(host, service, data.get('db_sizes'), datadir, fs, t, fs_error))
    findings += view_findings(host, service, data, t, parse_duration(p.get('window') or '15m'))
    files = {'pg-activity-%s.json' % service: data.get('activity') or [],
             'pg-locks-%s.json' % service: data.get('lock_waits') or []}
    if errors:
        files['pg-errors-%s.json' % service] = errors
    return dict(changed=False, findings=findings, evidence_files=files, executed_queries=data['executed_queries'])


def view_findings(host, service, data, t, window_s):
    """pg.replication, pg.vacuum, pg.temp, pg.statements from collect()'s data (a failed query: unknown)."""
    errors = data.get('errors') or {}
    return [
        evaluate_replication(host, service, data.get('replication'), t, window_s, errors.get('replication')),
        evaluate_vacuum(host, service, data.get('vacuum'), t, errors.get('vacuum')),
        evaluate_temp(host, service, data.get('temp'), t, errors.get('temp')),
        evaluate_statements(host, service, data.get('statements_ext'), data.get('statements'),
                            errors.get('statements'), errors.get('statements_ext'), data.get('statements_temp')),
    ]


# --- pg.log: the server's own log in the window ----------------------------------------------------------------
# Kept apart from the connection-based checks above: it needs no connection (the container's log through the
# engine, or the log file on the host) and runs on every path of run(). Log lines are the server's and its
# clients' text: matched, counted and cut to one line, never templated; secrets are redacted by run().

# "2026-12-05 13:12:08.169 UTC [44] app@app FATAL:  password authentication failed for user "app""
_PG_LINE_RE = re.compile(r'^(?P<ts>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?)(?: (?P<tz>[A-Z]{2,5}|[+-]\d\d(?::?\d\d)?))?'
                         r'.*?\[(?P<pid>\d+)\][^A-Z]*?(?:\S+ )*?(?P<level>FATAL|ERROR|PANIC|LOG|WARNING|DETAIL|HINT|'
                         r'STATEMENT|CONTEXT|NOTICE|INFO|DEBUG\d?):\s+(?P<msg>.*)$')
_DOCKER_TS_RE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ')
# (kind, regex of the message, rated status): the kinds an on-call engineer looks for first
PG_LOG_KINDS = (
    ('auth_failed', re.compile(r'(?:password|md5|scram|ident|peer|cert|ldap|pam|radius) authentication failed for user '
                               r'"(?P<role>[^"]{0,64})"|no pg_hba\.conf entry for host "(?P<client>[^"]{0,64})", '
                               r'user "(?P<role2>[^"]{0,64})"|role "(?P<role3>[^"]{0,64})" does not exist'), 'warn'),
    ('too_many_connections', re.compile(r'sorry, too many clients already|remaining connection slots are reserved'),
     'crit'),
    ('deadlock', re.compile(r'deadlock detected'), 'warn'),
    ('out_of_memory', re.compile(r'out of memory|could not fork|server process .* was terminated by signal 9'), 'crit'),
    ('disk_full', re.compile(r'No space left on device|could not extend file|could not write to file'), 'crit'),
    ('checkpoints_too_frequent', re.compile(r'checkpoints are occurring too frequently'), 'warn'),
)
_CLIENT_RE = re.compile(r'connection received: host=(?P<host>[^ ]{1,64})')
_NORMALIZE_RE = re.compile(r'"[^"]*"|\'[^\']*\'|\b\d+(?:\.\d+)?\b')
PG_LOG_DIRS = ('/var/log/postgresql',)
# Authentication failures rate pg.log from this many in the window on: a mistyped password or a probe connecting
# as the wrong OS user is a line or two; a rotated password or a misconfigured client is a steady stream.
AUTH_FAILED_WARN = 5
# A kind that has been silent for longer than it takes to recur is no longer happening: it stays in the evidence
# ("stopped 4 min ago") and rates ok, so that errors of an incident that is over never outrank what is failing now.
# Silent means: PG_LOG_LIVE_S, or three of its own mean intervals when it recurs more slowly (a batch job failing
# its login every minute is still failing after 60 s of silence), or PG_LOG_SINGLE_LIVE_S for a single line.
PG_LOG_LIVE_S = 30
PG_LOG_SINGLE_LIVE_S = 120


def log_kind_stopped(group, now, live_s=PG_LOG_LIVE_S):
    """Seconds since the kind's last line when it has stopped (see PG_LOG_LIVE_S), else None."""
    last, first, count = group.get('last_ts'), group.get('first_ts'), group.get('count') or 0
    if now is None or last is None:
        return None
    if count > 1 and first is not None:
        quiet = max(live_s, 3.0 * (last - first) / (count - 1))
    else:
        quiet = max(live_s, PG_LOG_SINGLE_LIVE_S)
    return int(now - last) if now - last > quiet else None


def _pg_log_time(match):
    """Epoch seconds of a log line's time stamp (UTC, or the offset it names; a zone name other than UTC/GMT is
    taken as the host's local time), None when it does not parse."""
    import calendar
    text = match.group('ts').replace('T', ' ')
    try:
        parsed = time.strptime(text.split('.')[0], '%Y-%m-%d %H:%M:%S')
    except ValueError:
        return None
    frac = float('0.' + text.split('.')[1]) if '.' in text else 0.0
    tz = match.group('tz') or 'UTC'
    if tz in ('UTC', 'GMT'):
        return calendar.timegm(parsed) + frac
    if tz[0] in '+-':
        digits = tz[1:].replace(':', '')
        offset = int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60
        return calendar.timegm(parsed) + frac - (offset if tz[0] == '+' else -offset)
    return time.mktime(parsed) + frac


def parse_pg_log(text, since, until=None):
    """PostgreSQL log text (stderr/log file, the default log_line_prefix or Debian's) -> the FATAL/ERROR/PANIC lines
    of the window grouped by kind: {'groups': {kind: {count, status, first_ts, last_ts, sample, by_role?}},
    'other': {normalized message: count}, 'lines': lines of the window, 'unparsed': count}.

    Authentication failures are counted by role and client (the client from the same backend's
    'connection received' line, when log_connections is on)."""
    groups, other, clients = {}, {}, {}
    in_window, unparsed = 0, 0
    for raw in (text or '').splitlines():
        line = _DOCKER_TS_RE.sub('', raw, count=1)
        match = _PG_LINE_RE.match(line)
        if not match:
            unparsed += 1 if line.strip() else 0
            continue
        ts = _pg_log_time(match)
        if ts is not None and (ts < since or (until is not None and ts > until)):
            continue
        in_window += 1
        level_name, msg, pid = match.group('level'), match.group('msg'), match.group('pid')
        client = _CLIENT_RE.search(msg)
        if client:
            clients[pid] = client.group('host')
            continue
        if level_name not in ('FATAL', 'ERROR', 'PANIC') and 'checkpoints are occurring too frequently' not in msg:
            continue
        for kind, regex, status in PG_LOG_KINDS:
            found = regex.search(msg)
            if not found:
                continue
            group = groups.setdefault(kind, {'count': 0, 'status': status, 'first_ts': ts, 'last_ts': ts,
                                             'sample': one_line(msg, 200)})
            group['count'] += 1
            group['last_ts'] = ts
            if kind == 'auth_failed':
                role = found.group('role') or found.group('role2') or found.group('role3') or '?'
                who = found.group('client') or clients.get(pid) or 'unknown client'
                key = '%s from %s' % (one_line(role, 64), one_line(who, 64))
                group.setdefault('by_role', {})
                group['by_role'][key] = group['by_role'].get(key, 0) + 1
            break
        else:
            if level_name == 'PANIC':
                groups.setdefault('panic', {'count': 0, 'status': 'crit', 'first_ts': ts, 'last_ts': ts,
                                            'sample': one_line(msg, 200)})['count'] += 1
            else:
                norm = '%s: %s' % (level_name, one_line(_NORMALIZE_RE.sub('?', msg), 120))
                other[norm] = other.get(norm, 0) + 1
    return {'groups': groups, 'other': other, 'lines': in_window, 'unparsed': unparsed}


def evaluate_log(host, service, parsed, source, window_s, error=None, now=None, live_s=PG_LOG_LIVE_S):
    """pg.log: crit for too many connections, out of memory, disk full or a PANIC in the window; warn for
    authentication failures, deadlocks, checkpoints too frequent; other ERROR/FATAL lines are evidence.
    With now: a kind that has stopped (log_kind_stopped) rates ok and is kept in the evidence."""
    if error:
        return finding('pg.log', host, service, 'unknown', 'log not read: %s' % error, {'error': error, 'source': source})
    groups = parsed['groups']
    order = [k for k, _r, _s in PG_LOG_KINDS] + ['panic']
    parts = []
    for kind in sorted(groups, key=order.index):
        group = groups[kind]
        text = '%s %d' % (kind.replace('_', ' '), group['count'])
        if group.get('by_role'):
            top = sorted(group['by_role'].items(), key=lambda kv: (-kv[1], kv[0]))
            text += ' (%s)' % ', '.join('%s: %d' % kv for kv in top[:3])
        stopped = log_kind_stopped(group, now, live_s)
        if stopped is not None:
            group['stopped_ago_s'] = stopped
            group['status'] = 'ok'
            text += ' (stopped %s ago)' % timefmt.duration(group['stopped_ago_s'])
        parts.append(text)
    if 'auth_failed' in groups and groups['auth_failed']['count'] < AUTH_FAILED_WARN:
        groups['auth_failed']['status'] = 'ok'
    status = worst([g['status'] for g in groups.values()] or ['ok'])
    other_total = sum(parsed['other'].values())
    if parts:
        summary = 'in the window: ' + '; '.join(parts)
    else:
        summary = 'no FATAL/ERROR line of a known kind in the window'
    if other_total:
        top = max(parsed['other'].items(), key=lambda kv: kv[1])
        summary += '; %d other error line%s (most: %s x%d)' % (
            other_total, '' if other_total == 1 else 's', one_line(top[0], 80), top[1])
    roles = sorted({k.split(' from ', 1)[0] for k in (groups.get('auth_failed') or {}).get('by_role', {})})
    evidence = {'groups': groups, 'other': dict(sorted(parsed['other'].items(), key=lambda kv: -kv[1])[:10]),
                'lines': parsed['lines'], 'unparsed': parsed['unparsed'], 'source': source, 'window_s': window_s,
                'auth_failed_roles': roles}
    return finding('pg.log', host, service, status, summary + ' (%s)' % source, evidence)


def _tail_file(path, max_bytes):
    return probe_common.tail_file(path, max_bytes)[0]


def find_log_file(p, conn_logfile=None):
    """The server's log file on this host: log_file, pg_current_logfile() (relative to the data directory), else
    the newest *.log of the known log directories (Debian's /var/log/postgresql). None when none is found."""
    import glob
    import os
    for candidate in (p.get('log_file'), conn_logfile):
        if candidate:
            if not os.path.isabs(candidate) and p.get('data_directory'):
                candidate = os.path.join(p['data_directory'], candidate)
            return candidate
    found = []
    for directory in PG_LOG_DIRS:
        found += [f for f in glob.glob(os.path.join(directory, '*.log')) if os.path.isfile(f)]
    return max(found, key=os.path.getmtime) if found else None


def log_check(module, window_s):
    """pg.log of the service: the container's log through the engine (deploy.container), else the log file."""
    p = module.params
    host, service = p['report_host'], p['service']
    now = time.time()
    since = now - window_s
    if p.get('container') and not p.get('log_file'):
        source = 'docker logs %s' % p['container']
        try:
            client = DockerClient(p.get('docker_host'), timeout=10)
            out, err = client.logs(p['container'], since=since, tail=20000)
        except (DockerError, OSError) as exc:
            return evaluate_log(host, service, None, source, window_s, error=one_line(str(exc), 200))
        return evaluate_log(host, service, parse_pg_log(out + '\n' + err, since), source, window_s, now=now)
    path = find_log_file(p)
    if not path:
        return evaluate_log(host, service, None, 'log file', window_s, error='no log file found (set log_file; looked in %s)'
                            % ', '.join(PG_LOG_DIRS))
    try:
        text = _tail_file(path, p.get('log_max_bytes') or 8388608)
    except OSError as exc:
        return evaluate_log(host, service, None, path, window_s, error=one_line(exc.strerror or str(exc), 200))
    return evaluate_log(host, service, parse_pg_log(text, since), path, window_s, now=now)
