"""Unit tests: PostgreSQL and Redis evaluation (connections, long queries, lock chains, disk, memory, slowlog)."""
import time

from ansible_collections.sre.incident_response.plugins.module_utils.areas import (
    postgres as area_postgres,
    redis as area_redis)

T = {'connections_warn_pct': 80, 'connections_crit_pct': 95, 'idle_in_transaction_warn_seconds': 30,
     'idle_in_transaction_crit_count': 5, 'long_query_seconds': 30, 'long_query_crit_seconds': 300,
     'lock_wait_warn_seconds': 5, 'lock_wait_crit_seconds': 30, 'blocked_sessions_warn': 3,
     'disk_warn_pct': 90, 'disk_crit_pct': 95}
SERVER = {'max_connections': 40, 'reserved_connections': 3, 'server_version': '15.5', 'uptime_s': 3600}


def session(pid, state='active', query='SELECT 1', user='app', app='backend', query_age=0.1, state_age=0.1,
            xact_age=None, blocked_by=None, backend_type='client backend', wait=None):
    return {'pid': pid, 'state': state, 'query': query, 'usename': user, 'application_name': app,
            'query_age_s': query_age, 'state_age_s': state_age, 'xact_age_s': xact_age, 'blocked_by': blocked_by or [],
            'backend_type': backend_type, 'wait_event_type': wait}


def test_connections_idle_in_transaction_summary_with_numbers():
    activity = [session(i, state='idle') for i in range(30)]
    activity += [session(100 + i, state='idle in transaction', state_age=312 - i, query='SELECT * FROM orders') for i in range(5)]
    activity += [session(200, backend_type='autovacuum launcher', state=None)]
    f = area_postgres.evaluate_connections('db1', 'db', SERVER, activity, T)
    assert f['status'] == 'crit'  # 5 sessions idle in transaction past 30 s, and 35/40 = 87.5 % used
    assert f['summary'].startswith('5 of 35 connections idle in transaction (oldest 312 s, pid 100 app backend)')
    assert '35 of 40 connections used (87.5%)' in f['summary']
    assert f['evidence']['by_state'] == {'idle': 30, 'idle in transaction': 5}


def test_connections_ok_when_few_and_fresh():
    activity = [session(1, state='idle'), session(2), session(3, state='idle in transaction', state_age=2)]
    f = area_postgres.evaluate_connections('db1', 'db', SERVER, activity, T)
    assert f['status'] == 'ok' and '3 of 40 connections used (7.5%)' in f['summary']


def test_long_queries_only_not_idle_and_over_threshold():
    activity = [session(1, query='SELECT pg_sleep(3600)', query_age=95, app='report-job'),
                session(2, state='idle', query_age=4000), session(3, query_age=10),
                session(4, state='idle in transaction', query_age=500)]
    f = area_postgres.evaluate_long_queries('db1', 'db', activity, T)
    assert f['status'] == 'warn'
    assert f['summary'].startswith('1 query running longer than 30 s; longest pid 1 (app report-job) 95 s')
    assert [q['pid'] for q in f['evidence']['queries']] == [1]
    assert area_postgres.evaluate_long_queries('db1', 'db', activity[1:], T)['status'] == 'ok'


def test_lock_chain_blocked_blocking_queries_and_wait():
    activity = [session(10, state='idle in transaction', query='LOCK TABLE orders IN ACCESS EXCLUSIVE MODE', xact_age=60,
                        app='report-job'),
                session(11, query="UPDATE orders SET note = 'paid' WHERE id = 1", blocked_by=[10], app='checkout-worker-1', wait='Lock'),
                session(12, query="UPDATE orders SET note = 'paid' WHERE id = 2", blocked_by=[11], app='checkout-worker-2', wait='Lock'),
                session(13, query='SELECT 1')]
    waits = [{'pid': 11, 'mode': 'RowExclusiveLock', 'relation': 'orders', 'locktype': 'relation', 'wait_s': 42.0},
             {'pid': 12, 'mode': 'ShareLock', 'relation': None, 'locktype': 'transactionid', 'wait_s': 12.0}]
    f = area_postgres.evaluate_locks('db1', 'db', activity, waits, T)
    assert f['status'] == 'crit'  # 42 s > 30 s
    ev = f['evidence']
    assert ev['blocking_pids'] == [10, 11] and ev['root_pids'] == [10] and ev['blocked_pids'] == [11, 12]
    assert ev['chains'] == [[10, 11, 12]]
    assert ev['blocked'][0]['query'].startswith('UPDATE orders') and ev['blocked'][0]['wait_s'] == 42.0
    assert ev['blocking'][0]['query'].startswith('LOCK TABLE orders') and ev['blocking'][0]['root'] is True
    assert f['summary'].startswith('2 sessions blocked by pid 10 (app report-job, idle in transaction 60 s: LOCK TABLE orders')
    assert 'longest wait 42 s pid 11' in f['summary'] and 'chain 10 <- 11 <- 12' in f['summary']


def test_locks_ok_and_blocking_chains_fan_out_and_cycle():
    assert area_postgres.evaluate_locks('db1', 'db', [session(1)], [], T)['status'] == 'ok'
    roots, chains = area_postgres.blocking_chains({2: [1], 3: [1], 4: [3]})
    assert roots == [1] and chains == [[1, 2], [1, 3, 4]]
    roots, chains = area_postgres.blocking_chains({1: [2], 2: [1]})
    assert roots == [1] and chains  # a deadlock cycle still yields a chain


def test_disk_from_df_and_sizes():
    df = 'Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 1000000 960000 40000 96% /var/lib/postgresql\n'
    di = 'Filesystem Inodes IUsed IFree IUse% Mounted on\n/dev/sda1 1000 10 990 1% /var/lib/postgresql\n'
    fs = area_postgres.parse_df(df, di)
    assert fs['total'] == 1000000 * 1024 and fs['inodes_used'] == 10
    f = area_postgres.evaluate_disk('db1', 'db', [{'datname': 'app', 'bytes': 8 * 1024 * 1024}], '/var/lib/postgresql/data', fs, T)
    assert f['status'] == 'crit' and f['summary'].startswith('data directory /var/lib/postgresql/data 96% used')
    assert 'app 8.0 MiB' in f['summary']
    f = area_postgres.evaluate_disk('db1', 'db', [{'datname': 'app', 'bytes': 1024}], None, None, T, 'no container')
    assert f['status'] == 'ok' and 'not reachable: no container' in f['summary']
    assert area_postgres.parse_df('garbage') is None


def test_connectivity_error_is_crit_one_line():
    f = area_postgres.evaluate_connectivity('db1', 'db', None, None, error='OperationalError: connection refused')
    assert f['status'] == 'crit' and f['summary'] == 'cannot connect: OperationalError: connection refused'


RT = {'memory_warn_pct': 90, 'memory_crit_pct': 98, 'fragmentation_warn': 3.0, 'fragmentation_min_bytes': 100 * 2 ** 20,
      'evicted_keys_warn': 1, 'clients_warn_pct': 80, 'clients_crit_pct': 95, 'blocked_clients_warn': 10,
      'rejected_connections_warn': 1, 'slowlog_warn_ms': 20, 'slowlog_crit_count': 10, 'window_seconds': 900}


def test_redis_memory_full_noeviction_is_crit_with_numbers():
    info = {'used_memory': 67100000, 'maxmemory': 67108864, 'maxmemory_policy': 'noeviction',
            'mem_fragmentation_ratio': 1.1, 'evicted_keys': 0, 'errorstat_OOM': {'count': 3}}
    f = area_redis.evaluate_memory('r1', 'redis', info, RT)
    assert f['status'] == 'crit' and f['evidence']['used_pct'] == 100.0
    assert f['summary'].startswith('64.0 MiB of maxmemory 64.0 MiB used (100%), policy noeviction: writes fail with OOM')
    assert '3 OOM errors since start' in f['summary']


def test_redis_past_oom_errors_alone_do_not_rate():
    info = {'used_memory': 1000000, 'maxmemory': 67108864, 'maxmemory_policy': 'noeviction', 'mem_fragmentation_ratio': 1.0,
            'evicted_keys': 0, 'errorstat_OOM': {'count': 416}}
    f = area_redis.evaluate_memory('r1', 'redis', info, RT)
    assert f['status'] == 'ok' and f['summary'].endswith('416 OOM errors since start')


def test_redis_memory_ok_without_maxmemory_and_small_fragmentation_ignored():
    f = area_redis.evaluate_memory('r1', 'redis', {'used_memory': 1000000, 'maxmemory': 0, 'maxmemory_policy': 'noeviction',
                                                   'mem_fragmentation_ratio': 11.0, 'evicted_keys': 0}, RT)
    assert f['status'] == 'ok' and 'no maxmemory' in f['summary']


def test_redis_clients_slowlog_keyspace():
    f = area_redis.evaluate_clients('r1', 'redis', {'connected_clients': 9000, 'maxclients': 10000, 'blocked_clients': 0,
                                                    'rejected_connections': 0}, RT)
    assert f['status'] == 'warn' and f['summary'].startswith('9000 clients connected (90% of maxclients 10000)')
    now = int(time.time())
    entries = [{'id': 1, 'start_time': now - 5, 'duration': 85000, 'command': 'EVAL "..." 0'},
               {'id': 2, 'start_time': now - 5000, 'duration': 900000, 'command': 'KEYS *'},
               {'id': 3, 'start_time': now - 1, 'duration': 12000, 'command': 'GET a'}]
    f = area_redis.evaluate_slowlog('r1', 'redis', entries, 3, RT)
    # one isolated slow command under 1 s is noise: in the evidence and the summary, not rated
    assert f['status'] == 'ok' and 'one isolated slow command (85 ms: EVAL "..." 0), under 1000 ms' in f['summary'], f
    entries.append({'id': 4, 'start_time': now - 2, 'duration': 60000, 'command': 'EVAL "..." 0'})
    f = area_redis.evaluate_slowlog('r1', 'redis', entries, 4, RT)
    assert f['status'] == 'warn' and f['summary'] == '2 commands slower than 20 ms in the window; slowest 85 ms: EVAL "..." 0'
    entries[:] = [{'id': 5, 'start_time': now - 2, 'duration': 1500000, 'command': 'KEYS *'}]
    assert area_redis.evaluate_slowlog('r1', 'redis', entries, 1, RT)['status'] == 'warn'  # one, but over a second
    assert area_redis.evaluate_slowlog('r1', 'redis', [], 0, RT)['status'] == 'ok'
    f = area_redis.evaluate_keyspace('r1', 'redis', {'db0': {'keys': 34, 'expires': 30}, 'keyspace_hits': 90, 'keyspace_misses': 10})
    assert f['summary'] == '34 keys: db0 34 keys (30 with TTL); hit rate 90%'


def test_redis_slowlog_monitoring_scrape_is_noise_not_a_symptom():
    """A fresh clone's healthy-lab test failed once: the Redis exporter's own `INFO everything` (21 ms) rated Redis."""
    now = int(time.time())
    entries = [{'id': 7, 'start_time': now - 3, 'duration': 21000, 'command': 'INFO everything',
                'client_address': '127.0.0.1:50312', 'client_name': 'redis_exporter'},
               {'id': 6, 'start_time': now - 9, 'duration': 30000, 'command': 'CONFIG GET maxmemory'},
               {'id': 5, 'start_time': now - 9, 'duration': 25000, 'command': 'slowlog get 10'}]
    f = area_redis.evaluate_slowlog('r1', 'redis', entries, 3, RT)
    assert f['status'] == 'ok', f
    assert '3 of them monitoring/admin commands' in f['summary']
    assert [e['id'] for e in f['evidence']['entries']] == [7, 6, 5]  # kept as evidence
    entries.append({'id': 8, 'start_time': now - 1, 'duration': 85000, 'command': 'EVAL "..." 0'})
    entries.append({'id': 9, 'start_time': now - 1, 'duration': 40000, 'command': 'HGETALL x',
                    'client_name': 'redis_exporter'})  # a monitoring client's entry: noise whatever the command
    f = area_redis.evaluate_slowlog('r1', 'redis', entries, 5, RT)
    assert f['status'] == 'ok' and 'one isolated slow command (85 ms' in f['summary'], f
    entries.append({'id': 10, 'start_time': now - 1, 'duration': 95000, 'command': 'EVAL "..." 0'})
    f = area_redis.evaluate_slowlog('r1', 'redis', entries, 6, RT)
    assert f['status'] == 'warn' and f['summary'].endswith('slowest 95 ms: EVAL "..." 0')
