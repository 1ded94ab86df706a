"""clean_disk cleans only what the inventory declares (issue 18): `-e disk_cleanup_paths=...` must name a service's
declared directory (its `disk_paths`) or a directory inside one, after symlinks and `..` are resolved on the host.

Against the real lab (playbooks/remediate.yml, the backend's log volume). Every refused run must stop before the
plan, the approval or any change: the canary files stay, the timeline has no action. Paths that belong to no test
(/tmp, another lab instance's volume) are only ever asked for without apply, so even a broken policy deletes nothing
there; the applies that must be refused aim at a directory the test owns.
"""
import json
import os
import pathlib
import re
import time
import uuid

import pytest

PLAYBOOK = 'playbooks/remediate.yml'
APPROVAL = {'apply': True, 'approved_by': 'alice', 'approval_reason': 'integration test'}
REFUSED = 'nothing was changed'


def events(incident, kind):
    path = os.path.join(incident['path'], 'timeline.jsonl')
    out = [json.loads(line) for line in open(path) if line.strip()] if os.path.exists(path) else []
    return [e for e in out if e['kind'] == kind]


def clean(run_playbook, incident, paths=None, approve=False, args=None):
    extra = dict(incident['vars'], remediation_action='clean_disk')
    if paths is not None:
        extra['disk_cleanup_paths'] = paths
    if approve:
        extra.update(APPROVAL)
    return run_playbook(PLAYBOOK, extra, args=args)


def canaries(directory):
    """Old files disk_cleanup would delete (a rotated log, a temp file) if it were let into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    made = []
    for name in ('old.log.1', 'upload-1.tmp'):
        path = directory / name
        path.write_bytes(b'x' * 4096)
        old = time.time() - 30 * 86400
        os.utime(str(path), (old, old))
        made.append(path)
    return made


def assert_refused_before_anything(res, incident, allowed, refused_text=REFUSED):
    assert res.rc != 0, res
    assert refused_text in res.stdout, res
    assert 'Allowed: %s' % allowed in res.stdout, res
    assert not events(incident, 'action'), 'a refused path must not reach the action'
    assert not [e for e in events(incident, 'approval') if e['data'].get('decision') == 'granted']


@pytest.fixture
def other_volume(lab_env):
    """Another lab instance's log volume (it need not be up: it is only ever asked for, never applied)."""
    other = lab_env.instance + 1
    return '/var/lib/docker/volumes/lab%d-app-logs/_data' % other


def test_tmp_and_another_instances_volume_are_refused_before_the_plan(lab, run_playbook, incident, lab_env, other_volume):
    vol = lab_env.log_volume_path
    for paths, shown in ((['/tmp'], '/tmp'),
                         ([other_volume], other_volume),
                         ([vol + '/../../lab%d-app-logs/_data' % (lab_env.instance + 1)], '/../../'),
                         ([vol, '/var/log'], '/var/log')):
        res = clean(run_playbook, incident, paths)
        assert_refused_before_anything(res, incident, vol)
        assert re.search(r'Refused: [^\n]*%s' % re.escape(shown), res.stdout), res
        assert not events(incident, 'plan'), 'refused in the preflight: no plan was even listed'
    # the same with the key=value form of -e (a string, not a list)
    res = clean(run_playbook, incident, args=['-e', 'disk_cleanup_paths=/tmp'])
    assert_refused_before_anything(res, incident, vol)


def test_a_directory_outside_is_refused_even_with_an_approval(lab, run_playbook, incident, lab_env, tmp_path):
    outside = tmp_path / 'outside'
    files = canaries(outside)
    res = clean(run_playbook, incident, [str(outside)], approve=True)
    assert_refused_before_anything(res, incident, lab_env.log_volume_path)
    assert all(f.exists() for f in files), 'nothing outside the declared directories is touched'


def test_a_symlink_inside_the_declared_directory_cannot_lead_out(exclusive_lab, run_playbook, incident, lab_env, tmp_path):
    vol = lab_env.log_volume_path
    outside = tmp_path / 'outside'
    files = canaries(outside)
    link = os.path.join(vol, 'escape-%s' % uuid.uuid4().hex[:8])
    os.symlink(str(outside), link)
    try:
        # the name is inside the declared directory; only the host can tell where it leads: the module refuses it
        res = clean(run_playbook, incident, [link], approve=True)
        assert_refused_before_anything(res, incident, vol, refused_text='refusing to clean, nothing was listed or changed')
        assert 'resolves to %s' % outside in res.stdout, res
        assert all(f.exists() for f in files)
    finally:
        os.unlink(link)


def test_the_declared_directory_and_one_inside_it_still_work(exclusive_lab, run_playbook, incident, lab_env):
    vol = lab_env.log_volume_path
    plan = clean(run_playbook, incident, [vol])
    assert plan.rc == 0, plan
    assert 'plan only: nothing was changed' in plan.stdout, plan

    sub = os.path.join(vol, 'scope-test-%s' % uuid.uuid4().hex[:8])
    try:
        files = canaries(pathlib.Path(sub))
        applied = clean(run_playbook, incident, [sub + '/'], approve=True)
        assert applied.rc == 0, applied
        assert 'VERIFIED clean_disk' in applied.stdout, applied
        assert not any(f.exists() for f in files), 'the declared directory (inside) is cleaned'
        act = events(incident, 'action')[-1]
        assert sorted(os.path.basename(p) for p in act['data']['result']['deleted']) == ['old.log.1', 'upload-1.tmp']
    finally:
        for name in os.listdir(sub) if os.path.isdir(sub) else []:
            os.unlink(os.path.join(sub, name))
        if os.path.isdir(sub):
            os.rmdir(sub)
