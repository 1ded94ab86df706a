"""Zero install on managed hosts: the fleet's PostgreSQL and Redis hosts without psycopg2 and redis-py.

The fleet hosts are Debian containers whose image carries postgresql-15 (with psql) and redis-server (with
redis-cli) but not the Python client libraries: playbooks/prepare.yml installs python3-psycopg2 and
python3-redis (the `fleet` fixture runs it). Here they are removed again with apt-get, the way a production host
that may not get new packages looks, and triage runs with the default client (auto): every PostgreSQL and
Redis finding is read through psql / redis-cli (evidence.client cli) and each fleet fault is still diagnosed;
a stopped PostgreSQL unit is "Database unreachable" with the restart as first action. With psql and
redis-cli hidden too (moved aside, put back after), each host gets one finding per area and the console one
line per host naming both ways to fix it. prepare.yml puts the libraries back for the other tests.
"""
import contextlib
import json

import pytest

import fleet_lab
from fleet_lab import FleetEnv, fleet_run, ssh
from test_fleet_triage import assert_no_secrets, load

LIBRARIES = (('db-1', 'python3-psycopg2', 'psycopg2'), ('cache-1', 'python3-redis', 'redis'))
# the CLIs of the hosts (psql: Debian's wrapper and the versioned binary it runs)
CLIS = (('db-1', '/usr/bin/psql'), ('db-1', '/usr/lib/postgresql/15/bin/psql'), ('cache-1', '/usr/bin/redis-cli'))
HIDDEN = '.zero-install-test-hidden'


@pytest.fixture(scope='module')
def no_libraries(fleet):
    """The fleet with psycopg2 and redis-py removed from db-1 and cache-1 (the fleet lock held throughout)."""
    with fleet_lab.fleet_lock():
        try:
            for host, package, module in LIBRARIES:
                ssh(host, 'apt-get remove -y -q %s >/dev/null 2>&1; python3 -c "import %s" 2>/dev/null && exit 1 || true'
                    % (package, module))
                assert ssh(host, 'python3 -c "import %s" >/dev/null 2>&1 || echo missing' % module).strip() == 'missing'
            yield fleet
        finally:
            res = fleet_run('playbooks/prepare.yml', timeout=600)
            assert res.rc == 0, res


@contextlib.contextmanager
def clis_hidden():
    try:
        for host, path in CLIS:
            ssh(host, 'test ! -e {0} || mv {0} {0}{1}'.format(path, HIDDEN))
        yield
    finally:
        for host, path in CLIS:
            ssh(host, 'test ! -e {0}{1} || mv {0}{1} {0}'.format(path, HIDDEN))


@contextlib.contextmanager
def unit_stopped(host, unit):
    try:
        ssh(host, 'systemctl stop %s' % unit)
        yield
    finally:
        ssh(host, 'systemctl start %s' % unit)
        ssh(host, 'for i in $(seq 30); do runuser -u postgres -- psql -p %d -X -q -c "select 1" >/dev/null 2>&1 && exit 0;'
                  ' sleep 1; done; exit 1' % FleetEnv.db_port)


def triage(incident, **extra):
    res = fleet_run('playbooks/triage.yml', dict(incident['vars'], **extra), timeout=400)
    assert res.rc == 0, res
    assert 'Traceback' not in res.stdout and 'MODULE FAILURE' not in res.stdout
    return res, load(incident)


def data_store_findings(out):
    """The checks that need a client (pg.log reads the server's log file and needs none: server_log())."""
    return [f for f in out['findings'] if f['check'].startswith(('pg.', 'redis.')) and f['check'] != 'pg.log']


def server_log(out):
    """pg.log of db-1: read from the log file whatever client the host has."""
    found = [f for f in out['findings'] if f['check'] == 'pg.log']
    assert [f['host'] for f in found] == ['db-1'], found
    assert found[0]['status'] != 'unknown' and found[0]['evidence']['source'].startswith('/var/log/postgresql/'), found
    return found[0]


FAULTS = [
    # fault, acceptable first patterns (as test_fleet_triage), the finding that must be bad
    ('db_lock', {'slow_responses', 'gradual_degradation'}, 'db-1/pg.locks'),
    ('redis_full', {'gradual_degradation', 'partial_failures'}, 'cache-1/redis.memory'),
    ('pool_exhaustion', {'gradual_degradation', 'slow_responses', 'backend_down'}, 'db-1/pg.connections'),
]


@pytest.mark.parametrize('fault_name,patterns,bad', FAULTS, ids=[f[0] for f in FAULTS])
def test_triage_finds_the_fault_through_psql_and_redis_cli(no_libraries, fleet_fault, incident, fault_name, patterns, bad):
    extra = {'postgres_idle_in_transaction_warn_seconds': 1} if fault_name == 'pool_exhaustion' else {}
    with fleet_fault(fault_name):
        res, out = triage(incident, **extra)
    stores = data_store_findings(out)
    assert {f['host'] for f in stores} == {'db-1', 'cache-1'}
    # pg: connectivity, connections, long_queries, locks, disk, replication, vacuum, temp, statements; redis:
    # connectivity, memory, clients, keyspace, persistence, replication, latency, log, slowlog
    assert len(stores) == 18, [(f['host'], f['check'], f['status']) for f in stores]
    server_log(out)
    assert all(f['evidence']['client'] == 'cli' for f in stores), [(f['check'], f['evidence'].get('client')) for f in stores]
    by_key = dict(('%s/%s' % (f['host'], f['check']), f) for f in stores)
    assert by_key[bad]['status'] in ('warn', 'crit'), by_key[bad]
    top = out['diagnosis']['hypotheses'][0]
    assert top['pattern'] in patterns, json.dumps(out['diagnosis']['hypotheses'], indent=1)
    if fault_name == 'db_lock':
        assert by_key['db-1/pg.locks']['evidence']['blocking_pids']
        assert all('UPDATE orders' in b['query'] for b in by_key['db-1/pg.locks']['evidence']['blocked'])
    if fault_name == 'redis_full':  # the prefix sample runs through redis-cli over TLS too
        assert by_key['cache-1/redis.memory']['evidence']['top_prefixes'], by_key['cache-1/redis.memory']
    assert_no_secrets(incident, res)


def test_a_stopped_database_through_psql_is_unreachable_and_the_first_action_restarts_it(no_libraries, incident):
    with unit_stopped('db-1', 'postgresql@15-main.service'):
        res, out = triage(incident)
    conn = [f for f in out['findings'] if f['host'] == 'db-1' and f['check'] == 'pg.connectivity'][0]
    assert conn['status'] == 'crit' and conn['evidence']['client'] == 'cli', conn
    assert conn['summary'].startswith('cannot connect: OperationalError: connection to server'), conn
    hyps = out['diagnosis']['hypotheses']
    db = [h for h in hyps if h['likely_cause'].startswith('Database unreachable')]
    assert db, json.dumps(hyps, indent=1)
    assert 'remediation_action=restart' in db[0]['first_action'] and '-e service=db' in db[0]['first_action'], db[0]
    assert not any(h['likely_cause'].startswith('Readiness degraded') for h in hyps), json.dumps(hyps, indent=1)
    assert_no_secrets(incident, res)


def test_neither_library_nor_cli_is_one_finding_per_area_and_one_console_line_per_host(no_libraries, incident):
    with clis_hidden():
        res = fleet_run('playbooks/investigate.yml', incident['vars'], timeout=400,
                        env={'ANSIBLE_STDOUT_CALLBACK': 'sre.incident_response.oncall'})  # the console
    assert res.rc == 0, res
    out = load(incident)
    stores = data_store_findings(out)
    assert [(f['host'], f['check'], f['status'], f['evidence']['client']) for f in sorted(stores, key=lambda f: f['host'])] == [
        ('cache-1', 'redis.connectivity', 'unknown', 'none'), ('db-1', 'pg.connectivity', 'unknown', 'none')]
    server_log(out)  # the server's own log needs no client
    by_host = dict((f['host'], f) for f in stores)
    for host, library, cli in (('db-1', 'python3-psycopg2', 'postgresql-client'), ('cache-1', 'python3-redis', 'redis-tools')):
        assert library in by_host[host]['summary'] and cli in by_host[host]['summary'], by_host[host]
        lines = [line for line in res.stdout.splitlines() if line.strip().startswith('UNKNOWN %s/' % host)]
        assert len(lines) == 1, res.stdout  # one line for the host, not one per check
        assert library in lines[0] and cli in lines[0], lines
    assert 'Traceback' not in res.stdout
    assert_no_secrets(incident, res)
