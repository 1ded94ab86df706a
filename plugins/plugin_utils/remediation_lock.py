# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check, act and record under one per-incident lock (the controller side of the remediation gate).

The gate holds <incident>/remediation.lock (fcntl, the mechanism of the incident store's locks) only while it
reads the timeline, decides, and appends its `approval` event and, when it grants an apply, the intent (an
`action` event with status `started`). The intent then stands for the run until the role settles it (status
`done` or `failed`) right after the change. A gate that finds another live run's open intent releases the lock
and waits for that settle (bounded), so applies of one incident act one after another and each sees what the
previous one did. An intent whose run is gone (killed) no longer blocks, and keeps counting against the budget
(plugins/module_utils/remediation.py, ledger()).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import os
import socket
import time

from ansible_collections.sre.incident_response.plugins.module_utils.timefmt import parse_ts
from ansible_collections.sre.incident_response.plugins.module_utils.remediation import ledger

DEFAULT_LOCK_TIMEOUT = 300
DEFAULT_INTENT_LEASE = 1800


class LockTimeout(Exception):
    pass


class IncidentLock(object):
    """An exclusive fcntl lock on <incident>/remediation.lock, waited for at most `timeout` seconds."""

    def __init__(self, path, timeout=DEFAULT_LOCK_TIMEOUT, poll=0.05):
        self.path = path
        self.timeout = max(float(timeout), 0.0)
        self.poll = poll
        self.fd = None

    def __enter__(self):
        directory = os.path.dirname(self.path) or '.'
        try:
            os.makedirs(directory, 0o750)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        deadline = time.time() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(self.fd)
                    raise
            if time.time() >= deadline:
                os.close(self.fd)
                self.fd = None
                raise LockTimeout('%s is held by another run for more than %d s; nothing was changed'
                                  % (self.path, self.timeout))
            time.sleep(self.poll)

    def __exit__(self, *exc):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
        return False


def _read(path):
    try:
        with open(path, 'r') as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return None


def process_start(pid, proc_root='/proc'):
    """The start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), or None."""
    text = _read(os.path.join(proc_root, str(pid), 'stat'))
    if not text or ')' not in text:
        return None
    fields = text.rsplit(')', 1)[1].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def machine(proc_root='/proc'):
    """Where pids mean the same process: host name, boot id and pid namespace."""
    try:
        pidns = os.readlink(os.path.join(proc_root, 'self', 'ns', 'pid'))
    except OSError:
        pidns = None
    return {'host': socket.gethostname(), 'boot': _read(os.path.join(proc_root, 'sys', 'kernel', 'random', 'boot_id')),
            'pidns': pidns}


def run_owner(pid, proc_root='/proc'):
    """The run an intent belongs to: the ansible-playbook process (the parent of the worker that runs the gate)."""
    owner = machine(proc_root)
    owner.update(pid=int(pid), start=process_start(pid, proc_root))
    return owner


def same_machine(a, b):
    return all(a.get(k) is not None and a.get(k) == b.get(k) for k in ('host', 'boot', 'pidns'))


def same_run(a, b):
    return same_machine(a, b) and a.get('pid') == b.get('pid') and a.get('start') == b.get('start')


def owner_alive(owner, here, proc_root='/proc'):
    """True / False when the owner's process can be checked from here; None when it runs elsewhere."""
    if not same_machine(owner or {}, here):
        return None
    start = process_start(owner.get('pid'), proc_root)
    return start is not None and start == owner.get('start')


def _age(ts, now):
    try:
        return now - parse_ts(ts).timestamp()
    except (TypeError, ValueError):
        return 0.0


def blocking_intents(events, me, now=None, lease=DEFAULT_INTENT_LEASE, alive=None):
    """Open intents of other runs that are still acting: a gate waits until they are settled.

    me: run_owner() of this run (its own intents never block it: one run gates several hosts); alive(owner):
    owner_alive(). An owner that is gone does not block; one on another machine blocks until `lease` seconds
    after its intent.
    """
    now = time.time() if now is None else now
    alive = alive or (lambda owner: owner_alive(owner, me))
    out = []
    for entry in ledger(events):
        if entry['state'] != 'open' or same_run(entry['owner'], me):
            continue
        state = alive(entry['owner'])
        if state is False or (state is None and _age(entry['ts'], now) > lease):
            continue
        out.append(entry)
    return out


def describe_intent(entry):
    owner = entry.get('owner') or {}
    return '%s on %s (host %s) started %s by run pid %s on %s' % (
        entry.get('action'), entry.get('service') or '-', entry.get('host') or '-', entry.get('ts'),
        owner.get('pid', '?'), owner.get('host', '?'))


class StillActing(Exception):
    """Another run kept its intent open for longer than the wait allows (the message says which)."""

    def __init__(self, entry, waited):
        self.entry = entry
        self.waited = waited
        super(StillActing, self).__init__('another run is still acting on the incident (%s, intent %s) after %d s of '
                                          'waiting' % (describe_intent(entry), entry['intent_id'], waited))


def decide_under_lock(lock_path, read_events, decide, record, me, timeout=DEFAULT_LOCK_TIMEOUT, on_wait=None,
                      poll=0.5, lease=DEFAULT_INTENT_LEASE):
    """Check, then record, under the incident's remediation lock, after the other runs' open intents are settled.

    lock_path: the incident's lock file (IncidentStore.remediation_lock_path: the store names the incident's files).

    read_events(): the timeline; decide(events) -> decision; record(decision): append the approval and the intent
    (called under the lock, so the next gate sees the intent); me: run_owner() of this run; on_wait(entry): told
    once per intent it waits for. Raises LockTimeout or StillActing after `timeout` seconds; nothing is recorded then.
    """
    deadline = time.time() + max(timeout, 0)
    told = set()
    while True:
        with IncidentLock(lock_path, max(deadline - time.time(), 0)):
            events = read_events()
            blocking = blocking_intents(events, me, lease=lease)
            if not blocking:
                decision = decide(events)
                record(decision)
                return decision
        first = blocking[0]
        if time.time() >= deadline:
            raise StillActing(first, timeout)
        if on_wait is not None and first['intent_id'] not in told:
            told.add(first['intent_id'])
            on_wait(first)
        time.sleep(min(poll, max(deadline - time.time(), 0.01)))
