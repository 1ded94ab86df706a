"""Unit tests of issue 10's "the first action must fix what the diagnosis names" and the flaky previous image.

- clean_disk finds files deleted but held open (/proc/*/fd) and says how each is freed;
- flush_keys says up front when the evictable keys cannot free enough; raise_maxmemory plans within the host;
- pg.connections names who holds the connections and the diagnosis picks kill_query or restart from that;
- Redis full of unmarked keys: the diagnosis shows the top prefixes and recommends raise_maxmemory;
- verification re-runs the symptom checks of the hypothesis (evidence_of);
- deploy.recent finds the previous image of images created in the same second, and names its source.
"""
import datetime
import os

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import diagnosis as dx
from ansible_collections.sre.incident_response.plugins.module_utils.areas import (
    changes as area_changes,
    postgres as area_postgres,
    redis as area_redis)
from ansible_collections.sre.incident_response.plugins.module_utils import remediation as rem
from ansible_collections.sre.incident_response.plugins.module_utils import remediation_disk as disk

CTX = {'incident_id': 'INC-T-1', 'inventory': 'inventory/lab', 'playbook_dir': 'playbooks', 'backends': ['app-backend'],
       'backend_service': 'backend', 'backend_services': ['backend'],
       'backend_identities': ['backend', 'lab2-app-backend']}
T = {'connections_warn_pct': 80, 'connections_crit_pct': 95, 'idle_in_transaction_warn_seconds': 30,
     'idle_in_transaction_crit_count': 5}
SERVER = {'max_connections': 40, 'reserved_connections': 3}


# --- clean_disk: deleted but open --------------------------------------------------------------

def test_deleted_open_files_are_found_with_pid_process_and_bytes(tmp_path):
    log, blob = tmp_path / 'trace.log', tmp_path / 'store.db'
    handles = []
    for path in (log, blob):
        handle = open(str(path), 'wb')
        handle.write(b'x' * 65536)
        handle.flush()
        os.unlink(str(path))
        handles.append(handle)
    try:
        dev = os.stat(str(tmp_path)).st_dev
        found = {os.path.basename(d['path']): d for d in disk.deleted_open({dev}, disk.DEFAULT_ROTATED, disk.DEFAULT_TEMP,
                                                                           disk.DEFAULT_ACTIVE)}
        assert found['trace.log']['pid'] == os.getpid() and found['trace.log']['size'] == 65536
        assert found['trace.log']['action'] == 'truncate' and found['trace.log']['process']
        assert found['trace.log']['fd_path'] == '/proc/%d/fd/%d' % (os.getpid(), handles[0].fileno())
        assert found['store.db']['action'] == 'restart_holder'  # not a log or temp file: never truncated
        assert not disk.deleted_open({dev + 12345}, disk.DEFAULT_ROTATED, disk.DEFAULT_TEMP, disk.DEFAULT_ACTIVE)
        with open(found['trace.log']['fd_path'], 'r+b') as fd:  # what the apply does
            fd.truncate(0)
        again = [d['path'] for d in disk.deleted_open({dev}, [], [], ['*.log'])]
        assert str(log) not in again  # idempotent: an emptied file is not planned again
    finally:
        for handle in handles:
            handle.close()


# --- Redis -----------------------------------------------------------------------------------

def test_flush_says_up_front_when_it_cannot_free_enough():
    short = rem.flush_sufficiency(67150000, 67108864, 2970, 90)
    assert not short['enough'] and short['sufficiency'].startswith('CANNOT free enough: plans 2.9 KiB of the 6.4 MiB')
    assert 'raise_maxmemory' in short['sufficiency']
    assert rem.flush_sufficiency(67150000, 67108864, 60000000, 90)['enough']
    assert rem.flush_sufficiency(1000, 67108864, 0, 90) == {'enough': True, 'needed_bytes': 0, 'sufficiency': (
        'enough: plans 0 B, 0 B needed to get below 90 % of maxmemory 64.0 MiB')}


def test_raise_maxmemory_plan_fits_the_host_and_never_lowers():
    plan = rem.maxmemory_plan(67150000, 67108864, 8 * 2 ** 30, 75, 0.5)
    assert plan['needed'] and plan['fits'] and plan['new'] >= 67150000 / 0.75 and plan['new'] % 2 ** 20 == 0
    assert not rem.maxmemory_plan(67150000, 67108864, 10 * 2 ** 20, 75, 0.5)['fits']
    assert not rem.maxmemory_plan(67150000, 67108864, None, 75, 0.5)['fits']  # unknown free memory: no promise
    keep = rem.maxmemory_plan(1000000, 67108864, 10 * 2 ** 20)
    assert not keep['needed'] and keep['new'] == 67108864 and keep['fits']
    assert rem.ACTIONS['raise_maxmemory']['role'] == 'redis_maxmemory' and not rem.is_destructive('raise_maxmemory')


def test_top_prefixes_are_marked_by_the_patterns():
    sizes = {'report:snapshot:*': [960, 39390720], 'cache:product:*': [14, 1680], 'session:*': [25, 3400]}
    rows, evictable = area_redis.top_prefixes(sizes, 1000, 1665, ['cache:*'], ['session:*'])
    assert [r['prefix'] for r in rows] == ['report:snapshot:*', 'session:*', 'cache:product:*']
    assert [r['marked'] for r in rows] == ['unmarked', 'protected', 'evictable']
    assert rows[0]['est_bytes'] > rows[0]['sampled_bytes'] and evictable == rows[2]['est_bytes']
    assert area_redis._prefix(b'report:snapshot:17') == 'report:snapshot:*' and area_redis._prefix('k') == '(no prefix)'


def redis_memory(prefixes, evictable):
    return {'host': 'app-redis', 'check': 'redis.memory', 'status': 'crit', 'service': 'redis',
            'summary': '64.0 MiB of maxmemory 64.0 MiB used (100.1%)',
            'evidence': {'used_memory': 67150000, 'maxmemory': 67108864, 'memory_warn_pct': 90,
                         'top_prefixes': prefixes, 'evictable_est_bytes': evictable}}


def test_redis_full_of_unmarked_keys_recommends_raise_maxmemory_and_names_the_prefixes():
    rows = [{'prefix': 'report:snapshot:*', 'est_bytes': 65703720, 'marked': 'unmarked'},
            {'prefix': 'cache:product:*', 'est_bytes': 2802, 'marked': 'evictable'}]
    top = dx.diagnose([redis_memory(rows, 2802)], CTX)['hypotheses'][0]
    assert top['action'] == 'raise_maxmemory' and '-e remediation_action=raise_maxmemory' in top['first_action']
    assert 'report:snapshot:* 62.7 MiB (unmarked)' in top['likely_cause']
    assert top['symptom_checks'] == ['app-redis/redis.memory']
    cache = [{'prefix': 'cache:blob:*', 'est_bytes': 66000000, 'marked': 'evictable'}]
    assert dx.diagnose([redis_memory(cache, 66000000)], CTX)['hypotheses'][0]['action'] == 'flush_keys'


# --- PostgreSQL connection slots ---------------------------------------------------------------

def session(pid, app, state='idle in transaction', user='app', age=120.0, addr='127.0.0.1'):
    return {'pid': pid, 'usename': user, 'application_name': app, 'client_addr': addr, 'state': state,
            'state_age_s': age, 'xact_age_s': age, 'query_age_s': age, 'backend_type': 'client backend', 'query': 'SELECT 1'}


def foreign_connections():
    activity = [session(i, 'batch-exporter') for i in range(30)] + [session(100 + i, 'app-backend', 'idle', age=5) for i in range(3)]
    f = area_postgres.evaluate_connections('app-db', 'db', SERVER, activity, T)
    holders = f['evidence']['holders']
    assert holders[0] == {'application_name': 'batch-exporter', 'role': 'app', 'client_addr': '127.0.0.1',
                          'state': 'idle in transaction', 'count': 30, 'oldest_s': 120, 'past_threshold': 30,
                          'pids': list(range(10))}
    assert holders[1]['application_name'] == 'app-backend' and holders[1]['past_threshold'] == 0
    assert 'held by: batch-exporter (role app, 127.0.0.1) 30 idle in transaction, oldest 120 s' in f['summary']
    return f


def test_pg_connections_names_who_holds_them():
    assert foreign_connections()['status'] == 'crit'


def test_foreign_sessions_get_kill_query_and_backend_sessions_get_restart():
    foreign = foreign_connections()
    top = dx.diagnose([foreign], CTX)['hypotheses'][0]
    assert top['action'] == 'kill_query' and top['service'] == 'db'
    assert "-e pg_terminate_states='idle in transaction'" in top['first_action']
    assert '-e pg_terminate_application_names=batch-exporter' in top['first_action']
    assert '-e pg_terminate_min_age=30' in top['first_action'] and 'not the backend' in top['likely_cause']
    assert dx.evidence_of(dx.diagnose([foreign], CTX), 'kill_query', 'db') == [{'host': 'app-db', 'check': 'pg.connections'}]
    own = area_postgres.evaluate_connections('app-db', 'db', SERVER, [session(i, 'app-backend') for i in range(5)], T)
    top = dx.diagnose([own], CTX)['hypotheses'][0]
    assert top['action'] == 'restart' and top['service'] == 'backend'
    assert dx.evidence_of(dx.diagnose([own], CTX), 'restart', 'backend') == [{'host': 'app-db', 'check': 'pg.connections'}]
    assert dx.is_backend_session('app-backend', CTX) and not dx.is_backend_session('batch-exporter', CTX)
    assert not dx.is_backend_session('', CTX)


def test_evidence_of_leaves_out_changes_and_other_actions():
    doc = {'hypotheses': [
        {'rank': 1, 'action': 'rollback', 'service': 'backend', 'evidence': ['app-backend/deploy.recent', 'app-backend/app.errors']},
        {'rank': 2, 'action': 'kill_query', 'service': 'db', 'evidence': ['app-db/pg.locks', 'app-db/pg.long_queries'],
         'symptom_checks': ['app-db/pg.locks']}]}
    assert dx.evidence_of(doc, 'rollback', 'backend') == [{'host': 'app-backend', 'check': 'app.errors'}]
    assert dx.evidence_of(doc, 'kill_query', 'db') == [{'host': 'app-db', 'check': 'pg.locks'}]
    assert dx.evidence_of(doc, 'restart', 'backend') == [] and dx.evidence_of({}, 'restart') == []


# --- deploy.recent: the previous image --------------------------------------------------------

SAME_SECOND = [{'Id': 'sha256:new', 'RepoTags': ['app-backend:1.1.0'], 'Created': 1764592481},
               {'Id': 'sha256:old', 'RepoTags': ['app-backend:1.0.0'], 'Created': 1764592481}]


def test_previous_image_of_images_created_in_the_same_second():
    prev, how, dummy = area_changes.previous_image('app-backend:1.1.0', 'sha256:new', {}, SAME_SECOND, 1764592481)
    assert prev == 'app-backend:1.0.0' and how == 'version order of the local tags of app-backend (built in the same second)'


def test_previous_image_sources_in_order():
    history = [(3, 'app-backend:1.1.0'), (2, 'app-backend:0.9.0'), (1, 'app-backend:1.0.0')]
    assert area_changes.previous_image('app-backend:1.1.0', 'sha256:new', {}, SAME_SECOND, None, history)[:2] == (
        'app-backend:0.9.0', 'engine events (the image the container ran before)')
    rolled = {'sre.incident_response.rolled_back_from': 'app-backend:1.2.0'}
    assert area_changes.previous_image('app-backend:1.1.0', 'sha256:new', rolled, SAME_SECOND, None, history)[0] == 'app-backend:1.2.0'
    # tags without versions: the creation time at full precision decides
    images = [{'Id': 'sha256:b', 'RepoTags': ['app:blue'], 'Created': 100}, {'Id': 'sha256:g', 'RepoTags': ['app:green'], 'Created': 100}]
    at = {'sha256:b': datetime.datetime(2026, 12, 1, 12, 34, 41, 30000), 'sha256:g': datetime.datetime(2026, 12, 1, 12, 34, 41, 960000)}
    prev, how, dummy = area_changes.previous_image('app:green', 'sha256:g', {}, images, 100, None, at.get)
    assert prev == 'app:blue' and how.startswith('creation time (full precision)')
    assert area_changes.previous_image('app:blue', 'sha256:b', {}, images, 100, None, at.get)[0] is None


def test_deploy_finding_says_which_source_found_the_previous_image():
    info = {'Config': {'Image': 'app-backend:1.1.0', 'Labels': {}}, 'Image': 'sha256:new', 'Created': '2026-12-01T12:40:00Z',
            'State': {'StartedAt': '2026-12-01T12:40:01Z'}}
    now = datetime.datetime(2026, 12, 1, 12, 42, tzinfo=datetime.timezone.utc)
    item = area_changes.deploy_item('app-backend', info, {'Created': '2026-12-01T12:34:41.96Z'}, SAME_SECOND, now, 900)
    f = area_changes.evaluate_deploys('app-backend', [('backend', item)], '15m')
    assert 'previous app-backend:1.0.0 (from version order of the local tags of app-backend' in f['summary']


HOSTILE_NAMES = ["{{ lookup('pipe','id > /tmp/x') }}", "$(touch /tmp/x)", "`id`", "a,b", "x' -e apply=true '",
                 "{% set x = 1 %}", "<script>", "batch*"]


@pytest.mark.parametrize('name', HOSTILE_NAMES)
def test_a_client_named_application_never_reaches_the_printed_command(name):
    """A person pastes NEXT into a shell and ansible-playbook templates every -e value: shell quoting does not stop
    {{ lookup('pipe', ...) }}. Names that are not plain tokens are never printed; the sessions are still selected."""
    activity = [session(i, name) for i in range(30)] + [session(100 + i, 'app-backend', 'idle', age=5) for i in range(3)]
    f = area_postgres.evaluate_connections('app-db', 'db', SERVER, activity, T)
    top = dx.diagnose([f], CTX)['hypotheses'][0]
    assert top['action'] == 'kill_query', top
    for piece in ('{{', '{%', '$(', '`', 'lookup', '<script>', 'a,b', 'batch*', "x'"):
        assert piece not in top['first_action'] and piece not in top['then'], top['first_action']
    assert 'apply=true' not in top['first_action']
    assert top['first_action'].endswith("-e service=db -e pg_terminate_states='idle in transaction' "
                                        "-e pg_terminate_roles=app -e pg_terminate_min_age=30"), top['first_action']


def test_commands_refuse_values_that_are_not_plain_tokens():
    cmd = dx.Commands(incident_id='INC-20261204-0300-abcd', inventory='inventory/lab')
    assert cmd.remediate('restart', "{{ 7*7 }}") == cmd.investigate('all')
    assert cmd.remediate('kill_query', 'db', extra=[('pg_terminate_roles', ['app', '$(id)'])]) == cmd.investigate('all')
    assert cmd.remediate('kill_query', 'db', extra=[('pg_terminate_pids', [1, 2])]).endswith('-e pg_terminate_pids=1,2')
    assert dx.plain_value('idle in transaction') and not dx.plain_value('') and not dx.plain_value('a' * 121)


def test_next_actions_name_what_remains_after_an_action_worked():
    doc = {'hypotheses': [
        {'rank': 1, 'action': 'kill_query', 'service': 'db', 'likely_cause': 'lock', 'first_action': 'kill'},
        {'rank': 2, 'action': None, 'service': 'payments', 'likely_cause': 'dependency', 'first_action': 'investigate'},
        {'rank': 3, 'action': 'restart', 'service': 'redis', 'likely_cause': 'Redis unreachable', 'first_action': 'restart redis'},
        {'rank': 4, 'action': 'kill_query', 'service': 'db', 'likely_cause': 'slow queries', 'first_action': 'kill again'}]}
    assert [n['first_action'] for n in dx.next_actions(doc, 'kill_query', 'db')] == ['restart redis']
    assert [n['first_action'] for n in dx.next_actions(doc, 'restart', 'redis')] == ['kill', 'kill again']
    assert dx.next_actions({}, 'restart', 'backend') == []
