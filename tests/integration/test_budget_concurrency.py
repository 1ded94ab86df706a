"""The action budget under concurrency and kill -9, against the real lab (issue 18, row 5).

- Four `remediate.yml -e remediation_action=restart -e service=backend -e apply=true ...` on one incident, 0.3 s apart: the
  backend container starts exactly once (Docker's own event log), each gate decides after the previous run's
  action is settled, and the incident's budget is never exceeded.
- A restart killed with SIGKILL right after the container restarted leaves its intent (an `action` event with
  status started, never settled) and that intent counts: the next apply with a budget of 1 is refused.
"""
import fcntl
import json
import os
import signal
import subprocess
import time

import pytest
from conftest import ROOT, VENV_BIN, _env, docker

from ansible_collections.sre.incident_response.plugins.module_utils import remediation as rem

PLAYBOOK = 'playbooks/remediate.yml'


def timeline(incident):
    path = os.path.join(incident['path'], 'timeline.jsonl')
    return [json.loads(line) for line in open(path) if line.strip()] if os.path.exists(path) else []


def started_at(name):
    return json.loads(docker('inspect', name))[0]['State']['StartedAt']


def container_starts(name, since, until):
    """How many times Docker started the container between two times (its event log, not our timeline)."""
    out = docker('events', '--since', '%.3f' % since, '--until', '%.3f' % until, '--filter', 'container=%s' % name,
                 '--filter', 'event=start', '--format', '{{.Action}}')
    return len([line for line in out.splitlines() if line.strip()])


def spawn(incident, extra, log):
    """ansible-playbook in its own process group (so that it can be killed with all its workers)."""
    cmd = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', 'inventory/lab', PLAYBOOK,
           '-e', json.dumps(dict(incident['vars'], remediation_action='restart', service='backend', **extra))]
    handle = open(log, 'w')
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def descendants(pid):
    """Every process below pid (/proc), deepest last."""
    children = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open('/proc/%s/stat' % entry) as handle:
                    ppid = int(handle.read().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def wait_healthy(lab_env, timeout=90):
    import urllib.request
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(lab_env.base_url + '/health/ready', timeout=3) as resp:
                if resp.status == 200:
                    return
        except Exception:  # pylint: disable=broad-except
            pass
        time.sleep(1)
    raise AssertionError('the backend is not ready again')


def test_four_concurrent_restarts_restart_once_and_act_one_after_another(exclusive_lab, incident, tmp_path):
    lab_env = exclusive_lab
    before = started_at(lab_env.backend)
    since = time.time()
    approval = {'apply': True, 'approved_by': 'alice', 'approval_reason': 'pool exhausted'}
    procs, logs = [], []
    for index in range(4):
        logs.append(str(tmp_path / ('run%d.log' % index)))
        procs.append(spawn(incident, approval, logs[-1]))
        time.sleep(0.3)
    rcs = [proc.wait(timeout=600) for proc in procs]
    until = time.time()
    outputs = [open(log).read() for log in logs]
    assert rcs == [0, 0, 0, 0], '\n=====\n'.join(out[-3000:] for out in outputs)

    assert started_at(lab_env.backend) != before, 'nothing was restarted'
    assert container_starts(lab_env.backend, since, until) == 1, 'the backend was restarted more than once'

    events = timeline(incident)
    restarts = [e for e in events if e['kind'] == 'action' and e['data'].get('status') != 'started']
    assert [e['data']['changed'] for e in restarts].count(True) == 1, restarts
    used = rem.count_actions(events, 'restart', 'backend')
    assert used == 1 and used <= rem.DEFAULT_BUDGET['restart']
    # each gate decided after the previous run had settled its action: the second saw the first
    granted = [i for i, e in enumerate(events) if e['kind'] == 'approval' and e['data']['decision'] == 'granted']
    assert len(granted) == 4
    for earlier, later in zip(granted, granted[1:]):
        settled = [e for e in events[earlier:later] if e['kind'] == 'action' and e['data'].get('status') == 'done']
        assert settled, 'a gate granted while another run was still acting:\n%s' % '\n'.join(
            '%s %s %s' % (e['ts'], e['kind'], e['summary'][:120]) for e in events)
    assert sum('already restarted under this approval' in out for out in outputs) == 3


def test_a_restart_killed_right_after_the_change_counts_against_the_budget(exclusive_lab, incident, tmp_path):
    lab_env = exclusive_lab
    before = started_at(lab_env.backend)
    since = time.time()
    budget = {'remediation_budget': {'restart': 1}}
    watcher = subprocess.Popen(['docker', 'events', '--since', '%.3f' % since, '--filter',
                                'container=%s' % lab_env.backend, '--filter', 'event=start', '--format', '{{.Action}}'],
                               stdout=subprocess.PIPE, text=True)
    victim = spawn(incident, dict(budget, apply=True, approved_by='alice', approval_reason='pool exhausted'),
                   str(tmp_path / 'victim.log'))
    # One task restarts and records (remediation_run): the record follows the change within milliseconds. The kill
    # point stays "right after the change, before the record": once the gate has written the intent, the test holds
    # the timeline's lock (incident/files.py append_jsonl), so the run can restart the container but not record it.
    held = None
    try:
        deadline = time.time() + 120
        while not [e for e in timeline(incident) if e['kind'] == 'action' and e['data'].get('status') == 'started']:
            assert time.time() < deadline and victim.poll() is None, 'the gate never recorded the intent'
            time.sleep(0.02)
        held = open(os.path.join(incident['path'], 'timeline.jsonl.lock'), 'a+')
        fcntl.flock(held, fcntl.LOCK_EX)
        assert watcher.stdout.readline().strip() == 'start', 'the restart never happened'
        # right after the change, before the run records it: the run and every process it started (Ansible's
        # worker, which runs the task, is in a session of its own)
        for pid in [victim.pid] + descendants(victim.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        victim.wait(timeout=30)
    finally:
        if held is not None:
            fcntl.flock(held, fcntl.LOCK_UN)
            held.close()
        watcher.kill()
        watcher.wait()
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
    wait_healthy(lab_env)
    restarted = started_at(lab_env.backend)
    assert restarted != before

    events = timeline(incident)
    actions = [e for e in events if e['kind'] == 'action']
    assert [e['data']['status'] for e in actions] == ['started'], actions  # the intent, never settled
    assert rem.count_actions(events, 'restart', 'backend') == 1

    # another approval: the budget of 1 is used by the killed run; refused at once (a dead run is not waited for)
    since = time.time()
    cmd_started = time.time()
    proc = spawn(incident, dict(budget, apply=True, approved_by='carol', approval_reason='still slow'),
                 str(tmp_path / 'next.log'))
    rc = proc.wait(timeout=600)
    out = open(str(tmp_path / 'next.log')).read()
    assert rc != 0 and 'action budget exhausted: 1 of 1 restart' in out, out[-4000:]
    assert time.time() - cmd_started < 120
    assert started_at(lab_env.backend) == restarted
    assert container_starts(lab_env.backend, since, time.time()) == 0


@pytest.fixture(autouse=True)
def _backend_running(lab_env):
    yield
    if json.loads(docker('inspect', lab_env.backend))[0]['State']['Status'] != 'running':
        docker('start', lab_env.backend)
