"""clean_disk on the engine (plugins/plugin_utils/disk_plan.py, used by CleanDisk in plugins/action/remediation_run.py):
the scope check by name before anything is listed, whether the plan can get each file system below the limit, and
the verification that the apply removed what was planned and touched nothing else."""
import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils import disk_plan as dp

VOL = '/var/lib/docker/volumes/lab3-app-logs/_data'
MIB = 1024 * 1024


def test_paths_given_with_e_are_a_comma_separated_string():
    assert dp.requested_paths('/a, /b,') == ['/a', '/b']
    assert dp.requested_paths(['/a ', '']) == ['/a']
    assert dp.requested_paths('') == [] and dp.requested_paths(None) == [] and dp.requested_paths([]) == []


@pytest.mark.parametrize('path', [VOL, VOL + '/', VOL + '/tmp', VOL + '/a/b'])
def test_the_declared_directory_and_inside_it_are_allowed(path):
    assert dp.scope_refusals([path], [VOL]) == []
    assert dp.preflight_error('app-backend', 'backend', [VOL], [path], 1) == ''


@pytest.mark.parametrize('path', ['/tmp', '/var/log', VOL + '-other', '/var/lib/docker/volumes/lab4-app-logs/_data',
                                  VOL + '/../../lab4-app-logs/_data', VOL + '/./tmp', VOL + '/..', 'tmp', '/'])
def test_anything_else_is_refused_by_name(path):
    assert dp.scope_refusals([VOL, path], [VOL + '/']) == [path]
    text = dp.preflight_error('app-backend', 'backend', [VOL], [VOL, path], 1)
    assert text.startswith('disk_cleanup on app-backend: nothing was changed. Refused: %s: ' % path)
    assert 'Allowed: %s.' % VOL in text


def test_no_declared_paths_nothing_may_be_cleaned():
    text = dp.preflight_error('app-backend', 'backend', [], [], 1)
    assert 'nothing was changed' in text and 'declares no disk_paths' in text
    assert 'not absolute' in dp.preflight_error('h', 'backend', ['logs'], [], 1)
    assert 'not absolute' in dp.preflight_error('h', 'backend', ['/'], [], 1)


def test_empty_request_means_every_declared_path_and_the_age_must_not_be_negative():
    assert dp.preflight_error('h', 'backend', [VOL, '/srv/tmp'], [], 0) == ''
    assert 'must be >= 0 (got -1)' in dp.preflight_error('h', 'backend', [VOL], [], -1)
    assert 'must be >= 0' in dp.preflight_error('h', 'backend', [VOL], [], 'x')


def usage(path, total, used, free=None):
    free = total - used if free is None else free
    return {'path': path, 'total': total, 'used': used, 'free': free, 'used_percent': round(100.0 * used / total, 1)}


def test_a_plan_that_gets_the_disk_below_the_limit_is_enough():
    plan = {'disk_before': [usage(VOL, 64 * MIB, 63 * MIB)],
            'files': [{'path': VOL + '/app.log.%d' % n, 'size': 8 * MIB, 'action': 'delete'} for n in range(6)]}
    enough, lines, per_fs = dp.sufficiency(plan, 90)
    assert enough and per_fs[0]['freed'] == 48 * MIB and per_fs[0]['after_percent'] == 23.4
    assert lines == ['disk %s: 98.4 %% used, 23.4 %% after the plan (frees 48.0 MiB; limit 90 %%)' % VOL]


def test_a_plan_that_cannot_get_below_the_limit_says_what_is_missing():
    plan = {'disk_before': [usage(VOL, 64 * MIB, 63 * MIB)],
            'files': [{'path': VOL + '/tmp/upload-1.tmp', 'size': 3 * MIB, 'action': 'delete'}]}
    enough, lines, per_fs = dp.sufficiency(plan, 90)
    assert not enough and not per_fs[0]['enough']
    assert 'CANNOT get below 90 %: the plan frees 3.0 MiB of the 5.4 MiB needed' in lines[0]


def test_a_disk_already_below_the_limit_needs_nothing_and_nothing_planned_is_enough():
    enough, lines, dummy = dp.sufficiency({'disk_before': [usage(VOL, 64 * MIB, 10 * MIB)], 'files': []}, 90)
    assert enough and lines == ['disk %s: 15.6 %% used, below 90 %%' % VOL]
    assert dp.sufficiency({'disk_before': [], 'files': []}, 90) == (True, [], [])


def test_a_deleted_open_file_counts_for_the_one_file_system_even_with_its_container_path():
    held = {'path': '/var/log/app/debug-trace.log', 'fd_path': '/proc/42/fd/3', 'size': 60 * MIB, 'deleted': True,
            'action': 'truncate'}
    plan = {'disk_before': [usage(VOL, 64 * MIB, 62 * MIB)], 'files': [held, dict(held)]}
    enough, dummy, per_fs = dp.sufficiency(plan, 90)
    assert enough and per_fs[0]['freed'] == 60 * MIB, 'a file listed twice counts once'
    # two file systems: a container path belongs to neither by name, so it frees nothing in the estimate
    two = {'disk_before': [usage(VOL, 64 * MIB, 62 * MIB), usage('/srv/tmp', 100 * MIB, 10 * MIB)], 'files': [held]}
    assert dp.sufficiency(two, 90)[0] is False


def test_paths_on_one_file_system_share_what_is_freed():
    disk = [usage(VOL, 64 * MIB, 62 * MIB), usage(VOL + '/tmp', 64 * MIB, 62 * MIB)]
    files = [{'path': VOL + '/app.log.1', 'size': 4 * MIB}, {'path': VOL + '/tmp/x.tmp', 'size': 4 * MIB}]
    enough, lines, per_fs = dp.sufficiency({'disk_before': disk, 'files': files}, 90)
    assert enough and len(per_fs) == 1 and per_fs[0]['freed'] == 8 * MIB and per_fs[0]['paths'] == [VOL, VOL + '/tmp']


def test_the_apply_removed_what_was_planned_and_nothing_else():
    planned = [{'path': VOL + '/app.log.1', 'size': 8 * MIB, 'action': 'delete'},
               {'path': VOL + '/app.log', 'size': 3 * MIB, 'action': 'truncate'},
               {'path': '/var/log/app/t.log', 'fd_path': '/proc/42/fd/3', 'size': 9 * MIB, 'deleted': True,
                'action': 'truncate'}]
    applied = {'deleted': [VOL + '/app.log.1'], 'truncated': [VOL + '/app.log', '/var/log/app/t.log (deleted, /proc/42/fd/3)']}
    assert dp.judge_cleanup(planned, applied, []) == ([], [])
    # the active log grew again, but it was truncated: not "still there"; a planned delete re-listed is
    replanned = [{'path': VOL + '/app.log', 'size': 2 * MIB}, {'path': VOL + '/app.log.1', 'size': 8 * MIB}]
    assert dp.judge_cleanup(planned, applied, replanned) == ([VOL + '/app.log.1'], [])
    assert dp.judge_cleanup(planned, applied, [{'path': VOL + '/app.log', 'size': 3 * MIB}])[0] == [VOL + '/app.log']
    # the apply walked again and removed a file the plan (the approval) did not list
    more = dict(applied, deleted=applied['deleted'] + [VOL + '/new.log.1'])
    assert dp.judge_cleanup(planned, more, []) == ([], [VOL + '/new.log.1'])
