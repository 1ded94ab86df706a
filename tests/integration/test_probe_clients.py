"""Integration: the postgres and redis areas through psql / redis-cli (client: cli) against the real lab.

The same lab state is probed twice, once with the libraries (client: library, psycopg2 and redis-py in the
controller's venv: the lab's hosts are local) and once with the command-line clients (client: cli, the machine's
psql and redis-cli; scripts/setup-system.sh installs them), and the findings must agree: healthy, with db_lock
and redis_full, with pool_exhaustion, and with the database and Redis stopped (where the diagnosis must say
Database unreachable -> restart, as with the library).
"""
import contextlib
import json
import os
import shutil
import time

import pytest

from conftest import LabEnv, _ready, docker, lab_lock
from test_investigate import assert_no_secrets, investigate

pytestmark = pytest.mark.skipif(not (shutil.which('psql') and shutil.which('redis-cli')),
                                reason='psql and redis-cli are needed (scripts/setup-system.sh installs them)')

CHECKS = ('pg.connectivity', 'pg.connections', 'pg.long_queries', 'pg.locks', 'pg.disk', 'pg.replication', 'pg.vacuum',
          'pg.temp', 'pg.statements',
          'redis.connectivity', 'redis.memory', 'redis.clients', 'redis.slowlog', 'redis.keyspace', 'redis.persistence',
          'redis.replication', 'redis.latency', 'redis.log')


def both(run_playbook, incident, area='all'):
    """{client: {host/check: finding}} of the same lab state read with each client (library first)."""
    out = {}
    for client in ('library', 'cli'):
        inc = dict(incident, id=incident['id'] + '-' + client, path=incident['path'] + '-' + client)
        inc['vars'] = dict(incident['vars'], incident_id=inc['id'])
        _res, findings = investigate(run_playbook, inc, area=area,
                                     extra={'postgres_client': client, 'redis_client': client})
        out[client] = dict((k, f) for k, f in findings.items() if f['check'] in CHECKS)
        assert_no_secrets(inc, LabEnv)
    return out


def assert_same(found):
    lib, cli = found['library'], found['cli']
    assert sorted(lib) == sorted(cli), (sorted(lib), sorted(cli))
    assert len(lib) == len(CHECKS)
    for key in lib:
        assert lib[key]['evidence']['client'] == 'library', lib[key]
        assert cli[key]['evidence']['client'] == 'cli', cli[key]
        assert lib[key]['status'] == cli[key]['status'], '%s: library %s %r, cli %s %r' % (
            key, lib[key]['status'], lib[key]['summary'], cli[key]['status'], cli[key]['summary'])
        # the same evidence keys (values of timings and counters move between the two reads)
        assert sorted(lib[key]['evidence']) == sorted(cli[key]['evidence']), key


def test_cli_gives_the_library_findings_on_the_healthy_lab(lab, run_playbook, incident):
    with lab_lock():
        found = both(run_playbook, incident)
    assert_same(found)
    lib, cli = found['library'], found['cli']
    assert all(f['status'] == 'ok' for f in cli.values()), json.dumps(cli, indent=1)
    for key in ('app-db/pg.connections', 'app-redis/redis.memory'):
        for name in ('max_connections', 'maxmemory', 'maxmemory_policy'):
            if name in lib[key]['evidence']:
                assert lib[key]['evidence'][name] == cli[key]['evidence'][name]
    assert cli['app-db/pg.connectivity']['summary'].startswith('accepting connections')
    assert cli['app-redis/redis.connectivity']['summary'].startswith('PONG')
    assert lib['app-db/pg.disk']['evidence']['databases'].keys() == cli['app-db/pg.disk']['evidence']['databases'].keys()


def test_cli_gives_the_library_findings_with_db_lock_and_redis_full(fault, run_playbook, incident):
    with fault('db_lock'), fault('redis_full'):
        time.sleep(32)  # past the 30 s lock-wait crit and long-query thresholds: both reads rate the same
        found = both(run_playbook, incident)
    assert_same(found)
    lib, cli = found['library'], found['cli']
    locks = cli['app-db/pg.locks']
    assert locks['status'] == 'crit', locks
    assert locks['evidence']['blocking_pids'] == lib['app-db/pg.locks']['evidence']['blocking_pids']
    assert sorted(locks['evidence']['blocked_pids']) == sorted(lib['app-db/pg.locks']['evidence']['blocked_pids'])
    assert all('UPDATE orders' in b['query'] for b in locks['evidence']['blocked'])
    assert cli['app-db/pg.long_queries']['status'] in ('warn', 'crit')
    mem = cli['app-redis/redis.memory']
    assert mem['status'] == 'crit' and mem['evidence']['used_pct'] >= 98, mem
    # the prefix sample (SCAN + MEMORY USAGE through redis-cli) names what fills Redis, as the library does
    assert mem['evidence']['top_prefixes'][0]['prefix'] == 'cache:blob:*'
    assert [r['prefix'] for r in mem['evidence']['top_prefixes']][:1] == \
        [r['prefix'] for r in lib['app-redis/redis.memory']['evidence']['top_prefixes']][:1]


def test_cli_gives_the_library_holders_with_vacuum_held(fault, run_playbook, incident):
    """issue 21: the xmin horizon holders come from the same query round on both paths."""
    with fault('vacuum_held'):
        found = both(run_playbook, incident, area='db')
    lib, cli = found['library'], found['cli']
    for f in (lib['app-db/pg.vacuum'], cli['app-db/pg.vacuum']):
        assert f['status'] == 'warn' and f['evidence']['held_back'] is True, f
    assert sorted(lib['app-db/pg.vacuum']['evidence']) == sorted(cli['app-db/pg.vacuum']['evidence'])
    holders = [[(h['kind'], h['pid'], h['user'], h['application'], h['state'], h['past_threshold'])
                for h in f['evidence']['xmin_holders'] if h['application'] == 'report-export']
               for f in (lib['app-db/pg.vacuum'], cli['app-db/pg.vacuum'])]
    assert holders[0] == holders[1] and len(holders[0]) == 1, holders
    assert sorted(lib['app-db/pg.vacuum']['evidence']['xmin_holders'][0]) == \
        sorted(cli['app-db/pg.vacuum']['evidence']['xmin_holders'][0])


def test_cli_gives_the_library_findings_with_pool_exhaustion(fault, run_playbook, incident):
    with fault('pool_exhaustion'):
        time.sleep(32)  # the leaked sessions idle in transaction past the 30 s threshold in both reads
        found = both(run_playbook, incident, area='db')
    lib = dict((k, f) for k, f in found['library'].items() if k.startswith('app-db/'))
    cli = dict((k, f) for k, f in found['cli'].items() if k.startswith('app-db/'))
    assert sorted(lib) == sorted(cli)
    for key in lib:
        assert lib[key]['status'] == cli[key]['status'], (lib[key]['summary'], cli[key]['summary'])
    conns = cli['app-db/pg.connections']
    assert conns['status'] in ('warn', 'crit') and conns['evidence']['client'] == 'cli', conns
    assert len(conns['evidence']['idle_in_transaction']) == len(lib['app-db/pg.connections']['evidence']['idle_in_transaction']) >= 5


@contextlib.contextmanager
def stopped(*containers):
    with lab_lock():
        try:
            docker('stop', '-t', '2', *containers)
            yield
        finally:
            docker('start', *containers)
            deadline = time.monotonic() + 90
            while not _ready() and time.monotonic() < deadline:
                time.sleep(1)


def test_db_and_redis_down_through_the_cli_are_unreachable_and_diagnosed_restart(lab, run_playbook, incident, lab_env):
    with stopped(lab_env.db, lab_env.redis):
        found = both(run_playbook, incident)
        cli_incident = incident['id'] + '-cli'
        res = run_playbook('playbooks/diagnose.yml', dict(incident['vars'], incident_id=cli_incident), timeout=300)
        assert res.rc == 0, res
    assert_same(found)
    cli = found['cli']
    conn = cli['app-db/pg.connectivity']
    assert conn['status'] == 'crit' and conn['summary'].startswith('cannot connect: OperationalError: connection to server')
    assert 'Connection refused' in conn['summary']
    rconn = cli['app-redis/redis.connectivity']
    assert rconn['status'] == 'crit' and 'Connection refused' in rconn['summary'], rconn
    with open(os.path.join(incident['path'] + '-cli', 'diagnosis.json')) as handle:
        diagnosis = json.load(handle)
    causes = [(h['likely_cause'], h.get('first_action') or '') for h in diagnosis['hypotheses']]
    db = [c for c in causes if c[0].startswith('Database unreachable')]
    assert db and 'remediation_action=restart' in db[0][1] and 'service=db' in db[0][1], causes
    assert any(c[0].startswith('Redis unreachable') for c in causes), causes
    assert not any(c[0].startswith('Readiness degraded') for c in causes), causes
