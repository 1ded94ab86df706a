"""Unit tests of the remediation safety model and target selection (pure logic, no services)."""
import os
import time

import pytest

from ansible_collections.sre.incident_response.plugins.module_utils import remediation as rem
from ansible_collections.sre.incident_response.plugins.module_utils import remediation_disk as disk
from ansible_collections.sre.incident_response.plugins.module_utils import remediation_pg as pg
from ansible_collections.sre.incident_response.plugins.modules import docker_rollback


# --- the gate -----------------------------------------------------------------------------

def gate(**kw):
    args = dict(action='kill_query', service='db', apply=True, approved_by='alice', reason='blocks checkout',
                launcher='bob', incident_id='INC-1')
    args.update(kw)
    return rem.decide(**args)


def test_without_apply_it_only_plans():
    out = gate(apply=False)
    assert out['mode'] == 'plan' and not out['apply'] and not out['refused']
    assert 'apply=true' in out['msg']


def test_check_mode_plans_even_with_a_full_approval():
    out = gate(check_mode=True)
    assert out['mode'] == 'plan' and not out['apply'] and not out['refused']


def test_apply_without_approver_is_refused():
    out = gate(approved_by='')
    assert out['refused'] and not out['apply'] and 'approved_by is missing' in out['msg']


def test_apply_without_reason_or_change_is_refused():
    out = gate(reason='', change_ref='')
    assert out['refused'] and 'approval_reason or change_ref' in out['msg']
    assert gate(reason='', change_ref='CHG-1')['apply']


@pytest.mark.parametrize('action', ['kill_query', 'flush_keys', 'clean_disk'])
def test_four_eyes_for_destructive_classes(action):
    out = gate(action=action, approved_by='Bob@example.com', launcher='bob')
    assert out['refused'] and 'four-eyes' in out['msg']
    assert gate(action=action, approved_by='bob', launcher='bob', allow_self_approval=True)['apply']


@pytest.mark.parametrize('action', ['restart', 'rollback', 'apply_cert'])
def test_non_destructive_actions_may_be_self_approved(action):
    assert gate(action=action, approved_by='bob', launcher='bob')['apply']


def test_budget_is_enforced():
    assert gate(action='restart', budget=3, used=2)['apply']
    out = gate(action='restart', budget=3, used=3)
    assert out['refused'] and 'budget exhausted' in out['msg']


def test_unknown_action_raises():
    with pytest.raises(ValueError):
        rem.decide('reboot_everything')


def test_count_actions_counts_changing_events_of_the_action_and_service():
    events = [
        {'kind': 'action', 'data': {'action': 'restart', 'service': 'backend', 'changed': True}},
        {'kind': 'action', 'data': {'action': 'restart', 'service': 'backend', 'changed': False}},
        {'kind': 'action', 'data': {'action': 'restart', 'service': 'other', 'changed': True}},
        {'kind': 'plan', 'data': {'action': 'restart', 'service': 'backend', 'changed': True}},
        {'kind': 'action', 'data': {'action': 'rollback', 'service': 'backend', 'changed': True}},
    ]
    assert rem.count_actions(events, 'restart', 'backend') == 1
    assert rem.count_actions(events, 'restart') == 2


def test_approval_token_is_single_use_identity():
    t1 = rem.approval_token('INC-1', 'restart', 'backend', 'alice', 'pool', '')
    assert t1 == rem.approval_token('INC-1', 'restart', 'backend', 'alice', 'pool', '')
    assert t1 != rem.approval_token('INC-1', 'restart', 'backend', 'alice', 'pool', 'CHG-2')
    events = [{'kind': 'action', 'ts': 'x', 'data': {'approval_id': t1, 'changed': True}}]
    assert rem.find_action(events, t1)['ts'] == 'x'
    assert rem.find_action(events, 'other') is None


# --- Redis patterns -------------------------------------------------------------------------

def test_redis_glob_semantics():
    assert rem.redis_glob_to_regex('cache:*').match('cache:product:1')
    assert not rem.redis_glob_to_regex('cache:*').match('session:abc')
    assert rem.redis_glob_to_regex('h?llo').match('hallo')
    assert rem.redis_glob_to_regex('h[ae]llo').match('hello') and not rem.redis_glob_to_regex('h[ae]llo').match('hillo')
    assert rem.redis_glob_to_regex('h[^e]llo').match('hallo') and not rem.redis_glob_to_regex('h[^e]llo').match('hello')
    assert rem.redis_glob_to_regex('a\\*b').match('a*b') and not rem.redis_glob_to_regex('a\\*b').match('axb')
    assert rem.redis_glob_to_regex('x.y').match('x.y') and not rem.redis_glob_to_regex('x.y').match('xzy')


def test_pattern_errors_refuse_broad_and_overlapping_patterns():
    assert rem.pattern_errors(['cache:*'], ['session:*']) == []
    assert rem.pattern_errors([], ['session:*'])
    assert any('literal prefix' in e for e in rem.pattern_errors(['*'], ['session:*']))
    assert any('overlaps' in e for e in rem.pattern_errors(['sess*'], ['session:*']))
    assert any('overlaps' in e for e in rem.pattern_errors(['session:old:*'], ['session:*']))


# --- image selection ------------------------------------------------------------------------

IMAGES = [{'tag': '1.0.0', 'id': 'a', 'created': '1'}, {'tag': '1.1.0', 'id': 'b', 'created': '2'},
          {'tag': '1.10.0', 'id': 'c', 'created': '3'}, {'tag': 'latest', 'id': 'c', 'created': '3'}]


def test_previous_tag_is_the_highest_version_below():
    assert rem.pick_previous_tag('1.10.0', IMAGES)[0] == '1.1.0'
    assert rem.pick_previous_tag('1.1.0', IMAGES)[0] == '1.0.0'
    assert rem.pick_previous_tag('1.0.0', IMAGES)[0] is None


def test_previous_tag_by_creation_time_for_unversioned_tags():
    images = [{'tag': 'blue', 'id': 'a', 'created': '1'}, {'tag': 'green', 'id': 'b', 'created': '2'}]
    assert rem.pick_previous_tag('green', images) == ('blue', 'newest local image created before green')


def test_split_image():
    assert rem.split_image('app-backend:1.1.0') == ('app-backend', '1.1.0')
    assert rem.split_image('registry.example.com:5000/team/app:2.0') == ('registry.example.com:5000/team/app', '2.0')
    assert rem.split_image('registry.example.com:5000/team/app') == ('registry.example.com:5000/team/app', 'latest')
    assert rem.split_image('app@sha256:abc') == ('app', None)


def test_hostname_matches():
    assert rem.hostname_matches('api.lab.test', ['api.lab.test'])
    assert rem.hostname_matches('api.lab.test', ['*.lab.test'])
    assert not rem.hostname_matches('a.b.lab.test', ['*.lab.test'])
    assert not rem.hostname_matches('lab.test', ['*.lab.test'])
    assert not rem.hostname_matches('api.example.com', ['api.lab.test'])


# --- PostgreSQL session selection -----------------------------------------------------------

def row(pid, **kw):
    base = dict(pid=pid, usename='app', datname='app', application_name='x', backend_type='client backend',
                state='active', query='SELECT 1', wait_event_type=None, query_age=100.0, xact_age=100.0,
                state_age=100.0, superuser=False, replication=False, blocked_by=[], own=False,
                backend_start='t', xact_start='x', query_start='q')
    base.update(kw)
    return base


def select(rows, **kw):
    args = dict(roles=['app'], databases=['app'], min_age=30)
    args.update(kw)
    targets, skipped = pg.select_sessions(pg.annotate(rows), **args)
    return [r['pid'] for r in targets], dict((r['pid'], r['reason']) for r in skipped)


def test_db_lock_scenario():
    rows = [
        row(1, application_name='report-job', query='SELECT pg_sleep(3600)'),
        row(2, application_name='checkout-worker-1', blocked_by=[1], wait_event_type='Lock'),
        row(3, application_name='checkout-worker-2', blocked_by=[1], wait_event_type='Lock'),
        row(4, usename='analyst', application_name='analytics-nightly'),
        row(5, usename=None, backend_type='autovacuum launcher', state=None),
        row(6, usename='postgres', superuser=True),
        row(7, own=True),
        row(8, backend_type='walsender', replication=True),
        row(9, state='idle', xact_age=None, state_age=500.0),
        row(10, state='idle in transaction', application_name='app-backend'),
    ]
    targets, skipped = select(rows)
    assert targets == [1, 10]
    assert 'waits for a lock' in skipped[2] and 'waits for a lock' in skipped[3]
    assert 'role analyst' in skipped[4]
    assert 'background' in skipped[5] and 'background' in skipped[8]
    assert 'superuser' in skipped[6]
    assert 'own session' in skipped[7]
    assert 'state idle' in skipped[9]


def chain_rows():
    """A holds table a; B holds table b in an open transaction and waits for a; C waits for b."""
    return [row(1, application_name='chain-a', query='SELECT pg_sleep(3600)'),
            row(2, application_name='chain-b', query='SELECT count(*) FROM orders', blocked_by=[1],
                wait_event_type='Lock', xact_age=99.0),
            row(3, application_name='chain-c', query='UPDATE products SET price = price', blocked_by=[2],
                wait_event_type='Lock', xact_age=98.0),
            row(4, application_name='unrelated-holder', query='SELECT 1'),
            row(5, application_name='unrelated-waiter', blocked_by=[4], wait_event_type='Lock')]


def test_a_pinned_root_stands_for_its_whole_lock_chain():
    # triage pins the root (A); ending A alone lets B take a and keep holding b: C stays blocked
    targets, skipped = select(chain_rows(), pids=[1])
    assert targets == [1, 2]
    assert 'waits for a lock' in skipped[3]
    assert 'approved list' in skipped[4] and 'approved list' in skipped[5]
    # pinning a middle session reaches up to the root too
    assert select(chain_rows(), pids=[2])[0] == [1, 2]
    # the same safety filters: a chain member of another role or younger than min_age is not ended
    rows = chain_rows()
    rows[1].update(usename='analyst')
    assert select(rows, pids=[1])[0] == [1]
    rows = chain_rows()
    rows[1].update(xact_age=3.0, query_age=3.0)
    assert select(rows, pids=[1])[0] == [1]
    rows = chain_rows()
    rows[1].update(superuser=True)
    assert select(rows, pids=[1])[0] == [1]


def test_the_plan_shows_the_whole_lock_tree():
    targets, skipped = pg.select_sessions(pg.annotate(chain_rows()), roles=['app'], databases=['app'], pids=[1])
    pub = [pg.public(r) for r in targets + skipped]
    lines = pg.tree_lines(pub, [pg.public(r) for r in targets])
    assert lines[0].startswith('lock tree')
    assert lines[1].startswith('  * pid 1 ') and '(ended)' in lines[1]
    assert lines[2].startswith('    * pid 2 ') and '(ended)' in lines[2]
    assert lines[3].startswith('      - pid 3 ') and '(waits)' in lines[3]
    assert len(lines) == 4  # the unrelated tree (4 <- 5) is not shown


def test_a_young_lock_holder_is_left_out_and_the_plan_says_why():
    rows = [row(1, application_name='report-job', query='SELECT pg_sleep(3600)', xact_age=16.4, query_age=16.4),
            row(2, application_name='checkout-worker-1', blocked_by=[1], wait_event_type='Lock', xact_age=15.0),
            row(3, usename='analyst', application_name='analytics-nightly')]
    targets, skipped = pg.select_sessions(pg.annotate(rows), roles=['app'], databases=['app'], min_age=30)
    assert targets == []
    lines = pg.no_target_lines([pg.public(r) for r in skipped])
    assert lines[0] == 'nothing to do: no session matches the filters; left out:'
    assert len(lines) == 2 and 'pid 1 ' in lines[1] and 'blocking=[2]' in lines[1]
    assert lines[1].endswith('-- younger than 30s'), lines
    # the first action of the diagnosis pins the holder and its age: the plan selects it
    assert select(rows, pids=[1], min_age=16)[0] == [1]
    assert pg.no_target_lines([pg.public(r) for r in pg.select_sessions(
        pg.annotate([row(4, usename='analyst')]), roles=['app'], databases=['app'])[1]]) == []


def test_min_age_pids_and_application_filters():
    rows = [row(1, xact_age=5.0, query_age=5.0), row(2, application_name='cron-job'), row(3)]
    assert select(rows)[0] == [2, 3]
    assert select(rows, pids=[3])[0] == [3]
    assert select(rows, exclude_application_names=['cron-*'])[0] == [3]
    assert select(rows, application_names=['cron-*'])[0] == [2]
    assert select(rows, min_age=0)[0] == [1, 2, 3]


def test_superusers_only_when_allowed_and_blocker_outside_states():
    rows = [row(1, usename='postgres', superuser=True), row(2, state='idle in transaction'), row(3, blocked_by=[2], wait_event_type='Lock')]
    assert select(rows, roles=['app', 'postgres'], states=['active'])[0] == [2]
    assert select(rows, roles=['app', 'postgres'], states=['active'], allow_superuser=True)[0] == [1, 2]
    assert select(rows, states=['active'], include_blockers=False)[0] == []


def test_public_redacts_and_truncates_queries():
    out = pg.public(dict(row(1, query="ALTER ROLE app PASSWORD 'hunter2secret'"), age=1.0))
    assert 'hunter2secret' not in out['query']
    assert len(pg.public(dict(row(1, query='x' * 1000), age=1.0))['query']) <= pg.QUERY_PREVIEW


def test_identity_distinguishes_a_reused_pid():
    assert pg.identity(row(1)) != pg.identity(row(1, backend_start='later'))


# --- disk cleanup selection ----------------------------------------------------------------

def test_root_error_refuses_system_directories(tmp_path):
    assert disk.root_error('/')
    assert disk.root_error('/var')
    assert disk.root_error('/var/lib/docker/volumes')
    assert disk.root_error('relative/path')
    assert disk.root_error(str(tmp_path / 'missing'))
    assert disk.root_error(str(tmp_path)) is None


def test_classify():
    args = (disk.DEFAULT_ROTATED, disk.DEFAULT_TEMP, disk.DEFAULT_ACTIVE)
    assert disk.classify('app.log.1', *args) == 'rotated'
    assert disk.classify('app.log.2.gz', *args) == 'rotated'
    assert disk.classify('upload-1.tmp', *args) == 'temp'
    assert disk.classify('app.log', *args) == 'active'
    assert disk.classify('data.db', *args) is None


def _file(path, size, age_days):
    path.write_bytes(b'x' * size)
    old = time.time() - age_days * 86400
    os.utime(str(path), (old, old))
    return path


def test_walk_selects_old_rotated_and_temp_truncates_held_open_and_stays_inside(tmp_path):
    root = tmp_path / 'logs'
    (root / 'tmp').mkdir(parents=True)
    outside = tmp_path / 'outside'
    outside.mkdir()
    _file(outside / 'keep.log.1', 10, 30)
    (root / 'escape').symlink_to(outside)
    (root / 'link.log.1').symlink_to(outside / 'keep.log.1')
    _file(root / 'app.log.1', 100, 10)
    _file(root / 'app.log.2', 100, 0)            # too young
    _file(root / 'tmp' / 'upload.tmp', 50, 3)
    active = _file(root / 'app.log', 2000, 0)
    small = _file(root / 'worker.log', 10, 0)
    rotated_open = _file(root / 'held.log.3', 70, 10)
    st_a, st_s, st_r = os.stat(str(active)), os.stat(str(small)), os.stat(str(rotated_open))
    held = {(st_a.st_dev, st_a.st_ino): [42], (st_s.st_dev, st_s.st_ino): [43], (st_r.st_dev, st_r.st_ino): [44]}
    items = disk.walk(str(root), disk.DEFAULT_ROTATED, disk.DEFAULT_TEMP, disk.DEFAULT_ACTIVE, 86400.0, 1000, time.time(), held)
    got = dict((os.path.relpath(i['path'], str(root)), i['action']) for i in items)
    assert got == {'app.log.1': 'delete', 'tmp/upload.tmp': 'delete', 'app.log': 'truncate', 'held.log.3': 'truncate'}
    assert all(not i['path'].startswith(str(outside)) for i in items)


def test_usage_reports_a_file_system(tmp_path):
    u = disk.usage(str(tmp_path))
    assert u['total'] > 0 and 0 <= u['used_percent'] <= 100


# --- the rollback keeps the container's spec -------------------------------------------------

def test_create_body_keeps_the_container_spec_and_leaves_image_defaults_to_the_new_image():
    container = {
        'Id': 'abcdef1234567890',
        'Config': {'Image': 'app:1.1.0', 'Hostname': 'myhost', 'Env': ['PORT=8000', 'DB_PASSWORD=s', 'APP_VERSION=1.1.0', 'PATH=/bin'],
                   'Cmd': ['sh', '-c', 'run'], 'Labels': {'team': 'platform', 'org.opencontainers.image.version': '1.1.0'},
                   'Healthcheck': {'Test': ['CMD', 'curl', 'x']}, 'WorkingDir': '/srv/app'},
        'HostConfig': {'NetworkMode': 'host', 'Memory': 268435456, 'RestartPolicy': {'Name': 'unless-stopped'},
                       'Mounts': [{'Type': 'volume', 'Source': 'logs', 'Target': '/var/log/app'}]},
        'NetworkSettings': {'Networks': {'host': {}}},
    }
    old_image = {'Config': {'Env': ['APP_VERSION=1.1.0', 'PATH=/bin'], 'Cmd': ['sh', '-c', 'run'], 'WorkingDir': '/srv/app',
                            'Labels': {'org.opencontainers.image.version': '1.1.0'}}}
    body = docker_rollback.create_body(container, old_image, 'app:1.0.0', 'app:1.1.0')
    assert body['Image'] == 'app:1.0.0'
    assert body['Env'] == ['PORT=8000', 'DB_PASSWORD=s']
    assert 'Cmd' not in body and 'WorkingDir' not in body and 'Hostname' not in body
    assert body['Healthcheck'] == {'Test': ['CMD', 'curl', 'x']}
    assert body['Labels']['team'] == 'platform' and 'org.opencontainers.image.version' not in body['Labels']
    assert body['Labels'][docker_rollback.LABEL_FROM] == 'app:1.1.0'
    assert body['HostConfig'] == container['HostConfig']
    assert 'NetworkingConfig' not in body
