"""What disk_cleanup may touch (plugins/module_utils/remediation_disk.py): only the directories the inventory declares.

scope_errors() is the module's check (on the host, after symlinks and `..` are resolved); attributable() keeps the
deleted-but-open files of other directories on a shared file system out of the cleanup.
"""
import os

import pytest

from ansible_collections.sre.incident_response.plugins.module_utils import remediation_disk as disk


@pytest.fixture
def tree(tmp_path):
    app = tmp_path / 'volumes' / 'app-logs' / '_data'
    other = tmp_path / 'volumes' / 'lab2-app-logs' / '_data'
    for d in (app / 'uploads', other, tmp_path / 'app-logs-2', tmp_path / 'outside'):
        d.mkdir(parents=True)
    (app / 'escape').symlink_to(tmp_path / 'outside')
    (app / 'uploads-link').symlink_to(app / 'uploads')
    return tmp_path, str(app), str(other)


def test_the_declared_directory_and_directories_inside_it_may_be_cleaned(tree):
    dummy, app, dummy2 = tree
    assert disk.scope_errors([app], [app]) == []
    assert disk.scope_errors([app + '/uploads', app + '/'], [app]) == []
    assert disk.scope_errors([app + '/uploads-link'], [app]) == []  # a link that stays inside is fine


def test_paths_outside_the_declared_directories_are_refused(tree):
    root, app, other = tree
    for path, why in ((other, 'outside the declared directories'),
                      (app + '/../../lab2-app-logs/_data', 'resolves to %s' % other),
                      (app + '/escape', 'resolves to %s' % (root / 'outside')),
                      (str(root / 'app-logs-2'), 'outside'),  # a name that only starts like the declared one
                      ('/tmp', 'system or shared directory'),
                      ('/var/lib/docker/volumes', 'system or shared directory'),
                      ('/', 'system or shared directory'),
                      ('relative/logs', 'not an absolute path')):
        errors = disk.scope_errors([app, path], [app])
        assert len(errors) == 1 and why in errors[0], (path, errors)


def test_a_declared_system_directory_allows_nothing(tree):
    dummy, app, dummy2 = tree
    for declared in (['/'], ['/tmp'], ['/var/log'], []):
        errors = disk.scope_errors([app], declared)
        assert errors and 'no usable directory is declared' in errors[0], declared


@pytest.mark.parametrize('path', ['/tmp', '/var/tmp', '/var/log', '/srv', '/opt', '/dev/shm', '/var/lib/docker/volumes/'])
def test_shared_directories_are_never_cleaned_as_a_whole(path):
    assert disk.root_error(path)


def test_deleted_open_files_elsewhere_on_a_shared_file_system_are_not_ours(tmp_path):
    ours, theirs = tmp_path / 'logs', tmp_path / 'other'
    ours.mkdir()
    theirs.mkdir()
    handles = []
    for path in (ours / 'trace.log', theirs / 'trace.log'):
        handle = open(str(path), 'wb')
        handle.write(b'x' * 4096)
        handle.flush()
        os.unlink(str(path))
        handles.append(handle)
    try:
        assert not os.path.ismount(str(ours))
        found = disk.deleted_open({os.stat(str(tmp_path)).st_dev}, [], [], ['*.log'])
        by_dir = dict((os.path.dirname(d['path']), d) for d in found if d['pid'] == os.getpid())
        assert disk.attributable(by_dir[str(ours)], [str(ours)])
        assert not disk.attributable(by_dir[str(theirs)], [str(ours)])
    finally:
        for handle in handles:
            handle.close()


def test_every_deleted_open_file_on_a_declared_file_system_of_its_own_is_ours():
    mount = next((m for m in ('/proc', '/sys', '/dev') if os.path.ismount(m)), None)
    if mount is None:
        pytest.skip('no mount point to look at')
    item = {'dev': os.lstat(mount).st_dev, 'pid': os.getpid(), 'path': '/somewhere/else/x.log'}
    assert disk.attributable(item, [mount])


def _old(path, days=3.0):
    path.write_bytes(b'x' * 4096)
    stamp = os.path.getmtime(str(path)) - days * 86400
    os.utime(str(path), (stamp, stamp))


def _scan(root):
    import time
    return disk.walk(str(root), disk.DEFAULT_ROTATED, disk.DEFAULT_TEMP, disk.DEFAULT_ACTIVE, 86400.0, 1048576,
                     time.time(), {})


def test_the_apply_acts_on_what_the_plan_listed_not_on_what_became_old_since(tmp_path):
    # issue 20: the module re-scans at apply; a rotated log that became old enough between plan and apply was
    # removed beyond the approved plan (the verification then said TOUCHED BEYOND THE PLAN, after the fact)
    _old(tmp_path / 'app.log.1')
    plan = _scan(tmp_path)
    assert [os.path.basename(f['path']) for f in plan] == ['app.log.1']
    _old(tmp_path / 'app.log.2')  # aged past the limit after the plan was approved
    rescan = _scan(tmp_path)
    assert len(rescan) == 2
    deleted_open = [{'path': str(tmp_path / 'trace.log'), 'fd_path': '/proc/42/fd/3', 'action': 'truncate'},
                    {'path': str(tmp_path / 'other.log'), 'fd_path': '/proc/43/fd/4', 'action': 'truncate'}]
    files, fixable, left = disk.pin(rescan, deleted_open, [disk.planned_key(f) for f in plan] + ['/proc/42/fd/3'])
    assert [f['path'] for f in files] == [str(tmp_path / 'app.log.1')]
    assert [d['fd_path'] for d in fixable] == ['/proc/42/fd/3']
    assert left == sorted([str(tmp_path / 'app.log.2'), '/proc/43/fd/4'])


def test_an_empty_plan_acts_on_nothing_and_no_pin_acts_on_the_scan(tmp_path):
    _old(tmp_path / 'app.log.1')
    rescan = _scan(tmp_path)
    assert disk.pin(rescan, [], [])[:2] == ([], [])
    assert disk.pin(rescan, [], None) == (rescan, [], [])
