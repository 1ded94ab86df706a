# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The findings contract: check names, statuses, their order, and the evidence keys each check produces.

A finding is ``{check, host, service, status, summary, evidence}`` (``ts`` is added when it is recorded,
see incident_files.normalize_finding). Probes build findings with ``make_finding``; the diagnosis
(diagnosis.py, classify.py) reads evidence only through ``evidence()`` and ``require()``, so that a key
no probe produces cannot be matched silently: with ``STRICT`` on (the unit tests turn it on), reading a
key the contract does not declare for the finding's check raises ``ContractError``.

Check names (docs/reference/contracts.md lists the same, tests/unit/test_findings_contract.py compares):
``CHECKS`` below, plus the family ``trend.<name>`` (Prometheus trends, one check per configured trend;
``trend.memory``, ``trend.latency`` and ``trend.connections`` are the defaults).

Statuses: ``ok``, ``warn``, ``crit``, ``unknown`` (the check could not run). Order, least to most severe:
ok < unknown < warn < crit (``STATUS_RANK``); ``worst()`` and ``worst_first()`` follow it.

Evidence keys (``EVIDENCE``): for each check, every key its evidence may carry, as paths:

- ``name``: a key of the evidence;
- ``name.sub``: a key of the mapping ``name``;
- ``name[].sub``: a key of the records (mappings) in the list ``name``;
- ``name{}.sub``: a key of the records that are the values of the mapping ``name`` (its own keys are data:
  paths, service names);
- a key without declared sub-keys holds data whose keys are not the probe's (a container's labels, an
  HTTP body, ``systemctl show`` properties, database names): it is not checked further.

An ``unknown`` finding of any check may carry ``area`` (``AREA_FAILED``): the probe area that failed as a whole
(probe_runner.failure_finding), its error in the summary.

A host running several services of one kind reports one finding per check (probe_common.combine): its
evidence is then ``{services: {<service>: {status, summary, evidence}}, others}``, each inner evidence
following the check's keys (``COMBINED``).

Pure Python (standard library only): modules, action plugins and unit tests import it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import re

# --- statuses ------------------------------------------------------------------------------------------

STATUSES = ('ok', 'warn', 'crit', 'unknown')
STATUS_RANK = {'ok': 0, 'unknown': 1, 'warn': 2, 'crit': 3}
STATUSES_WORST_FIRST = tuple(sorted(STATUSES, key=STATUS_RANK.get, reverse=True))  # crit, warn, unknown, ok
BAD = ('warn', 'crit')

# --- check names ---------------------------------------------------------------------------------------

CHECK_RE = re.compile(r'^[a-z][a-z0-9_]*\.[a-z][a-z0-9_.]*$')
TREND_PREFIX = 'trend.'
# The default trends of prom_trend.DEFAULT_TRENDS (a service's prometheus.trends may name others).
TRENDS = ('trend.memory', 'trend.latency', 'trend.connections')
# Checks that describe a change rather than a symptom: they never make the system unhealthy.
CHANGE_CHECKS = ('deploy.recent', 'host.changes')

# Evidence of a check that could not run (pg_probe / redis_probe not_checked, a connection error).
_ERROR = ('error',)
# Evidence of an `unknown` finding of any check whose probe area failed as a whole (probe_runner.failure_finding):
# the area that failed; the error is in the summary.
AREA_FAILED = ('area',)
_COMBINED_SERVICE = ('status', 'summary', 'evidence')
# The evidence of a combined finding (several services of one kind on one host).
COMBINED = ('services', 'others') + tuple('services{}.%s' % k for k in _COMBINED_SERVICE)

EVIDENCE = {
    # area_health.endpoint_findings (controller side, one finding per host)
    'health.endpoint': ('endpoints', 'endpoints[].service', 'endpoints[].name', 'endpoints[].url', 'endpoints[].status',
                        'endpoints[].http_status', 'endpoints[].latency_ms', 'endpoints[].error',
                        'endpoints[].body'),  # body: the response, JSON or text, as the service sent it
    # health_probe.service_state: docker (probe_docker.safe_inspect_summary; container alone when inspect
    # failed), systemd (unit, properties of systemctl show) or a plain process (pattern, processes)
    'health.container': ('name', 'id', 'image', 'image_id', 'created', 'status', 'running', 'restarting', 'oom_killed',
                         'exit_code', 'error', 'started_at', 'finished_at', 'restart_count', 'health',
                         'health_failing_streak', 'labels', 'memory_limit', 'container', 'unit', 'properties',
                         'properties.ActiveState', 'properties.SubState', 'properties.NRestarts', 'properties.Result',
                         'properties.ExecMainStatus', 'pattern', 'processes'),
    # area_app_logs.analyze + evaluate (app_logs_probe: window alone when the logs could not be read)
    'app.errors': ('format', 'lines', 'json_lines', 'kv_lines', 'text_lines', 'requests', 'errors', 'other_errors',
                   'error_rate_pct', 'errors_by_status', 'p50_ms', 'p95_ms', 'by_path', 'by_path{}.requests',
                   'by_path{}.errors', 'by_path{}.error_rate_pct', 'by_path{}.statuses', 'by_path{}.p50_ms',
                   'by_path{}.p95_ms', 'by_path{}.top_error', 'by_path{}.trailing_ok', 'by_path{}.trailing_errors',
                   'by_path{}.recent_error_spacing', 'text_error_lines', 'window', 'source', 'failing_paths',
                   'recovered_paths'),
    # app_logs_probe.probe_process: processes are `docker top` rows (docker) or pgrep lines (process)
    'app.process': ('deploy', 'container', 'status', 'started_at', 'processes', 'runtime_version', 'runtime_error',
                    'unit', 'properties', 'pattern'),
    # area_postgres
    'pg.connectivity': _ERROR + ('latency_ms', 'version', 'uptime_s', 'in_recovery'),
    'pg.connections': _ERROR + ('max_connections', 'reserved_connections', 'holders', 'holders[].application_name',
                                'holders[].role', 'holders[].client_addr', 'holders[].state', 'holders[].count',
                                'holders[].oldest_s', 'holders[].past_threshold', 'holders[].pids',
                                'idle_in_transaction_threshold_s', 'total', 'used_pct', 'by_state',
                                'by_user_application', 'idle_in_transaction', 'idle_in_transaction[].pid',
                                'idle_in_transaction[].user', 'idle_in_transaction[].application',
                                'idle_in_transaction[].idle_s', 'idle_in_transaction[].xact_age_s',
                                'idle_in_transaction[].query'),
    'pg.long_queries': _ERROR + ('threshold_s', 'queries', 'queries[].pid', 'queries[].user', 'queries[].application',
                                 'queries[].state', 'queries[].duration_s', 'queries[].wait_event', 'queries[].query'),
    'pg.locks': _ERROR + ('blocked', 'blocked[].pid', 'blocked[].user', 'blocked[].application', 'blocked[].blocked_by',
                          'blocked[].wait_s', 'blocked[].lock', 'blocked[].query', 'blocking', 'blocking[].pid',
                          'blocking[].user', 'blocking[].application', 'blocking[].state', 'blocking[].xact_age_s',
                          'blocking[].query_age_s', 'blocking[].blocked_by', 'blocking[].root', 'blocking[].query',
                          'root_pids', 'chains', 'blocked_pids', 'blocking_pids'),
    'pg.disk': _ERROR + ('databases', 'data_directory', 'filesystem', 'filesystem.filesystem', 'filesystem.total',
                         'filesystem.used', 'filesystem.avail', 'filesystem.mount', 'filesystem.inodes_total',
                         'filesystem.inodes_used', 'filesystem.path', 'filesystem.read_in', 'filesystem_error'),
    # area_postgres.evaluate_log: the server's FATAL/ERROR/PANIC lines of the window grouped by kind (groups: kind ->
    # {count, status, first_ts, last_ts, sample, by_role, stopped_ago_s: set when the kind stopped and so rates ok};
    # by_role: "<role> from <client>" -> count; other: message -> count)
    'pg.log': _ERROR + ('groups', 'groups{}.count', 'groups{}.status', 'groups{}.first_ts', 'groups{}.last_ts',
                        'groups{}.sample', 'groups{}.by_role', 'groups{}.stopped_ago_s', 'other', 'lines', 'unparsed',
                        'source', 'window_s', 'auth_failed_roles'),
    # area_postgres.evaluate_replication/_vacuum/_temp/_statements: the database's own catalog views
    'pg.replication': _ERROR + ('slots', 'slots[].name', 'slots[].type', 'slots[].database', 'slots[].active',
                                'slots[].active_pid', 'slots[].wal_status', 'slots[].retained_bytes',
                                'slots[].past_threshold', 'slot_count', 'inactive_retaining', 'replicas',
                                'replicas[].application_name', 'replicas[].client_addr', 'replicas[].state',
                                'replicas[].sync_state', 'replicas[].replay_lag_s', 'replicas[].lag_bytes', 'archiver',
                                'archiver.archive_mode', 'archiver.archived_count', 'archiver.failed_count',
                                'archiver.last_failed_wal', 'archiver.last_failed_age_s', 'archiver.last_archived_age_s',
                                'archive_failing', 'thresholds', 'thresholds.slot_retained_warn_bytes',
                                'thresholds.slot_retained_crit_bytes', 'thresholds.replica_lag_warn_seconds',
                                'thresholds.replica_lag_crit_seconds'),
    'pg.vacuum': _ERROR + ('databases', 'databases[].database', 'databases[].xid_age', 'databases[].pct_of_wraparound',
                           'tables', 'tables[].table', 'tables[].dead_tuples', 'tables[].live_tuples',
                           'tables[].last_autovacuum_age_s', 'tables[].last_vacuum_age_s', 'autovacuum',
                           'autovacuum_freeze_max_age', 'xid_age_warn_pct', 'xid_age_crit_pct',
                           # what holds the xmin horizon back (kind session, prepared or slot)
                           'xmin_holders', 'xmin_holders[].kind', 'xmin_holders[].pid', 'xmin_holders[].user',
                           'xmin_holders[].application', 'xmin_holders[].state', 'xmin_holders[].superuser',
                           'xmin_holders[].xid_age', 'xmin_holders[].age_s', 'xmin_holders[].state_age_s',
                           'xmin_holders[].name', 'xmin_holders[].past_threshold', 'held_back', 'holding_pids',
                           'dead_tuples_warn', 'xmin_holder_warn_seconds'),
    'pg.temp': _ERROR + ('databases', 'databases[].database', 'databases[].temp_files', 'databases[].temp_bytes',
                         'databases[].stats_reset_age_s', 'databases[].work_mem', 'temp_files', 'temp_bytes',
                         'temp_bytes_warn', 'work_mem'),
    'pg.statements': _ERROR + ('installed', 'hint', 'version', 'schema', 'statements', 'statements[].queryid',
                               'statements[].calls', 'statements[].total_ms', 'statements[].mean_ms',
                               'statements[].rows', 'statements[].query',
                               # the statements that spill most to temporary files (pg.temp's culprits)
                               'top_temp', 'top_temp[].queryid', 'top_temp[].calls', 'top_temp[].temp_blks_written',
                               'top_temp[].temp_bytes', 'top_temp[].query'),
    # area_redis (+ area_redis.describe_prefixes on a redis.memory that is not ok)
    'redis.connectivity': _ERROR + ('ping_ms', 'version', 'role', 'uptime_s', 'max_clients_reached', 'refuses_writes'),
    'redis.memory': _ERROR + ('used_memory', 'used_memory_human', 'used_memory_peak', 'maxmemory', 'maxmemory_policy',
                              'mem_fragmentation_ratio', 'evicted_keys', 'oom_errors', 'used_memory_rss', 'used_pct',
                              'top_prefixes', 'top_prefixes[].prefix', 'top_prefixes[].sampled_keys',
                              'top_prefixes[].sampled_bytes', 'top_prefixes[].est_keys', 'top_prefixes[].est_bytes',
                              'top_prefixes[].marked', 'sampled_keys', 'total_keys', 'evictable_est_bytes',
                              'memory_warn_pct', 'evictable_patterns', 'top_prefixes_error'),
    # by_client: CLIENT LIST grouped (areas/redis.group_clients); holders: the host's own sockets when the server
    # refuses new connections (max_clients_reached; module_utils/host_sockets.holders_of_port)
    'redis.clients': _ERROR + ('connected_clients', 'blocked_clients', 'rejected_connections', 'maxclients',
                               'tracking_clients', 'by_client', 'by_client[].name', 'by_client[].host',
                               'by_client[].cmd', 'by_client[].kind', 'by_client[].count', 'by_client[].idle_min_s',
                               'by_client[].idle_max_s', 'by_client[].ids', 'max_clients_reached', 'holders_source',
                               'holders', 'holders[].process', 'holders[].pid', 'holders[].connections',
                               'holders[].peers', 'holders_port', 'holders_connections', 'remote_peers',
                               'holders_note'),
    'redis.slowlog': _ERROR + ('entries', 'entries[].id', 'entries[].start_time', 'entries[].duration_us',
                               'entries[].command', 'entries[].client', 'entries[].client_name', 'slowlog_len',
                               'recent_in_window'),
    'redis.keyspace': _ERROR + ('databases', 'keys', 'expires', 'keyspace_hits', 'keyspace_misses', 'hit_rate_pct',
                                'expired_keys'),
    # areas/redis.evaluate_persistence (INFO persistence; dir and dir_error: CONFIG GET dir when it failed)
    'redis.persistence': _ERROR + ('rdb_last_bgsave_status', 'rdb_last_save_time', 'rdb_last_save_age_s',
                                   'rdb_changes_since_last_save', 'rdb_bgsave_in_progress', 'aof_enabled',
                                   'aof_last_write_status', 'aof_last_bgrewrite_status', 'loading', 'misconf_errors',
                                   'dir', 'dir_error'),
    # areas/redis.evaluate_replication (INFO replication)
    'redis.replication': _ERROR + ('role', 'connected_replicas', 'replicas', 'replicas[].address', 'replicas[].state',
                                   'replicas[].offset', 'replicas[].lag_s', 'master_host', 'master_port',
                                   'master_link_status', 'master_last_io_seconds_ago', 'master_sync_in_progress',
                                   'master_link_down_since_seconds', 'master_repl_offset'),
    # areas/redis.evaluate_latency (LATENCY LATEST, LATENCY HISTORY of the events inside the window; hint: how to turn
    # the monitor on when it is off)
    'redis.latency': _ERROR + ('monitor_threshold_ms', 'events', 'events[].event', 'events[].latest_ts',
                               'events[].latest_ms', 'events[].max_ms', 'events[].age_s', 'events[].within_window',
                               'events[].window_max_ms', 'events[].window_spikes', 'events[].isolated', 'events[].status', 'events_in_window',
                               'window_s', 'warn_ms', 'crit_ms', 'hint'),
    # areas/redis.evaluate_log: the warning lines (#) of the server's log file of the window grouped by message
    # (groups[].rated_status and stopped_ago_s: a kind that stopped or recovered, so rated ok; note: why the log was
    # not read here, or where it was read)
    'redis.log': _ERROR + ('source', 'logfile', 'window_s', 'note', 'groups', 'groups[].message', 'groups[].kind',
                           'groups[].status', 'groups[].rated_status', 'groups[].count', 'groups[].first_ts',
                           'groups[].last_ts', 'groups[].sample', 'groups[].recovered', 'groups[].stopped_ago_s',
                           'lines', 'warnings', 'unparsed', 'truncated'),
    # net_probe.controller_checks (net_probe.grouped: every item with its status and summary)
    'net.dns': ('items', 'items[].name', 'items[].resolver', 'items[].port', 'items[].rdtype', 'items[].answers',
                'items[].latency_ms', 'items[].error', 'items[].ttl', 'items[].status', 'items[].summary'),
    'net.tls_expiry': ('items', 'items[].endpoint', 'items[].name', 'items[].error', 'items[].subject', 'items[].issuer',
                       'items[].common_name', 'items[].san', 'items[].serial', 'items[].not_before',
                       'items[].not_after', 'items[].self_signed', 'items[].days_left', 'items[].verify_error',
                       'items[].protocol', 'items[].server_name', 'items[].chain', 'items[].status', 'items[].summary',
                       # network.find_renewal: a renewed pair in the endpoint's renewal_dir
                       'items[].renewal', 'items[].renewal.cert', 'items[].renewal.key', 'items[].renewal.not_after',
                       'items[].renewal.days_left', 'items[].renewal.usable', 'items[].renewal.problem'),
    'dependency.reachability': ('items', 'items[].name', 'items[].url', 'items[].critical', 'items[].used_by',
                                'items[].http_status', 'items[].latency_ms', 'items[].error', 'items[].status',
                                'items[].summary'),
    # area_network.evaluate_disk (errors: path -> error)
    'host.disk': ('filesystems', 'filesystems[].path', 'filesystems[].total', 'filesystems[].used', 'filesystems[].avail',
                  'filesystems[].used_pct', 'filesystems[].inodes_total', 'filesystems[].inodes_free',
                  'filesystems[].inodes_used_pct', 'errors', 'warn_pct', 'crit_pct'),
    # area_network.evaluate_container_resources (docker) / evaluate_unit_resources (systemd)
    'container.resources': ('container', 'cpu_pct', 'online_cpus', 'cpu_pct_of_capacity', 'memory_used', 'memory_limit',
                            'memory_pct', 'network', 'network.rx_bytes', 'network.tx_bytes', 'pids', 'unit',
                            'memory_source', 'main_pid', 'active_state', 'source',  # source: cgroup or engine stats
                            'exceeded'),  # the measures past their threshold: memory, cpu
    # area_host.evaluate_oom: kernel OOM kills (kernel log of the window, the services' cgroup counters)
    'host.oom': ('kills', 'kills[].ts', 'kills[].pid', 'kills[].process', 'kills[].cgroup', 'kills[].constraint',
                 'kills[].anon_rss_kb', 'kills[].service', 'kills[].before_start', 'kills_in_window', 'cgroups', 'cgroups[].service',
                 'cgroups[].container', 'cgroups[].container_id', 'cgroups[].unit', 'cgroups[].path',
                 'cgroups[].oom_kill', 'cgroups[].oom', 'cgroups[].started_at', 'cgroups[].error',
                 'sources',  # source (journalctl -k, dmesg) -> 'read' or why it could not be read
                 'implicated', 'window_s'),
    # area_host.evaluate_units (error: systemctl could not run)
    'host.units': _ERROR + ('failed', 'failed[].unit', 'failed[].load', 'failed[].active', 'failed[].sub',
                            'failed[].description', 'units', 'units[].service', 'units[].unit',
                            'units[].ActiveState', 'units[].SubState', 'units[].Result',
                            'units[].NRestarts', 'units[].started_in_window', 'units[].error',
                            'units[].exits_in_window', 'units[].last_exit', 'units[].last_exit.ts', 'units[].last_exit.code',
                            'units[].last_exit.status',
                            'implicated', 'restarts_warn', 'note'),
    # area_host.evaluate_fds: open descriptors and TCP connections by process
    'host.fds': ('top_fds', 'top_fds[].pid', 'top_fds[].process', 'top_fds[].service', 'top_fds[].fds',
                 'top_fds[].fd_limit', 'top_fds[].fd_pct', 'top_fds[].tcp', 'top_fds[].tcp_total',
                 'top_tcp', 'top_tcp[].pid', 'top_tcp[].process', 'top_tcp[].service', 'top_tcp[].fds',
                 'top_tcp[].fd_limit', 'top_tcp[].fd_pct', 'top_tcp[].tcp', 'top_tcp[].tcp_total',
                 'service_processes', 'service_processes[].pid', 'service_processes[].process',
                 'service_processes[].service', 'service_processes[].fds', 'service_processes[].fd_limit',
                 'service_processes[].fd_pct', 'service_processes[].tcp', 'service_processes[].tcp_total',
                 'tcp_states', 'processes', 'unreadable', 'truncated', 'warn_pct', 'crit_pct'),
    # roles/health/vars/main.yml: a managed host Ansible cannot reach
    'host.reachability': ('connection', 'error'),
    # area_changes.deploy_item (docker) / release_item (a release symlink); errors: container or link -> error
    'deploy.recent': ('window', 'deploy_in_window', 'errors', 'deploys', 'deploys[].service', 'deploys[].container',
                      'deploys[].image', 'deploys[].image_id', 'deploys[].digest', 'deploys[].image_version',
                      'deploys[].image_created', 'deploys[].container_created', 'deploys[].started_at',
                      'deploys[].created_age_s', 'deploys[].started_age_s', 'deploys[].deployed_in_window',
                      'deploys[].restarted_in_window', 'deploys[].previous_image', 'deploys[].previous_image_source',
                      'deploys[].local_tags', 'deploys[].rollback', 'deploys[].release_link', 'deploys[].target',
                      'deploys[].changed_at', 'deploys[].previous_release', 'deploys[].releases'),
    # area_changes.evaluate_host_changes
    'host.changes': ('window', 'packages', 'packages[].ts', 'packages[].action', 'packages[].package', 'packages[].from',
                     'packages[].to', 'files', 'files[].path', 'files[].mtime', 'watched_paths'),
}
# Every finding of the postgres and redis areas says how it read the server: client `library` (psycopg2,
# redis-py) or `cli` (psql, redis-cli); `none` on the one finding of an area that has neither, whose `install`
# names the packages of both ways (areas/postgres.no_client, areas/redis.no_client).
for _check in [c for c in EVIDENCE if c.startswith(('pg.', 'redis.'))]:
    EVIDENCE[_check] += ('client',)
EVIDENCE['pg.connectivity'] += ('install',)
EVIDENCE['redis.connectivity'] += ('install',)
# prom_trend.probe_service: every trend.<name>
TREND_EVIDENCE = ('prometheus', 'query', 'window_minutes', 'max_points', 'kind', 'step', 'samples', 'first', 'last',
                  'growth_pct', 'minutes')

# Every check name of the contract (trend.<name> beyond the defaults is a family: see is_known_check).
CHECKS = tuple(EVIDENCE) + TRENDS


def is_known_check(check):
    """A check of the contract: one of CHECKS or trend.<name>."""
    check = str(check or '')
    return check in EVIDENCE or (check.startswith(TREND_PREFIX) and bool(CHECK_RE.match(check)))


def evidence_keys(check):
    """The declared evidence paths of a check (tuple), None for a check outside the contract."""
    if check in EVIDENCE:
        return EVIDENCE[check]
    if is_known_check(check):
        return TREND_EVIDENCE
    return None


def _parts(path):
    return [p.replace('[]', '').replace('{}', '') for p in path.split('.')]


def evidence_names(check):
    """Every key name the evidence of a check may hold at any depth (combined findings included); None outside
    the contract. The diagnosis matches evidence by key name, so this is what it may read."""
    paths = evidence_keys(check)
    if paths is None:
        return None
    return frozenset(name for path in paths + COMBINED + AREA_FAILED for name in _parts(path))


# --- statuses: order, worst, counts --------------------------------------------------------------------

def rank(status):
    """0 (ok) .. 3 (crit); a status outside the contract ranks as ok."""
    return STATUS_RANK.get(status, 0)


def worst(statuses):
    """The most severe status of an iterable (ok when empty; statuses outside the contract are ignored)."""
    result = 'ok'
    for status in statuses:
        if rank(status) > STATUS_RANK[result]:
            result = status
    return result


def worst_first(finding):
    """Sort key of findings, worst first, then by host and check; a status outside the contract sorts last."""
    return (-STATUS_RANK.get(finding.get('status'), -1), str(finding.get('host') or ''), str(finding.get('check') or ''))


def finding_line(finding, summary=None, width=0):
    """The one printed form of a finding: 'CRIT host/check: summary' (the status padded to `width`)."""
    summary = finding.get('summary') if summary is None else summary
    return '%-*s %s/%s: %s' % (width, str(finding.get('status')).upper(), finding.get('host'), finding.get('check'), summary)


def finding_lines(findings, statuses=('crit', 'warn', 'unknown'), limit=8):
    """finding_line() of the findings with one of `statuses`, worst first, at most `limit`."""
    chosen = sorted((f for f in (findings or []) if isinstance(f, dict) and f.get('status') in statuses), key=worst_first)
    return [finding_line(f) for f in chosen[:int(limit)]]


def is_bad(finding):
    return finding.get('status') in BAD


def counts(findings):
    """How many findings have each status: {ok, warn, crit, unknown} (and any other status met)."""
    result = dict((status, 0) for status in STATUSES)
    for item in findings:
        status = item.get('status', 'unknown')
        result[status] = result.get(status, 0) + 1
    return result


# --- building and validating findings ------------------------------------------------------------------

_RECORDERS = []


def make_finding(check, host, service, status, summary, evidence=None):
    """A finding as the contract wants it (check, host, service, status, summary, evidence)."""
    if status not in STATUS_RANK:
        raise ValueError('status %r is not one of ok, warn, crit, unknown' % (status,))
    out = {
        'check': check,
        'host': host,
        'service': service,
        'status': status,
        'summary': ' '.join(str(summary).split()),
        'evidence': evidence if evidence is not None else {},
    }
    for box in _RECORDERS:
        box.append(out)
    return out


@contextlib.contextmanager
def recording():
    """Collect every finding make_finding builds inside the block (the unit tests validate them afterwards)."""
    box = []
    _RECORDERS.append(box)
    try:
        yield box
    finally:
        _RECORDERS.remove(box)


def _tree(paths):
    """{name: (kind, subtree)} of declared paths; kind: '' (mapping or value), '[]' (records), '{}' (named records)."""
    tree = {}
    for path in paths:
        node = tree
        for part in path.split('.'):
            kind = '[]' if part.endswith('[]') else ('{}' if part.endswith('{}') else '')
            name = part[:-2] if kind else part
            entry = node.setdefault(name, [kind, {}])
            if kind:
                entry[0] = kind
            node = entry[1]
    return tree


def _check_value(tree, value, where, problems):
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        if key not in tree:
            problems.append('%s%s is not a declared evidence key' % (where, key))
            continue
        kind, sub = tree[key]
        if not sub:
            continue  # data whose keys are not the probe's
        if kind == '[]' and isinstance(item, list):
            for record in item:
                _check_value(sub, record, '%s%s[].' % (where, key), problems)
        elif kind == '{}' and isinstance(item, dict):
            for record in item.values():
                _check_value(sub, record, '%s%s{}.' % (where, key), problems)
        elif kind == '':
            _check_value(sub, item, '%s%s.' % (where, key), problems)


def _field_problems(finding):
    problems = ['missing %s' % field for field in ('check', 'host', 'status', 'summary') if not finding.get(field)]
    if finding.get('status') not in STATUSES:
        problems.append('status %r is not one of %s' % (finding.get('status'), ', '.join(STATUSES)))
    return problems


def _combined_problems(check, evidence, tree):
    """Combined evidence (several services of one kind): {services: {name: {status, summary, evidence}}, others}."""
    problems = ['%s: combined evidence has %r besides services and others' % (check, key)
                for key in evidence if key not in ('services', 'others')]
    for name, item in evidence['services'].items():
        if not isinstance(item, dict):
            problems.append('%s: services.%s is not a mapping' % (check, name))
            continue
        problems.extend('%s: services.%s.%s is not one of %s' % (check, name, key, ', '.join(_COMBINED_SERVICE))
                        for key in item if key not in _COMBINED_SERVICE)
        inner = []
        _check_value(tree, item.get('evidence') or {}, '', inner)
        problems.extend('%s: services.%s.evidence.%s' % (check, name, p) for p in inner)
    return problems


def _evidence_problems(finding, paths):
    check, evidence = finding.get('check'), finding.get('evidence')
    if evidence is None:
        return []
    if not isinstance(evidence, dict):
        return ['evidence must be a mapping, got %s' % type(evidence).__name__]
    if finding.get('status') == 'unknown':
        paths = paths + AREA_FAILED
    if isinstance(evidence.get('services'), dict):
        return _combined_problems(check, evidence, _tree(paths))
    inner = []
    _check_value(_tree(paths), evidence, '', inner)
    return ['%s: evidence.%s' % (check, p) for p in inner]


def validate(finding):
    """The ways a finding breaks the contract (empty when it conforms): fields, check name, status, evidence keys."""
    if not isinstance(finding, dict):
        return ['a finding must be a mapping, got %s' % type(finding).__name__]
    problems = _field_problems(finding)
    paths = evidence_keys(finding.get('check'))
    if paths is None:
        return problems + ['check %r is not in the contract' % (finding.get('check'),)]
    return problems + _evidence_problems(finding, paths)


# --- reading evidence (diagnosis, classification) ------------------------------------------------------

class ContractError(ValueError):
    """Code read an evidence key the contract does not declare for the check (raised only with STRICT on)."""


# Off in production (an undeclared key simply is not there); the unit tests turn it on (tests/unit/conftest.py).
STRICT = False


def require(check, names):
    """With STRICT on, raise ContractError unless every key name is declared for the check (any depth).

    Checks outside the contract (a user's own findings) are not checked."""
    if not STRICT:
        return
    declared = evidence_names(check)
    if declared is None:
        return
    missing = sorted(set([names] if isinstance(names, str) else names) - declared)
    if missing:
        raise ContractError('%s produces no evidence key %s (plugins/module_utils/findings.py EVIDENCE)'
                            % (check, ', '.join(missing)))


class _Strict(dict):
    """A read-only view of evidence that refuses reads of undeclared keys (STRICT mode only)."""

    def __init__(self, data, check):
        super(_Strict, self).__init__(data)
        self._check = check

    def _wrap(self, value):
        if isinstance(value, dict) and not isinstance(value, _Strict):
            return _Strict(value, self._check)
        if isinstance(value, list):
            return [self._wrap(item) for item in value]
        return value

    def __getitem__(self, key):
        require(self._check, key)
        return self._wrap(super(_Strict, self).__getitem__(key))

    def get(self, key, default=None):
        require(self._check, key)
        return self._wrap(super(_Strict, self).get(key, default))

    def items(self):
        return [(k, self._wrap(v)) for k, v in super(_Strict, self).items()]

    def values(self):
        return [self._wrap(v) for v in super(_Strict, self).values()]


def evidence(finding):
    """The evidence mapping of a finding ({} when it has none).

    With STRICT on, and for a check of the contract, a view whose get() and [] raise ContractError on a key
    the check does not produce (nested mappings and records too)."""
    value = finding.get('evidence') if isinstance(finding, dict) else None
    value = value if isinstance(value, dict) else {}
    if STRICT and evidence_names(finding.get('check')) is not None:
        return _Strict(value, finding.get('check'))
    return value
