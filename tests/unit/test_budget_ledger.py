"""The action budget and the per-incident lock (remediation.ledger, plugin_utils/remediation_lock.py).

An apply writes an intent (`action`, status started) under the incident's lock before it changes anything and
settles it after (done / failed). The budget counts changes, failures and intents that were never settled; a gate
waits for another live run's open intent, not for a dead one. The concurrency test runs real processes through
decide_under_lock, the code path of the remediation_gate action plugin.
"""
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import REMEDIATION_LOCK
from ansible_collections.sre.incident_response.plugins.module_utils import remediation as rem
from ansible_collections.sre.incident_response.plugins.plugin_utils import remediation_lock as locking

ME = {'host': 'ctl', 'boot': 'b', 'pidns': 'pid:[1]', 'pid': 100, 'start': 5}
OTHER = dict(ME, pid=200, start=7)


def intent(iid, action='restart', service='backend', approval='a1', owner=None, ts='2026-01-01T00:00:00.000Z',
           host='app-1'):
    return {'kind': 'action', 'ts': ts, 'host': host, 'data': {
        'action': action, 'service': service, 'status': 'started', 'intent_id': iid, 'approval_id': approval,
        'owner': OTHER if owner is None else owner}}


def settle(iid, changed, status='done', action='restart', service='backend', approval='a1', host='app-1'):
    return {'kind': 'action', 'ts': '2026-01-01T00:00:05.000Z', 'host': host, 'data': {
        'action': action, 'service': service, 'status': status, 'changed': changed, 'intent_id': iid,
        'approval_id': approval}}


def test_the_budget_counts_changes_failures_and_unsettled_intents():
    events = [
        intent('i1'), settle('i1', True),                    # restarted: counts
        intent('i2'), settle('i2', False),                   # nothing to do: does not count
        intent('i3'), settle('i3', None, status='failed'),   # failed part-way: counts
        intent('i4'),                                        # killed after the change: counts
        {'kind': 'action', 'data': {'action': 'restart', 'service': 'backend', 'changed': True}},   # an old event
        {'kind': 'action', 'data': {'action': 'restart', 'service': 'backend', 'changed': False}},  # an old no-op
        intent('i5', service='other'), settle('i5', True, service='other'),
    ]
    assert rem.count_actions(events, 'restart', 'backend') == 4
    assert rem.count_actions(events, 'restart') == 5
    gate = rem.decide('restart', service='backend', apply=True, approved_by='alice', reason='x', launcher='bob',
                      budget=4, used=rem.count_actions(events, 'restart', 'backend'), incident_id='INC-1')
    assert gate['refused'] and 'action budget exhausted: 4 of 4' in gate['msg']


def test_old_timelines_read_as_before():
    old = [{'kind': 'action', 'ts': 't', 'data': {'action': 'restart', 'service': 'b', 'changed': True, 'approval_id': 'x'}}]
    assert rem.count_actions(old, 'restart', 'b') == 1
    assert rem.find_action(old, 'x')['state'] == 'done'


def test_an_approval_already_used_is_found_per_host_and_an_interrupted_one_counts_as_used():
    events = [intent('i1', host='app-1'), settle('i1', True, host='app-1'), intent('i2', host='app-2')]
    assert rem.find_action(events, 'a1', 'app-1')['state'] == 'done'
    assert rem.find_action(events, 'a1', 'app-2')['state'] == 'open'
    assert rem.find_action(events, 'a1', 'app-3') is None
    failed = [intent('i3', host='app-3'), settle('i3', None, status='failed', host='app-3')]
    assert rem.find_action(failed, 'a1', 'app-3') is None  # a failed attempt may be retried under its approval


def test_the_post_mortem_and_report_still_read_the_action_chain():
    from ansible_collections.sre.incident_response.plugins.plugin_utils.render import postmortem
    events = [intent('i1'), settle('i1', True)]
    started, done = events
    assert not postmortem._ok_event(started), 'an intent is not a mitigation'
    assert postmortem._ok_event(done) and postmortem.is_significant(started) and postmortem.is_significant(done)


def test_an_open_intent_blocks_only_while_its_run_lives():
    live = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        here = locking.run_owner(os.getpid())
        owner = locking.run_owner(live.pid)
        events = [intent('i1', owner=owner)]
        assert [e['intent_id'] for e in locking.blocking_intents(events, here)] == ['i1']
        assert locking.blocking_intents(events, owner) == [], "a run's own intents never block it"
    finally:
        live.kill()
        live.wait()
    assert locking.blocking_intents(events, here) == [], 'a killed run does not block'
    assert rem.count_actions(events, 'restart') == 1, '... and its intent still counts'


def test_an_intent_of_another_machine_blocks_until_its_lease_ends():
    here = locking.run_owner(os.getpid())
    elsewhere = dict(here, host='other-node', pid=1)
    now = files.parse_ts('2026-01-01T00:10:00.000Z').timestamp()
    events = [intent('i1', owner=elsewhere, ts='2026-01-01T00:00:00.000Z')]
    assert locking.blocking_intents(events, here, now=now, lease=3600)
    assert locking.blocking_intents(events, here, now=now, lease=60) == []


def test_the_lock_wait_is_bounded_and_a_dead_holder_releases_it(tmp_path):
    path = str(tmp_path / REMEDIATION_LOCK)
    holder = subprocess.Popen([sys.executable, '-c', (
        'import fcntl, os, sys, time\n'
        'fd = os.open(%r, os.O_RDWR | os.O_CREAT)\n'
        'fcntl.flock(fd, fcntl.LOCK_EX)\n'
        'print("held", flush=True)\n'
        'time.sleep(60)\n') % path], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        started = time.time()
        with pytest.raises(locking.LockTimeout) as err:
            with locking.IncidentLock(path, timeout=0.5):
                pass
        assert 0.4 < time.time() - started < 5 and 'held by another run' in str(err.value)
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        with locking.IncidentLock(path, timeout=5):
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


# --- real processes through the gate's code path -------------------------------------------------------------

def _apply(incident_path, name, budget, log, hold):
    """One `remediate.yml` apply reduced to its protocol: gate (decide_under_lock), act, settle."""
    timeline = os.path.join(incident_path, files.TIMELINE)
    me = locking.run_owner(os.getpid())

    def decide(events):
        used = rem.count_actions(events, 'restart', 'backend')
        return rem.decide('restart', service='backend', apply=True, approved_by='alice', reason=name, launcher='bob',
                          budget=budget, used=used, incident_id='INC-1')

    def record(decision):
        if decision['apply']:
            decision['intent_id'] = name
            files.append_jsonl(timeline, [dict(intent(name, owner=me), ts=files.isoformat())])

    decision = locking.decide_under_lock(os.path.join(incident_path, REMEDIATION_LOCK), lambda: files.read_jsonl(timeline), decide, record, me,
                                         timeout=60, poll=0.02)
    if not decision['apply']:
        return
    with open(log, 'a') as handle:
        handle.write('start %s %f\n' % (name, time.time()))
    time.sleep(hold)  # the change
    with open(log, 'a') as handle:
        handle.write('end %s %f\n' % (name, time.time()))
    files.append_jsonl(timeline, [settle(name, True)])


def test_concurrent_applies_act_one_after_another_within_the_budget(tmp_path):
    incident_path = str(tmp_path / 'INC-1')
    os.makedirs(incident_path)
    log = str(tmp_path / 'acts.log')
    ctx = multiprocessing.get_context('fork')
    procs = [ctx.Process(target=_apply, args=(incident_path, 'run%d' % i, 2, log, 0.3)) for i in range(5)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    lines = [line.split() for line in open(log)]
    assert len([x for x in lines if x[0] == 'start']) == 2, lines          # the budget: 2, never more
    for first, second in zip(lines[::2], lines[1::2]):
        assert first[0] == 'start' and second[0] == 'end' and first[1] == second[1], lines  # never two at once
    events = files.read_jsonl(os.path.join(incident_path, files.TIMELINE))
    assert rem.count_actions(events, 'restart', 'backend') == 2


def test_a_run_killed_after_the_change_still_counts_and_does_not_block(tmp_path):
    incident_path = str(tmp_path / 'INC-1')
    os.makedirs(incident_path)
    log = str(tmp_path / 'acts.log')
    ctx = multiprocessing.get_context('fork')
    victim = ctx.Process(target=_apply, args=(incident_path, 'victim', 1, log, 60))
    victim.start()
    deadline = time.time() + 30
    while not (os.path.exists(log) and open(log).read()) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)  # right after the change began, before its settle
    victim.join()
    events = files.read_jsonl(os.path.join(incident_path, files.TIMELINE))
    assert rem.count_actions(events, 'restart', 'backend') == 1
    started = time.time()
    _apply(incident_path, 'next', 1, log, 0)  # budget 1: refused, and without waiting for the dead run
    assert time.time() - started < 5
    assert [line.split()[1] for line in open(log)] == ['victim']
    assert json.dumps(events).count('"status": "started"') == 1


def test_a_live_run_that_keeps_acting_is_waited_for_boundedly_and_nothing_is_recorded(tmp_path):
    incident_path = str(tmp_path / 'INC-1')
    os.makedirs(incident_path)
    timeline = os.path.join(incident_path, files.TIMELINE)
    live = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        files.append_jsonl(timeline, [intent('busy', owner=locking.run_owner(live.pid))])
        waited, recorded = [], []
        started = time.time()
        with pytest.raises(locking.StillActing) as err:
            locking.decide_under_lock(os.path.join(incident_path, REMEDIATION_LOCK), lambda: files.read_jsonl(timeline), lambda events: {},
                                      recorded.append, locking.run_owner(os.getpid()), timeout=1, on_wait=waited.append,
                                      poll=0.1)
        assert 0.9 < time.time() - started < 10
        assert recorded == [] and [e['intent_id'] for e in waited] == ['busy']
        assert 'intent busy' in str(err.value) and 'after 1 s of waiting' in str(err.value)
    finally:
        live.kill()
        live.wait()
