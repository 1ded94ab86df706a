# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The redis area: redis diagnostics: commands run over one connection and their evaluation into findings.

Everything about the area is here: its argument spec (SPEC), run(module) and the pure
evaluate_*() functions that turn what it read into findings (unit-tested without a host).
The module sre.incident_response.redis_probe runs this one area; the module probe runs every area of a host
concurrently. run() takes an AnsibleModule or the probe's per-area view of one (params, run_command,
get_bin_path, fail_json) and returns the module result.

The connection is redis-py's or, on a host without redis-py, redis_cli's (the same commands through
redis-cli): option client (auto, library, cli), chosen in redis_common.choose_client. Every finding says which
in evidence.client (library or cli); a host with neither gets one finding for the area (redis.connectivity
unknown, evidence.client none) naming both fixes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import time

from ansible_collections.sre.incident_response.plugins.module_utils import host_sockets, probe_common, redis_common, timefmt
from ansible_collections.sre.incident_response.plugins.module_utils.findings import STATUS_RANK, make_finding as finding, worst
from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import (
    fmt_pct, human_bytes, level, one_line, pct, thresholds_of, window_seconds)
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor


def collect(client, slowlog_count=10):
    """PING, INFO everything, SLOWLOG GET and LEN, CLIENT ID and LIST, then LATENCY LATEST and CONFIG GET of the
    latency monitor and the log file in one pipeline; per-command errors kept."""
    data = {'errors': {}, 'executed_commands': []}

    def run(key, func, *args):
        data['executed_commands'].append(' '.join([key] + [str(a) for a in args if isinstance(a, (str, int))]))
        try:
            return func(*args)
        except Exception as exc:  # pylint: disable=broad-except
            data['errors'][key] = '%s: %s' % (type(exc).__name__, one_line(str(exc), 200))
            return None

    started = time.monotonic()
    data['ping'] = run('PING', client.ping)
    data['ping_ms'] = round((time.monotonic() - started) * 1000, 1)
    data['info'] = run('INFO', client.info, 'everything') or {}
    data['slowlog'] = run('SLOWLOG GET', client.slowlog_get, slowlog_count) or []
    data['slowlog_len'] = run('SLOWLOG LEN', client.slowlog_len)
    listed = run('CLIENT LIST', list_clients, client)
    if listed:
        data['own_client_id'], data['clients'] = listed
    data['executed_commands'] += ['LATENCY LATEST', 'CONFIG GET %s' % ' '.join(SERVER_CONFIG)]
    try:  # one round trip (a pipeline): redis.latency and redis.log
        data['server'], errors = read_server_state(client)
        data['errors'].update(errors)
    except Exception as exc:  # pylint: disable=broad-except
        data['server'] = {'latency': None, 'config': {}}
        error = '%s: %s' % (getattr(exc, 'error_name', None) or type(exc).__name__, one_line(str(exc), 200))
        data['errors'].update(('CONFIG GET %s' % name, error) for name in SERVER_CONFIG)
        data['errors']['LATENCY LATEST'] = error
    return data


def list_clients(client):
    """(the probe's own client id, CLIENT LIST rows as dicts of str): both paths read them over one connection."""
    if hasattr(client, 'client_list_with_id'):
        return client.client_list_with_id()
    return client.client_id(), client.client_list()


MAX_CLIENT_GROUPS = 10
MAX_GROUP_IDS = 100
# CLIENT LIST flags of connections that are not an application's: never grouped with them, never killed
_SPECIAL_FLAGS = (('S', 'replica'), ('M', 'master'), ('O', 'monitor'), ('P', 'pubsub'))


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def client_kind(row):
    flags = str(row.get('flags') or '')
    for flag, kind in _SPECIAL_FLAGS:
        if flag in flags:
            return kind
    return 'normal'


def _text(value, limit=64):
    value = value.decode('utf-8', 'replace') if isinstance(value, bytes) else str(value or '')
    return one_line(value, limit)


def group_clients(rows, own_id=None, limit=MAX_CLIENT_GROUPS):
    """CLIENT LIST grouped by client name, address (host part) and last command, the probe's own connection left
    out: [{name, host, cmd, kind, count, idle_min_s, idle_max_s, ids}], most connections first."""
    groups = {}
    own = str(own_id) if own_id is not None else None
    for row in rows or []:
        if not isinstance(row, dict):
            continue
        if own is not None and _text(row.get('id')) == own:
            continue
        addr = _text(row.get('addr'), 80)
        key = (_text(row.get('name')) or None, addr.rsplit(':', 1)[0] if ':' in addr else addr or None,
               _text(row.get('cmd')) or None, client_kind(row))
        group = groups.setdefault(key, {'name': key[0], 'host': key[1], 'cmd': key[2], 'kind': key[3], 'count': 0,
                                        'idle_min_s': None, 'idle_max_s': None, 'ids': []})
        group['count'] += 1
        idle = _int(row.get('idle'))
        if idle is not None:
            group['idle_min_s'] = idle if group['idle_min_s'] is None else min(group['idle_min_s'], idle)
            group['idle_max_s'] = idle if group['idle_max_s'] is None else max(group['idle_max_s'], idle)
        if len(group['ids']) < MAX_GROUP_IDS and _int(row.get('id')) is not None:
            group['ids'].append(_int(row.get('id')))
    out = sorted(groups.values(), key=lambda g: (-g['count'], -(g['idle_max_s'] or 0), str(g['name']), str(g['host'])))
    return out[:limit]


def describe_group(group):
    return '%s from %s x%d (idle %s-%s s, last %s)' % (
        group.get('name') or '(no name)', group.get('host') or '?', group.get('count') or 0,
        group.get('idle_min_s') if group.get('idle_min_s') is not None else '?',
        group.get('idle_max_s') if group.get('idle_max_s') is not None else '?', group.get('cmd') or '?')


MAX_CLIENTS_TEXT = 'max number of clients reached'


def refuses_writes(error):
    """A server that answers with MISCONF: its last background save failed and stop-writes-on-bgsave-error refuses
    writes, and PING too; INFO still answers, so the area goes on."""
    return 'MISCONF' in str(error or '')


def max_clients_reached(error):
    return MAX_CLIENTS_TEXT in str(error or '').lower()


def _prefix(key):
    """The key's namespace: everything before its last ':' segment ('report:snapshot:17' -> 'report:snapshot:*')."""
    key = key.decode('utf-8', 'replace') if isinstance(key, bytes) else str(key)
    return (key.rsplit(':', 1)[0] + ':*') if ':' in key else '(no prefix)'


def sample_prefixes(client, max_keys=1000, batch=250):
    """A bounded SCAN + MEMORY USAGE sample: {key_prefix: [keys, bytes]} and how many keys were sampled."""
    sizes, sampled, cursor, keys = {}, 0, 0, []
    while sampled < max_keys:
        cursor, chunk = client.scan(cursor=cursor, count=batch)
        keys = list(chunk)[:max_keys - sampled]
        if keys:
            pipe = client.pipeline(transaction=False)
            for k in keys:
                pipe.memory_usage(k, samples=0)
            for k, size in zip(keys, pipe.execute()):
                row = sizes.setdefault(_prefix(k), [0, 0])
                row[0] += 1
                row[1] += int(size or 0)
            sampled += len(keys)
        if int(cursor) == 0:
            break
    return sizes, sampled


def top_prefixes(sizes, sampled, total_keys, evictable=None, protected=None, limit=8):
    """(top prefixes by memory, estimated for the whole keyspace and marked by the patterns; evictable bytes of all)."""
    from ansible_collections.sre.incident_response.plugins.module_utils.remediation import redis_glob_to_regex
    evict = [redis_glob_to_regex(x) for x in evictable or []]
    prot = [redis_glob_to_regex(x) for x in protected or []]
    scale = (float(total_keys) / sampled) if sampled and total_keys and total_keys > sampled else 1.0
    rows = []
    for prefix, (count, size) in sizes.items():
        probe = prefix[:-1] + 'x' if prefix.endswith('*') else prefix
        marked = 'protected' if any(r.match(probe) for r in prot) else (
            'evictable' if any(r.match(probe) for r in evict) else 'unmarked')
        rows.append({'prefix': prefix, 'sampled_keys': count, 'sampled_bytes': size,
                     'est_keys': int(count * scale), 'est_bytes': int(size * scale), 'marked': marked})
    rows.sort(key=lambda r: (-r['est_bytes'], r['prefix']))
    return rows[:limit], sum(r['est_bytes'] for r in rows if r['marked'] == 'evictable')


def evaluate_connectivity(host, service, data, error=None):
    if error and max_clients_reached(error):
        return finding('redis.connectivity', host, service, 'crit', 'refuses new connections: max number of clients '
                       'reached (Redis is up, every client slot is taken: see redis.clients)',
                       {'error': error, 'max_clients_reached': True})
    if error:
        return finding('redis.connectivity', host, service, 'crit', 'cannot connect: %s' % error, {'error': error})
    info = data.get('info') or {}
    if not data.get('ping'):
        err = data['errors'].get('PING', 'no PONG')
        if refuses_writes(err):
            return finding('redis.connectivity', host, service, 'crit', 'answers but refuses writes and PING (MISCONF: '
                           'the last background save failed, see redis.persistence): %s' % err,
                           {'error': err, 'refuses_writes': True, 'version': info.get('redis_version'),
                            'role': info.get('role'), 'uptime_s': info.get('uptime_in_seconds')})
        return finding('redis.connectivity', host, service, 'crit', 'PING failed: %s' % err, {'error': err})
    return finding('redis.connectivity', host, service, 'ok', 'PONG in %d ms (Redis %s, %s, up %s)' % (
        data['ping_ms'], info.get('redis_version', '?'), info.get('role', '?'), timefmt.duration(info.get('uptime_in_seconds'))),
        {'ping_ms': data['ping_ms'], 'version': info.get('redis_version'), 'role': info.get('role'),
         'uptime_s': info.get('uptime_in_seconds')})


def evaluate_memory(host, service, info, t):
    used = info.get('used_memory')
    maxmem = info.get('maxmemory') or 0
    policy = info.get('maxmemory_policy')
    frag = info.get('mem_fragmentation_ratio')
    evicted = info.get('evicted_keys', 0)
    rejected_oom = (info.get('errorstat_OOM') or {}).get('count') if isinstance(info.get('errorstat_OOM'), dict) else None
    evidence = {'used_memory': used, 'used_memory_human': info.get('used_memory_human'), 'used_memory_peak': info.get('used_memory_peak'),
                'maxmemory': maxmem, 'maxmemory_policy': policy, 'mem_fragmentation_ratio': frag,
                'evicted_keys': evicted, 'oom_errors': rejected_oom, 'used_memory_rss': info.get('used_memory_rss')}
    if used is None:
        return finding('redis.memory', host, service, 'unknown', 'INFO memory unavailable', evidence)
    statuses = []
    if maxmem:
        used_pct = pct(used, maxmem)
        evidence['used_pct'] = used_pct
        statuses.append(level(used_pct, t['memory_warn_pct'], t['memory_crit_pct']))
        text = '%s of maxmemory %s used (%s), policy %s' % (human_bytes(used), human_bytes(maxmem), fmt_pct(used_pct), policy)
        if statuses[-1] != 'ok' and policy == 'noeviction':
            text += ': writes fail with OOM when full'
    else:
        text = '%s used, no maxmemory (policy %s)' % (human_bytes(used), policy)
        statuses.append('ok')
    if frag is not None and used >= t['fragmentation_min_bytes']:
        statuses.append(level(frag, t['fragmentation_warn'], None))
    if evicted:
        statuses.append('warn' if evicted >= t['evicted_keys_warn'] else 'ok')
    text += ', fragmentation %.2f, %d keys evicted' % (frag or 0, evicted or 0)
    if rejected_oom:  # cumulative since the server started: context, not a rating
        text += ', %d OOM errors since start' % rejected_oom
    status = worst(statuses)
    return finding('redis.memory', host, service, status, text, evidence)


def evaluate_clients(host, service, info, t, groups=None):
    connected = info.get('connected_clients')
    blocked = info.get('blocked_clients', 0)
    rejected = info.get('rejected_connections', 0)
    maxclients = info.get('maxclients')
    evidence = {'connected_clients': connected, 'blocked_clients': blocked, 'rejected_connections': rejected,
                'maxclients': maxclients, 'tracking_clients': info.get('tracking_clients')}
    if connected is None:
        return finding('redis.clients', host, service, 'unknown', 'INFO clients unavailable', evidence)
    used_pct = pct(connected, maxclients)
    statuses = [level(used_pct, t['clients_warn_pct'], t['clients_crit_pct'])]
    statuses.append('warn' if blocked and blocked >= t['blocked_clients_warn'] else 'ok')
    statuses.append('warn' if rejected and rejected >= t['rejected_connections_warn'] else 'ok')
    status = worst(statuses)
    text = '%d clients connected (%s of maxclients %s), %d blocked, %d rejected since start' % (
        connected, fmt_pct(used_pct), maxclients, blocked or 0, rejected or 0)
    if groups is not None:
        evidence['by_client'] = groups
        if groups:
            text += '; most: %s' % '; '.join(describe_group(g) for g in groups[:2])
    return finding('redis.clients', host, service, status, text, evidence)


def evaluate_clients_refused(host, service, error, holders):
    """redis.clients when the server refuses new connections (max number of clients reached): crit, with the
    holders read from this host's own sockets (host_sockets.holders_of_port) instead of CLIENT LIST."""
    evidence = {'error': error, 'max_clients_reached': True, 'holders_source': 'host sockets',
                'holders': holders.get('holders') or [], 'holders_port': holders.get('port'),
                'holders_connections': holders.get('connections'), 'remote_peers': holders.get('remote_peers') or {}}
    if holders.get('note'):
        evidence['holders_note'] = holders['note']
    named = [h for h in evidence['holders'] if h.get('process')]
    if named:
        who = ', '.join('%s (pid %s) x%d' % (h['process'], h['pid'], h['connections']) for h in named[:3])
        text = 'client slots exhausted (max number of clients reached): %d connections to port %s, held by %s' % (
            holders.get('connections') or 0, holders.get('port'), who)
    else:
        text = 'client slots exhausted (max number of clients reached): %d connections to port %s; holders not ' \
               'visible from this host%s' % (holders.get('connections') or 0, holders.get('port'),
                                             (' (%s)' % holders['note']) if holders.get('note') else '')
    return finding('redis.clients', host, service, 'crit', text, evidence)


# Introspection and administration commands: a monitoring agent's own scrape (the Redis exporter's
# `INFO everything`, `SLOWLOG GET`, `CONFIG GET`, `CLIENT LIST`, ...) can take tens of milliseconds on a busy
# machine. They are not what the application waits for, so they stay in the evidence but never rate the check.
ADMIN_COMMANDS = frozenset(('INFO', 'SLOWLOG', 'CONFIG', 'CLIENT', 'LATENCY', 'MEMORY', 'COMMAND', 'PING', 'DBSIZE',
                            'ACL', 'ROLE', 'CLUSTER', 'MODULE', 'HELLO', 'AUTH', 'SELECT', 'LASTSAVE', 'TIME'))


# One slow command alone in the window, under this, is noise (a GC pause, a busy machine): it stays in the
# evidence and the summary says so, but it does not rate the check; two, or one of a second or more, do.
ISOLATED_SLOW_MS = 1000
# Client names of monitoring agents: their entries are noise whatever the command.
MONITORING_CLIENTS = ('exporter', 'monitor', 'prometheus', 'datadog', 'telegraf', 'zabbix', 'nagios', 'sentinel')


def is_monitoring_client(client_name):
    name = str(client_name or '').lower()
    return bool(name) and any(word in name for word in MONITORING_CLIENTS)


def is_admin_command(command):
    """True for a slowlog entry of an introspection or administration command (see ADMIN_COMMANDS)."""
    name = str(command or '').strip().split(' ', 1)[0].strip('"').upper()
    return name in ADMIN_COMMANDS


def evaluate_slowlog(host, service, entries, total, t):
    items = []
    for e in entries or []:
        cmd = e.get('command')
        if isinstance(cmd, bytes):
            cmd = cmd.decode('utf-8', 'replace')
        items.append({'id': e.get('id'), 'start_time': e.get('start_time'), 'duration_us': e.get('duration'),
                      'command': one_line(cmd, 200), 'client': e.get('client_address'), 'client_name': e.get('client_name')})
    now = time.time()
    recent = [i for i in items if i['start_time'] and now - i['start_time'] <= t['window_seconds']]
    admin = [i for i in recent if is_admin_command(i['command']) or is_monitoring_client(i.get('client_name'))]
    slow = [i for i in recent if (i['duration_us'] or 0) >= t['slowlog_warn_ms'] * 1000 and i not in admin]
    evidence = {'entries': items, 'slowlog_len': total, 'recent_in_window': len(recent)}
    if len(slow) == 1 and (slow[0]['duration_us'] or 0) < ISOLATED_SLOW_MS * 1000:
        return finding('redis.slowlog', host, service, 'ok', '%d slowlog entries, %d in the window: one isolated slow '
                       'command (%d ms: %s), under %d ms, not rated%s' % (
                           total or 0, len(recent), (slow[0]['duration_us'] or 0) // 1000, one_line(slow[0]['command'], 60),
                           ISOLATED_SLOW_MS, (', %d monitoring/admin commands' % len(admin)) if admin else ''), evidence)
    if not slow:
        noise = ' (%d of them monitoring/admin commands, not rated)' % len(admin) if admin else ''
        return finding('redis.slowlog', host, service, 'ok', '%d slowlog entries, %d in the window%s, none over %d ms' % (
            total or 0, len(recent), noise, t['slowlog_warn_ms']), evidence)
    top = max(slow, key=lambda i: i['duration_us'] or 0)
    status = 'warn' if len(slow) < t['slowlog_crit_count'] else 'crit'
    return finding('redis.slowlog', host, service, status, '%d command%s slower than %d ms in the window; slowest %d ms: %s' % (
        len(slow), '' if len(slow) == 1 else 's', t['slowlog_warn_ms'], (top['duration_us'] or 0) // 1000,
        one_line(top['command'], 80)), evidence)


def evaluate_keyspace(host, service, info):
    dbs = {k: v for k, v in info.items() if k.startswith('db') and k[2:].isdigit() and isinstance(v, dict)}
    total = sum(v.get('keys', 0) for v in dbs.values())
    expires = sum(v.get('expires', 0) for v in dbs.values())
    hits, misses = info.get('keyspace_hits', 0), info.get('keyspace_misses', 0)
    hit_pct = pct(hits, (hits or 0) + (misses or 0))
    evidence = {'databases': dbs, 'keys': total, 'expires': expires, 'keyspace_hits': hits, 'keyspace_misses': misses,
                'hit_rate_pct': hit_pct, 'expired_keys': info.get('expired_keys')}
    parts = ', '.join('%s %d keys (%d with TTL)' % (k, v.get('keys', 0), v.get('expires', 0)) for k, v in sorted(dbs.items()))
    return finding('redis.keyspace', host, service, 'ok', '%d keys%s; hit rate %s' % (
        total, ': ' + parts if parts else '', fmt_pct(hit_pct) if hit_pct is not None else 'n/a'), evidence)


def _age(now, stamp):
    try:
        stamp = int(stamp)
    except (TypeError, ValueError):
        return None
    return max(0, int(now - stamp)) if stamp > 0 else None


def evaluate_persistence(host, service, info, now=None):
    """redis.persistence from INFO persistence: a failed background save or AOF write is crit (with
    stop-writes-on-bgsave-error on, the default, Redis then refuses every write with MISCONF while save points are
    configured; and a restart would lose every write since the last good save); a failed AOF rewrite or a dataset
    still loading warns. The age of the last save is evidence, not a rating (a cache may run without saves)."""
    now = time.time() if now is None else now
    mis = info.get('errorstat_MISCONF')
    evidence = {'rdb_last_bgsave_status': info.get('rdb_last_bgsave_status'),
                'rdb_last_save_time': info.get('rdb_last_save_time'),
                'rdb_last_save_age_s': _age(now, info.get('rdb_last_save_time')),
                'rdb_changes_since_last_save': info.get('rdb_changes_since_last_save'),
                'rdb_bgsave_in_progress': info.get('rdb_bgsave_in_progress'),
                'aof_enabled': info.get('aof_enabled'), 'aof_last_write_status': info.get('aof_last_write_status'),
                'aof_last_bgrewrite_status': info.get('aof_last_bgrewrite_status'), 'loading': info.get('loading'),
                'misconf_errors': mis.get('count') if isinstance(mis, dict) else None}
    if evidence['rdb_last_bgsave_status'] is None and evidence['aof_enabled'] is None:
        return finding('redis.persistence', host, service, 'unknown', 'INFO persistence unavailable', evidence)
    problems, status = [], 'ok'
    if evidence['rdb_last_bgsave_status'] == 'err':
        status = 'crit'
        problems.append('the last background save (RDB) failed, %d change(s) since the last good save%s' % (
            int(evidence['rdb_changes_since_last_save'] or 0),
            (' %s ago' % timefmt.duration(evidence['rdb_last_save_age_s'])) if evidence['rdb_last_save_age_s'] is not None else ''))
    if evidence['aof_enabled'] and evidence['aof_last_write_status'] == 'err':
        status = 'crit'
        problems.append('writes to the append-only file (AOF) fail')
    if evidence['aof_enabled'] and evidence['aof_last_bgrewrite_status'] == 'err':
        status = worst([status, 'warn'])
        problems.append('the last AOF rewrite failed')
    if evidence['loading']:
        status = worst([status, 'warn'])
        problems.append('the dataset is still loading')
    if problems:
        text = '; '.join(problems)
        if status == 'crit':
            text += ': writes are refused with MISCONF while save points are configured (stop-writes-on-bgsave-error)'
        if evidence['misconf_errors']:
            text += ', %d MISCONF error(s) since start' % evidence['misconf_errors']
        return finding('redis.persistence', host, service, status, text, evidence)
    parts = ['last save ok' + ((' %s ago' % timefmt.duration(evidence['rdb_last_save_age_s']))
                               if evidence['rdb_last_save_age_s'] is not None else '')]
    parts.append('AOF %s' % ('on, writes ok' if evidence['aof_enabled'] else 'off'))
    return finding('redis.persistence', host, service, 'ok', ', '.join(parts), evidence)


def _replicas(info):
    """The replicas a master lists in INFO replication (slaveN: ip=..,port=..,state=..,offset=..,lag=..)."""
    out = []
    for key in sorted(k for k in info if str(k).startswith('slave') and str(k)[5:].isdigit()):
        value = info[key]
        if isinstance(value, str):  # redis-py parses it into a dict; a raw value is "ip=..,port=..,..."
            value = dict(part.split('=', 1) for part in value.split(',') if '=' in part)
        if isinstance(value, dict):
            out.append({'address': '%s:%s' % (value.get('ip'), value.get('port')), 'state': value.get('state'),
                        'offset': _int(value.get('offset')), 'lag_s': _int(value.get('lag'))})
    return out[:32]


def evaluate_replication(host, service, info, t):
    """redis.replication from INFO replication: a replica whose link to its master is down is crit, one still
    syncing or silent for longer than replication_lag_warn_s warns; a master whose replicas lag or are not online
    warns. A master without replicas is ok (most caches)."""
    role = info.get('role')
    lag_warn = t['replication_lag_warn_s']
    evidence = {'role': role, 'connected_replicas': info.get('connected_slaves'), 'replicas': _replicas(info),
                'master_host': info.get('master_host'), 'master_port': info.get('master_port'),
                'master_link_status': info.get('master_link_status'),
                'master_last_io_seconds_ago': info.get('master_last_io_seconds_ago'),
                'master_sync_in_progress': info.get('master_sync_in_progress'),
                'master_link_down_since_seconds': info.get('master_link_down_since_seconds'),
                'master_repl_offset': info.get('master_repl_offset')}
    if role is None:
        return finding('redis.replication', host, service, 'unknown', 'INFO replication unavailable', evidence)
    if role == 'slave':
        master = '%s:%s' % (evidence['master_host'], evidence['master_port'])
        if evidence['master_link_status'] != 'up':
            down = evidence['master_link_down_since_seconds']
            return finding('redis.replication', host, service, 'crit', 'replica of %s: link to the master is %s%s' % (
                master, evidence['master_link_status'] or 'unknown',
                (' since %s' % timefmt.duration(down)) if isinstance(down, int) and down >= 0 else ''), evidence)
        io = evidence['master_last_io_seconds_ago']
        if evidence['master_sync_in_progress'] or (isinstance(io, int) and io > lag_warn):
            return finding('redis.replication', host, service, 'warn', 'replica of %s: %s' % (
                master, 'full sync in progress' if evidence['master_sync_in_progress']
                else 'nothing from the master for %d s (over %d s)' % (io, lag_warn)), evidence)
        return finding('redis.replication', host, service, 'ok', 'replica of %s, link up, last contact %s s ago' % (
            master, io), evidence)
    replicas = evidence['replicas']
    behind = [r for r in replicas if r['state'] != 'online' or (r['lag_s'] or 0) > lag_warn]
    if behind:
        return finding('redis.replication', host, service, 'warn', 'master with %d replica(s); behind or not online: %s' % (
            len(replicas), ', '.join('%s %s lag %s s' % (r['address'], r['state'], r['lag_s']) for r in behind[:3])),
            evidence)
    if not replicas:
        return finding('redis.replication', host, service, 'ok', 'master, no replicas', evidence)
    return finding('redis.replication', host, service, 'ok', 'master with %d replica(s) online, lag at most %d s' % (
        len(replicas), max((r['lag_s'] or 0) for r in replicas)), evidence)


# --- redis.latency and redis.log: the server's own record of stalls and warnings -------------------------------
# Both come from one pipelined round trip (read_server_state): LATENCY LATEST and CONFIG GET of the latency
# monitor's threshold, the log file, the directory it is relative to and syslog. LATENCY HISTORY is read (one more
# round trip) only for events inside the window, so a healthy server costs nothing more.

SERVER_CONFIG = ('latency-monitor-threshold', 'logfile', 'dir', 'syslog-enabled')
MAX_LATENCY_EVENTS = 32
LATENCY_MONITOR_HINT = 'CONFIG SET latency-monitor-threshold 100'


def read_server_state(client):
    """({'latency': LATENCY LATEST rows, 'config': {name: value}}, {command: error}) over one round trip.
    A refused or renamed command (ACL, rename-command) is an error of its own; the others still answer."""
    pipe = client.pipeline(transaction=False)
    pipe.execute_command('LATENCY', 'LATEST')
    for name in SERVER_CONFIG:
        pipe.config_get(name)
    replies = pipe.execute(raise_on_error=False)
    state, errors = {'latency': None, 'config': {}}, {}
    for name, reply in zip(('LATENCY LATEST',) + tuple('CONFIG GET %s' % n for n in SERVER_CONFIG), replies):
        if isinstance(reply, Exception):
            errors[name] = '%s: %s' % (getattr(reply, 'error_name', None) or type(reply).__name__, one_line(str(reply), 200))
        elif name == 'LATENCY LATEST':
            state['latency'] = reply if isinstance(reply, list) else []
        elif isinstance(reply, dict):
            state['config'].update((str(k), _text(v, 4096)) for k, v in reply.items())
    return state, errors


def parse_latency_latest(rows, limit=MAX_LATENCY_EVENTS):
    """LATENCY LATEST rows ([event, unix time, latest ms, all-time max ms]) as records."""
    out = []
    for row in rows or []:
        if not isinstance(row, (list, tuple)) or len(row) < 4:
            continue
        stamp, latest, top = _int(row[1]), _int(row[2]), _int(row[3])
        if stamp is None:
            continue
        out.append({'event': _text(row[0]), 'latest_ts': stamp, 'latest_ms': latest, 'max_ms': top})
        if len(out) >= limit:
            break
    return out


def read_latency_history(client, events):
    """{event: [(unix time, ms)]} of LATENCY HISTORY for the given events, one round trip (at most 160 samples each)."""
    if not events:
        return {}
    pipe = client.pipeline(transaction=False)
    for name in events:
        pipe.execute_command('LATENCY', 'HISTORY', name)
    out = {}
    for name, reply in zip(events, pipe.execute(raise_on_error=False)):
        if isinstance(reply, list):
            out[name] = [(_int(s[0]), _int(s[1])) for s in reply[:200] if isinstance(s, (list, tuple)) and len(s) >= 2]
    return out


def latency_check(client, host, service, data, t, now=None):
    """redis.latency of what collect() read; LATENCY HISTORY only for the events inside the window."""
    if 'LATENCY LATEST' in data['errors']:
        return evaluate_latency(host, service, None, None, t, error=data['errors']['LATENCY LATEST'])
    now = time.time() if now is None else now
    server = data.get('server') or {}
    events = parse_latency_latest(server.get('latency'))
    monitor = _int((server.get('config') or {}).get('latency-monitor-threshold'))
    recent = [e['event'] for e in events if now - e['latest_ts'] <= t['window_seconds']]
    history = {}
    if recent:
        data['executed_commands'].append('LATENCY HISTORY %s' % ' '.join(recent))
        try:
            history = read_latency_history(client, recent)
        except Exception as exc:  # pylint: disable=broad-except
            data['errors']['LATENCY HISTORY'] = one_line(str(exc), 200)
    return evaluate_latency(host, service, events, monitor, t, history, now)


# Latency spikes under latency_crit_ms whose latest is older than this are not happening now: the monitor records
# every stall of the server, a loaded machine's and a fork's too, so they stay in the evidence, not rated.
LATENCY_LIVE_S = 120


def evaluate_latency(host, service, events, monitor_ms, t, history=None, now=None, error=None, live_s=LATENCY_LIVE_S):
    """redis.latency from LATENCY LATEST: an event whose latest spike is inside the window rates by the worst spike
    of the window (LATENCY HISTORY when read, else its latest) against latency_warn_ms / latency_crit_ms; events
    older than the window are history (evidence, ok). An event under latency_crit_ms whose latest spike is older
    than live_s is not rated (a stall that is not happening now; live over stale). A monitor that is off (threshold 0) is ok
    with a note saying how to turn it on: it is not a fault of the server."""
    now = time.time() if now is None else now
    window = t['window_seconds']
    evidence = {'monitor_threshold_ms': monitor_ms, 'events': [], 'events_in_window': 0, 'window_s': window,
                'warn_ms': t['latency_warn_ms'], 'crit_ms': t['latency_crit_ms']}
    if error:
        evidence['error'] = error
        return finding('redis.latency', host, service, 'unknown', 'not checked: %s' % error, evidence)
    rated = []
    for event in events or []:
        item = dict(event)
        item['age_s'] = max(0, int(now - event['latest_ts']))
        item['within_window'] = item['age_s'] <= window
        if item['within_window']:
            samples = [s for s in (history or {}).get(event['event']) or [] if s[0] is not None and now - s[0] <= window]
            item['window_max_ms'] = max([s[1] or 0 for s in samples] + [event['latest_ms'] or 0])
            item['window_spikes'] = len(samples) or 1
            item['status'] = level(item['window_max_ms'], t['latency_warn_ms'], t['latency_crit_ms'])
            item['isolated'] = item['age_s'] > live_s and item['window_max_ms'] < t['latency_crit_ms']
            if item['isolated']:
                item['status'] = 'ok'
            rated.append(item)
        else:
            item['status'] = 'ok'
        evidence['events'].append(item)
    evidence['events'].sort(key=lambda e: (not e['within_window'], -(e.get('window_max_ms') or e['max_ms'] or 0)))
    evidence['events_in_window'] = len(rated)
    history_text = ''
    old = [e for e in evidence['events'] if not e['within_window']]
    if old:
        history_text = '; %d older event%s (history, not rated)' % (len(old), '' if len(old) == 1 else 's')
    if monitor_ms == 0 and not events:
        evidence['hint'] = LATENCY_MONITOR_HINT
        return finding('redis.latency', host, service, 'ok', 'latency monitor off (latency-monitor-threshold 0): no '
                       'events recorded; turn it on with %s' % LATENCY_MONITOR_HINT, evidence)
    if not rated:
        monitor = ('monitor at %s ms' % monitor_ms) if monitor_ms else (
            'monitor threshold unknown' if monitor_ms is None else 'monitor now off')
        return finding('redis.latency', host, service, 'ok', 'no latency event in the window (%s)%s' % (
            monitor, history_text), evidence)
    isolated = [e for e in rated if e['isolated']]
    if isolated and len(isolated) == len(rated):
        top = max(isolated, key=lambda e: e['window_max_ms'])
        return finding('redis.latency', host, service, 'ok', '%d latency event%s in the window, worst %s %d ms, the '
                       'latest %s ago, none since: not rated (under %s ms)%s' % (
                           len(isolated), '' if len(isolated) == 1 else 's', top['event'], top['window_max_ms'],
                           timefmt.duration(min(e['age_s'] for e in isolated)), t['latency_crit_ms'], history_text),
                       evidence)
    status = worst([e['status'] for e in rated])
    top = max(rated, key=lambda e: e['window_max_ms'])
    text = '%d latency event%s in the window, worst %s %d ms %s ago%s' % (
        len(rated), '' if len(rated) == 1 else 's', top['event'], top['window_max_ms'], timefmt.duration(top['age_s']),
        ''.join('; %s %d ms' % (e['event'], e['window_max_ms']) for e in rated if e is not top)[:200])
    if status == 'ok':
        text += ', under %s ms' % t['latency_warn_ms']
    if monitor_ms == 0:
        text += ' (monitor now off)'
    return finding('redis.latency', host, service, status, text + history_text, evidence)


# Redis' log lines: "<pid>:<role> 06 Dec 2026 03:30:00.123 <level> <message>"; the level marks are . - * #
# (debug, verbose, notice, warning). Only warnings (#) are grouped; known kinds rate, the others are evidence.
_REDIS_LOG_RE = re.compile(r'^(?P<pid>\d+):(?P<role>[A-Z]) (?P<day>\d{1,2}) (?P<mon>[A-Z][a-z]{2}) (?P<year>\d{4}) '
                           r'(?P<hms>\d\d:\d\d:\d\d)(?P<frac>\.\d+)? (?P<level>[.*#-]) (?P<msg>.*)$')
_MONTHS = dict((m, i) for i, m in enumerate(('Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct',
                                             'Nov', 'Dec'), 1))
# (kind, regex of a warning, rated status, regex of a later line that says the kind recovered)
REDIS_LOG_KINDS = (
    ('save_failed', re.compile(r'Background saving error|Failed opening the (?:temp )?RDB file|Write error (?:saving DB on disk|'
                               r'writing to the RDB)|Error moving temp DB file|Background saving terminated by signal|'
                               r'MISCONF'), 'warn',
     re.compile(r'Background saving terminated with success|DB saved on disk')),
    ('fork_failed', re.compile(r"Can't (?:save|rewrite append only file) in background: fork|fork\(\) failed|Can't fork"),
     'warn', re.compile(r'Background saving started by pid|Background append only file rewriting started')),
    ('aof_failed', re.compile(r'Error writing to the AOF file|Background AOF rewrite (?:failed|terminated with error)|'
                              r'temp(?:orary)? AOF|Asynchronous AOF fsync is taking too long'), 'warn',
     re.compile(r'AOF write error looks solved|Background AOF rewrite finished successfully')),
    ('out_of_memory', re.compile(r'Out Of Memory|\bOOM\b|Cannot allocate memory'), 'crit', None),
    ('replication', re.compile(r'Error condition on socket for SYNC|Unable to connect to MASTER|MASTER aborted replication|'
                               r'Timeout connecting to the MASTER|Disconnecting timedout replica|Connection with '
                               r'(?:master|replica) lost'), 'warn',
     re.compile(r'MASTER <-> REPLICA sync: Finished with success|Successful partial resynchronization|'
                r'Master replied to PING')),
    ('output_buffer', re.compile(r'scheduled to be closed ASAP for overcoming of output buffer limits'), 'warn', None),
    ('crash', re.compile(r'REDIS BUG REPORT|crashed by signal|Guru Meditation|ASSERTION FAILED'), 'crit', None),
)
_LOG_NORMALIZE_RE = re.compile(r'\bid=\d+|\baddr=\S+|\bpid \d+|\b\d+(?:\.\d+)?\b')
LOG_MAX_BYTES = 4194304
LOG_MAX_LINES = 50000
MAX_LOG_GROUPS = 20
# A kind silent for longer than this (or three of its own mean intervals) has stopped: it stays in the evidence
# and rates ok (live over stale, as pg.log).
LOG_LIVE_S = 30
LOG_SINGLE_LIVE_S = 120


def _redis_log_time(match, cache=None):
    """Epoch seconds of a Redis log line (Redis writes the host's local time), None when it does not parse.
    cache: {second's text: epoch} (lines of one second share it: a long log parses each second once)."""
    second = match.group('day', 'mon', 'year', 'hms')
    base = cache.get(second, False) if cache is not None else False
    if base is False:
        try:
            base = time.mktime(time.strptime('%s-%02d-%s %s' % (second[2], _MONTHS[second[1]], second[0], second[3]),
                                             '%Y-%m-%d %H:%M:%S'))
        except (KeyError, ValueError, OverflowError):
            base = None
        if cache is not None and len(cache) < 100000:
            cache[second] = base
    return None if base is None else base + float('0' + (match.group('frac') or '.0'))


def parse_redis_log(text, since, until=None, redact=None, max_lines=LOG_MAX_LINES):
    """The warning lines (#) of the window grouped by message: {'groups': {message: {kind, status, count, first_ts,
    last_ts, sample, recovered}}, 'lines': lines of the window, 'warnings': warning lines, 'unparsed': count}.
    Messages are normalized (numbers, ids, addresses) and redacted (redact: a function on text) before grouping."""
    redact = redact or (lambda value: value)
    groups, lines, warnings, unparsed, seconds, watched = {}, 0, 0, 0, {}, []
    for raw in (text or '').splitlines()[-max_lines:]:
        match = _REDIS_LOG_RE.match(raw.strip())
        if not match:
            unparsed += 1 if raw.strip() else 0
            continue
        ts = _redis_log_time(match, seconds)
        if ts is not None and (ts < since or (until is not None and ts > until)):
            continue
        lines += 1
        msg = match.group('msg')
        if match.group('level') != '#':
            for group in watched:  # a later success line: the kind recovered
                if not group['recovered'] and group['_recovered_re'].search(msg):
                    group['recovered'] = True
            continue
        warnings += 1
        kind, status, recovered_re = None, 'ok', None
        for name, regex, rated, recovered in REDIS_LOG_KINDS:
            if regex.search(msg):
                kind, status, recovered_re = name, rated, recovered
                break
        key = one_line(redact(_LOG_NORMALIZE_RE.sub('?', msg)), 160)
        group = groups.get(key)
        if group is None:
            if len(groups) >= 200:  # a bounded map: an unbounded variety of messages is counted, not kept
                continue
            group = groups[key] = {'kind': kind, 'status': status, 'count': 0, 'first_ts': ts, 'last_ts': ts,
                                   'sample': one_line(redact(msg), 200), 'recovered': False,
                                   '_recovered_re': recovered_re}
            if recovered_re is not None:
                watched.append(group)
        group['count'] += 1
        group['last_ts'] = ts
        group['recovered'] = False  # failing again after a success
    for group in groups.values():
        group.pop('_recovered_re', None)
    return {'groups': groups, 'lines': lines, 'warnings': warnings, 'unparsed': unparsed}


def log_group_stopped(group, now, live_s=LOG_LIVE_S):
    """Seconds since the group's last line when it has stopped, else None (as areas/postgres.log_kind_stopped)."""
    last, first, count = group.get('last_ts'), group.get('first_ts'), group.get('count') or 0
    if now is None or last is None:
        return None
    quiet = max(live_s, 3.0 * (last - first) / (count - 1)) if count > 1 and first is not None else \
        max(live_s, LOG_SINGLE_LIVE_S)
    return int(now - last) if now - last > quiet else None


def evaluate_log(host, service, parsed, source, window_s, error=None, now=None, note=None, logfile=None):
    """redis.log: the server's warnings of the window grouped by message. A known kind (failed saves and forks,
    AOF errors, replication errors, output buffer kills: warn; out of memory, a crash: crit) rates while it goes on;
    one that stopped or that a later success line answered (recovered) is ok and stays in the evidence. Other
    warnings (startup advice such as overcommit_memory) are evidence only."""
    evidence = {'source': source, 'logfile': logfile, 'window_s': window_s}
    if note:
        evidence['note'] = note
    if error:
        evidence['error'] = error
        return finding('redis.log', host, service, 'unknown', 'log not read: %s' % error, evidence)
    rows = []
    for message, group in parsed['groups'].items():
        row = dict(group, message=message)
        stopped = log_group_stopped(group, now)
        if row['status'] != 'ok' and (row['recovered'] or stopped is not None):
            row['rated_status'] = row['status']
            row['status'] = 'ok'
            if stopped is not None:
                row['stopped_ago_s'] = stopped
        rows.append(row)
    rows.sort(key=lambda r: (-STATUS_RANK.get(r['status'], 0), r['kind'] is None, -r['count'], r['message']))
    evidence.update(groups=rows[:MAX_LOG_GROUPS], lines=parsed['lines'], warnings=parsed['warnings'],
                    unparsed=parsed['unparsed'], truncated=bool(parsed.get('truncated')))
    status = worst([r['status'] for r in rows] or ['ok'])
    bad = [r for r in rows if r['status'] != 'ok']
    past = [r for r in rows if r.get('rated_status')]
    if bad:
        text = 'in the window: ' + '; '.join('%s x%d (last %s)' % (
            one_line(r['sample'], 140), r['count'], _clock(r['last_ts'])) for r in bad[:3])
    elif past:
        text = 'no live warning in the window; before: ' + '; '.join('%s x%d (%s)' % (
            one_line(r['sample'], 80), r['count'], 'recovered' if r['recovered'] else
            'stopped %s ago' % timefmt.duration(r.get('stopped_ago_s'))) for r in past[:2])
    else:
        count = parsed['warnings']
        text = ('%d warning line%s in the window, none of a known fault' % (count, '' if count == 1 else 's')) if count \
            else 'no warning line in the window'
    return finding('redis.log', host, service, status, '%s (%s)' % (text, one_line(source, 120)), evidence)


def _clock(ts):
    return time.strftime('%H:%M:%S', time.localtime(ts)) if ts else '?'


def tail_file(path, max_bytes=LOG_MAX_BYTES):
    """(the last max_bytes of the Redis log as text from its first whole line, whether it was cut)."""
    return probe_common.tail_file(path, max_bytes)


def log_path(config):
    """(path of the log file or None, why not): CONFIG GET logfile, relative to CONFIG GET dir as Redis opens it."""
    logfile = config.get('logfile')
    if logfile is None:
        return None, 'CONFIG GET logfile gave no answer'
    if logfile == '':
        where = 'syslog and stdout' if str(config.get('syslog-enabled')).lower() == 'yes' else 'stdout'
        return None, ('Redis logs to %s (logfile ""): read it where its output goes (docker logs <container>, '
                      'journalctl -u <unit>)' % where)
    if logfile == '/dev/null':
        return None, 'Redis discards its log (logfile /dev/null)'
    if not os.path.isabs(logfile):
        logfile = os.path.join(config.get('dir') or '/', logfile)
    return logfile, None


def log_check(host, service, config, window_s, p, secrets, now=None, config_error=None):
    """redis.log on the host the module runs on (the Redis host): the tail of the file Redis writes, bounded."""
    now = time.time() if now is None else now
    if config_error:
        return evaluate_log(host, service, None, 'CONFIG GET logfile', window_s, error=config_error)
    path, why = log_path(config)
    if path is None:
        return finding('redis.log', host, service, 'ok', 'not read here: %s' % why,
                       {'source': None, 'logfile': config.get('logfile'), 'window_s': window_s, 'note': why})
    note = None
    if str(p.get('login_host')) not in ('127.0.0.1', 'localhost', '::1'):
        note = 'Redis is reached at %s: its log file is read on this host' % p.get('login_host')
    try:
        text, cut = tail_file(path)
    except (IOError, OSError) as exc:
        reason = exc.strerror or str(exc)
        return evaluate_log(host, service, None, path, window_s, note=note, logfile=config.get('logfile'),
                            error='%s: %s (as %s on this host)' % (one_line(reason, 120), path, _whoami()))
    redactor = Redactor(literals=secrets)
    parsed = parse_redis_log(text, now - window_s, redact=redactor.text)
    parsed['truncated'] = cut
    return evaluate_log(host, service, parsed, path, window_s, now=now, note=note, logfile=config.get('logfile'))


def _whoami():
    try:
        import pwd
        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError, OSError):
        return 'uid %s' % getattr(os, 'geteuid', lambda: '?')()


def not_checked(check, host, service, reason):
    return finding(check, host, service, 'unknown', 'not checked: %s' % reason, {'error': reason})


def no_client(host, service, reason):
    """The one finding of an area that has no way to talk to the server (no redis-py, no redis-cli)."""
    return finding('redis.connectivity', host, service, 'unknown', 'not checked: %s' % reason,
                   {'error': reason, 'client': 'none', 'install': ['python3-redis', 'redis-tools']})


THRESHOLD_SPEC = dict(
    memory_warn_pct=dict(type='float', default=90),
    memory_crit_pct=dict(type='float', default=98),
    fragmentation_warn=dict(type='float', default=3.0),
    fragmentation_min_bytes=dict(type='int', default=104857600),
    # a count of evicted keys, not a key: nothing secret (no_log=False answers validate-modules' name check)
    evicted_keys_warn=dict(type='int', default=1, no_log=False),
    clients_warn_pct=dict(type='float', default=80),
    clients_crit_pct=dict(type='float', default=95),
    blocked_clients_warn=dict(type='int', default=10),
    rejected_connections_warn=dict(type='int', default=1),
    slowlog_warn_ms=dict(type='float', default=20),
    slowlog_crit_count=dict(type='int', default=10),
    replication_lag_warn_s=dict(type='int', default=30),
    latency_warn_ms=dict(type='float', default=100),
    latency_crit_ms=dict(type='float', default=1000),
)
INFO_KEYS = ('redis_version', 'role', 'uptime_in_seconds', 'used_memory', 'used_memory_human', 'used_memory_rss',
             'used_memory_peak', 'maxmemory', 'maxmemory_policy', 'mem_fragmentation_ratio', 'evicted_keys',
             'expired_keys', 'connected_clients', 'blocked_clients', 'rejected_connections', 'maxclients',
             'keyspace_hits', 'keyspace_misses', 'total_commands_processed', 'instantaneous_ops_per_sec',
             'total_error_replies', 'rdb_last_bgsave_status', 'rdb_last_save_time', 'rdb_changes_since_last_save',
             'aof_enabled', 'aof_last_write_status', 'aof_last_bgrewrite_status', 'loading', 'connected_slaves',
             'master_link_status', 'master_last_io_seconds_ago')


SPEC = redis_common.redis_argument_spec()
SPEC.update(
    report_host=dict(type='str', required=True),
    service=dict(type='str', required=True),
    slowlog_count=dict(type='int', default=10),
    window=dict(type='str', default='15m'),
    thresholds=dict(type='dict', default={}, options=THRESHOLD_SPEC),
    evictable_patterns=dict(type='list', elements='str', default=[]),
    protected_patterns=dict(type='list', elements='str', default=[]),
    prefix_sample_keys=dict(type='int', default=1000, no_log=False),  # how many keys to sample: a count, not a secret
    client=dict(type='str', default='auto', choices=redis_common.CLIENTS),
)


def run(module):
    """The area's result, scrubbed of the login password as keys and values (AnsibleModule's no_log scrubs values
    only, and key names and slow-log arguments are the clients' own text)."""
    p = module.params
    client, missing = redis_common.choose_client(p.get('client'))
    if missing:  # a missing tool is one finding for the area, not a failed play nor one per check
        result = dict(changed=False, executed_commands=[], evidence_files={},
                      findings=[no_client(p['report_host'], p['service'], missing)])
    else:
        result = _run(module, client)
        for item in result['findings']:
            item['evidence']['client'] = client
    return Redactor(literals=[p.get('login_password')]).data(result)


def _run(module, kind='library'):
    p = module.params
    t = thresholds_of(module, THRESHOLD_SPEC, (('memory_warn_pct', 'memory_crit_pct'), ('clients_warn_pct', 'clients_crit_pct'),
                                               ('latency_warn_ms', 'latency_crit_ms')))
    t['window_seconds'] = window_seconds(module)
    host, service = p['report_host'], p['service']
    secrets = [p['login_password']]
    others = ('redis.memory', 'redis.clients', 'redis.slowlog', 'redis.keyspace', 'redis.persistence', 'redis.replication',
              'redis.latency', 'redis.log')
    client = None
    try:
        client = redis_common.redis_connect(p, client=kind)
        client.ping()
    except Exception as exc:  # pylint: disable=broad-except
        error = redis_common.describe_error(exc, secrets)
        if client is not None and refuses_writes(error):
            return _collect_and_evaluate(client, host, service, t, p)
        findings = [evaluate_connectivity(host, service, {}, error=error)]
        if max_clients_reached(error):  # the server is up and full: who holds the slots, from this host's sockets
            findings.append(evaluate_clients_refused(host, service, error, read_holders(p)))
        findings += [not_checked(c, host, service, 'no connection to %s:%s' % (p['login_host'], p['login_port']))
                     for c in others if c not in [f['check'] for f in findings]]
        if client is not None:
            client.close()
        return dict(changed=False, findings=findings, evidence_files={}, executed_commands=['PING'])
    return _collect_and_evaluate(client, host, service, t, p)


def _collect_and_evaluate(client, host, service, t, p):
    try:
        data = collect(client, p['slowlog_count'])
        info = data.get('info') or {}
        findings = _evaluate(client, host, service, data, info, t, p)
    finally:
        client.close()
    files = {'redis-info-%s.json' % service: {k: info.get(k) for k in INFO_KEYS if k in info},
             'redis-slowlog-%s.json' % service: findings[-1]['evidence'].get('entries', [])}
    if data['errors']:
        files['redis-errors-%s.json' % service] = data['errors']
    return dict(changed=False, findings=findings, evidence_files=files, executed_commands=data['executed_commands'])


def read_holders(p):
    """host_sockets.holders_of_port for the Redis port, with what this host cannot see said in the note."""
    try:
        holders = host_sockets.holders_of_port(int(p['login_port']))
    except Exception as exc:  # pylint: disable=broad-except
        return {'port': p.get('login_port'), 'holders': [], 'note': 'host sockets unreadable: %s' % one_line(str(exc), 200)}
    if str(p.get('login_host')) not in ('127.0.0.1', 'localhost', '::1') and not holders.get('note'):
        holders['note'] = ('Redis is reached at %s, not on loopback: the sockets read are this host\'s (port %s)'
                           % (p.get('login_host'), p.get('login_port')))
    return holders


def _evaluate(client, host, service, data, info, t, p):
    findings = [evaluate_connectivity(host, service, data)]
    if info:
        findings.append(evaluate_memory(host, service, info, t))
        groups = group_clients(data['clients'], data.get('own_client_id')) if 'clients' in data else None
        findings.append(evaluate_clients(host, service, info, t, groups))
        findings.append(evaluate_keyspace(host, service, info))
        findings.append(evaluate_persistence(host, service, info))
        if findings[-1]['status'] == 'crit':
            describe_dir(client, findings[-1], (data.get('server') or {}).get('config', {}).get('dir'))
        findings.append(evaluate_replication(host, service, info, t))
        mem = findings[1]
        if mem['status'] != 'ok' and p['prefix_sample_keys'] > 0:
            describe_prefixes(client, mem, info, p)
    else:
        findings += [not_checked(c, host, service, 'INFO: %s' % data['errors'].get('INFO', 'empty'))
                     for c in ('redis.memory', 'redis.clients', 'redis.keyspace', 'redis.persistence', 'redis.replication')]
    findings.append(latency_check(client, host, service, data, t))
    findings.append(log_check(host, service, (data.get('server') or {}).get('config') or {}, t['window_seconds'], p,
                              [p.get('login_password')], config_error=data['errors'].get('CONFIG GET logfile')))
    if 'SLOWLOG GET' in data['errors']:
        findings.append(not_checked('redis.slowlog', host, service, data['errors']['SLOWLOG GET']))
    else:
        findings.append(evaluate_slowlog(host, service, data['slowlog'], data.get('slowlog_len'), t))
    return findings


def describe_dir(client, persistence, known=None):
    """Where Redis writes its snapshot (CONFIG GET dir, read with the log file: known) on a failed save: the directory
    a person must fix (disk full, permissions, gone). CONFIG may be renamed or refused (ACL): then the finding says so."""
    value = known
    try:
        if not value:
            value = (client.config_get('dir') or {}).get('dir')
    except Exception as exc:  # pylint: disable=broad-except
        persistence['evidence']['dir_error'] = one_line(str(exc), 200)
        return
    if value:
        persistence['evidence']['dir'] = one_line(value, 300)
        persistence['summary'] += '; snapshot directory %s' % one_line(value, 120)


def describe_prefixes(client, mem, info, p):
    """What fills Redis: the top key prefixes by memory (bounded sample) on a redis.memory that is not ok."""
    try:
        sizes, sampled = sample_prefixes(client, p['prefix_sample_keys'])
        total = sum(int((v or {}).get('keys', 0)) for k, v in info.items() if str(k).startswith('db') and isinstance(v, dict))
        rows, evictable = top_prefixes(sizes, sampled, total, p['evictable_patterns'], p['protected_patterns'])
    except Exception as exc:  # pylint: disable=broad-except
        mem['evidence']['top_prefixes_error'] = str(exc)[:200]
        return
    mem['evidence'].update(top_prefixes=rows, sampled_keys=sampled, total_keys=total,
                           evictable_est_bytes=evictable, memory_warn_pct=p['thresholds'].get('memory_warn_pct') or 90,
                           evictable_patterns=p['evictable_patterns'])
    if rows:
        mem['summary'] += '; top prefixes: %s' % ', '.join(
            '%s %s (%s)' % (r['prefix'], human_bytes(r['est_bytes']), r['marked']) for r in rows[:3])
