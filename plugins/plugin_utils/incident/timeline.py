# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The incident timeline: event building, secret collection and the buffered writer.

Plain classes, standard library only, so that the timeline callback, the
``timeline_event`` action plugin and unit tests share one implementation. The
callback only translates ``v2_*`` hooks into calls on these classes.

Events follow the contract of docs/reference/contracts.md and are appended
with ``incident_files.append_jsonl`` (one locked, fsynced write per call):
the file is never rewritten, so a run killed at any point leaves whole lines.

Task results are recorded compactly: ``TaskResults`` keeps the per-host results
of the running task(s) in memory and turns each task into ONE ``task`` event
(``data.hosts``: host -> status and duration, ``data.counts``) when the task is
done; failed and unreachable results also get their own detailed per-host
event (``data.detail``). ``task_results`` reads both that form and the older
one-event-per-host-result form back as per-host results.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import time
import uuid

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.files import (
    append_jsonl,
    isoformat,
    make_event,
    valid_incident_id,
)
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor

TASK_STATUSES = ('ok', 'changed', 'failed', 'skipped', 'unreachable')

# Names of variables whose values are secrets: their values are redacted literally
# wherever they appear (messages, stdout, summaries), not only under secret-looking keys.
DEFAULT_SECRET_VAR_PATTERNS = (
    r'(?i)(^|_)(password|passwd|pass|secret|token|api_?key|webhook_?url|webhook|routing_?key|integration_?key|'
    r'private_?key|credentials?|dsn)$',
)
# Variables that name other variables holding secrets (credentials by reference).
DEFAULT_REFERENCE_KEYS = ('password_var', 'pagerduty_routing_key_var', 'token_var', 'webhook_url_var',
                          'secret_var', 'routing_key_var')
# Variables that hold the NAME of a secret variable, e.g. comms_slack_webhook_url_var, *_routing_key_vars.
_REFERENCE_NAME_RE = re.compile(r'(?i)(password|passwd|secret|token|api_?key|webhook_?url|routing_?key|'
                                r'integration_?key|credential|dsn)_vars?$')
MIN_LITERAL_LENGTH = 6
URL_PART_MIN_LENGTH = 8
_URL_RE = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*://(?:(?P<userinfo>[^/@\s]+)@)?[^/\s]+(?P<rest>/\S*)?$')

# Result keys worth keeping in a task event (all are redacted and truncated).
_RESULT_KEYS = ('msg', 'rc', 'stderr', 'reason')


def new_run_id():
    return uuid.uuid4().hex[:12]


def task_status(hook, result=None):
    """The timeline status of a task result given the callback hook that reported it."""
    result = result or {}
    if hook == 'failed':
        return 'failed'
    if hook == 'unreachable':
        return 'unreachable'
    if hook == 'skipped':
        return 'skipped'
    return 'changed' if result.get('changed') else 'ok'


def _truncate(text, limit):
    text = ' '.join(str(text).split())
    if limit and len(text) > limit:
        return text[:max(limit - 3, 1)] + '...'
    return text


def summarize_result(result, max_chars=300):
    """The small, human part of a task result: message, rc, stderr tail. Never the args.

    A result censored by no_log keeps only the fact that it was hidden.
    """
    result = result or {}
    if result.get('_ansible_no_log') or result.get('censored'):
        return {'no_log': True}
    out = {}
    for key in _RESULT_KEYS:
        value = result.get(key)
        if value in (None, '', [], {}):
            continue
        if key == 'stderr':
            value = str(value)[-max_chars:] if max_chars else str(value)
        if isinstance(value, (int, float, bool)):
            out[key] = value
        else:
            out[key] = _truncate(value, max_chars)
    if isinstance(result.get('results'), list):
        out['items'] = len(result['results'])
    return out


def task_event(incident_id, host, task_name, status, duration=None, result=None, action=None, play=None,
               role=None, run_id=None, ignore_errors=False, max_chars=300, ts=None, task_id=None, detail=False):
    """A `task` event for one host's result of one task.

    `detail`: the event details a result that the task's compact event (same `task_id`) also lists.
    """
    details = summarize_result(result, max_chars=max_chars)
    data = {
        'task': task_name,
        'action': action,
        'status': status,
        'duration_s': round(duration, 3) if duration is not None else None,
        'play': play,
        'role': role,
        'run': run_id,
    }
    if task_id is not None:
        data['task_id'] = task_id
    if detail:
        data['detail'] = True
    if ignore_errors and status == 'failed':
        data['ignored'] = True
    data.update(details)
    summary = '%s: %s' % (task_name or action or 'task', status)
    if status in ('failed', 'unreachable') and details.get('msg'):
        summary += ' - %s' % _truncate(details['msg'], 160)
    elif details.get('no_log'):
        summary += ' (output hidden by no_log)'
    return make_event(incident_id, 'task', summary, host=host, data=data, ts=ts)


COUNT_ORDER = ('ok', 'changed', 'failed', 'unreachable', 'skipped')
# Results that also get their own detailed event: rare, and what a post-mortem looks for.
DETAILED_STATUSES = ('failed', 'unreachable')


def compact_task_event(incident_id, task, results, ts=None, interrupted=False):
    """ONE `task` event for every host's result of one task.

    `task`: dict with task (name), action, play, role, run, task_id. `results`: {host: {'status', 'duration_s'
    [, 'ignored']}} in the order the hosts reported. `host` is the host when one host ran the task, else None.
    """
    counts = dict((status, 0) for status in COUNT_ORDER)
    ignored = 0
    for entry in results.values():
        counts[entry['status']] = counts.get(entry['status'], 0) + 1
        if entry.get('ignored'):
            ignored += 1
    data = {
        'task': task.get('task'),
        'action': task.get('action'),
        'play': task.get('play'),
        'role': task.get('role'),
        'run': task.get('run'),
        'task_id': task.get('task_id'),
        'counts': counts,
        'hosts': dict(results),
    }
    summary = '%s: %s' % (task.get('task') or task.get('action') or 'task',
                          ', '.join('%s %d' % (status, counts[status]) for status in COUNT_ORDER))
    if ignored:
        data['counts']['ignored'] = ignored
        summary += ' (%d failure%s ignored)' % (ignored, '' if ignored == 1 else 's')
    if interrupted:
        data['interrupted'] = True
        summary += ' - run interrupted'
    host = next(iter(results)) if len(results) == 1 else None
    return make_event(incident_id, 'task', summary, host=host, data=data, ts=ts)


class TaskResults(object):
    """The per-host results of the running task(s), kept in memory until the task is done.

    `add` files one result; `drain` returns one compact `task` event per task (in the order the tasks first
    reported) and forgets them. Under the free strategy or when a task's hosts report across a flush, one task
    can give several compact events (disjoint hosts, same `task_id`).
    """

    def __init__(self, now=isoformat):
        self._now = now
        self._tasks = {}
        self._order = []

    def __len__(self):
        return len(self._order)

    def add(self, task_id, host, status, duration=None, ignored=False, task=None):
        """`task`: dict with task, action, play, role, run (taken from the first result of the task)."""
        entry = self._tasks.get(task_id)
        if entry is None:
            entry = self._tasks[task_id] = {'task': dict(task or {}, task_id=task_id), 'results': {}, 'ts': None}
            self._order.append(task_id)
        result = {'status': status, 'duration_s': round(duration, 3) if duration is not None else None}
        if ignored and status == 'failed':
            result['ignored'] = True
        entry['results'].pop(host, None)  # a host reporting twice (e.g. a retried result): its last result
        entry['results'][host] = result
        entry['ts'] = self._now()

    def drain(self, incident_id=None, interrupted=False):
        events = []
        for task_id in self._order:
            entry = self._tasks[task_id]
            events.append(compact_task_event(incident_id, entry['task'], entry['results'], ts=entry['ts'],
                                             interrupted=interrupted))
        self._tasks = {}
        self._order = []
        return events


def is_compact_task(event):
    return event.get('kind') == 'task' and isinstance((event.get('data') or {}).get('hosts'), dict)


def task_results(events):
    """Per-host task results from a timeline, whatever form recorded them.

    Yields (in file order) one dict per host result: the event's data (task, action, status, duration_s, play,
    role, run, and for failures msg, rc, ignored...) plus `host` and `ts`. Old timelines hold one `task` event per
    host result; compact ones one event per task (`data.hosts`) plus a detailed event (`data.detail`) per failed
    or unreachable result, which is merged into the compact one (or stands alone if a killed run never wrote it).
    """
    events = [e for e in events or [] if isinstance(e, dict) and e.get('kind') == 'task']
    listed = set()
    details = {}
    for event in events:
        data = event.get('data') or {}
        if is_compact_task(event):
            for host in data['hosts']:
                listed.add((data.get('run'), data.get('task_id'), host))
        elif data.get('detail'):
            details[(data.get('run'), data.get('task_id'), event.get('host'))] = event
    for event in events:
        data = event.get('data') or {}
        if is_compact_task(event):
            base = dict((k, v) for k, v in data.items() if k not in ('hosts', 'counts', 'interrupted'))
            for host, entry in data['hosts'].items():
                detail = details.get((data.get('run'), data.get('task_id'), host))
                out = dict(base, **(detail.get('data') or {})) if detail else dict(base)
                out.pop('detail', None)
                out.update(entry if isinstance(entry, dict) else {'status': entry})
                out['host'] = host
                out['ts'] = event.get('ts')
                yield out
        elif data.get('detail') and (data.get('run'), data.get('task_id'), event.get('host')) in listed:
            continue  # merged into its compact event
        else:
            yield dict(data, host=event.get('host'), ts=event.get('ts'))


def play_event(incident_id, phase, play_name, hosts=None, run_id=None, playbook=None, stats=None,
               check_mode=False, ts=None):
    """A `play` event: phase is 'start' or 'end'."""
    data = {'phase': phase, 'play': play_name, 'run': run_id, 'playbook': playbook}
    if hosts is not None:
        data['hosts'] = list(hosts)
    if stats is not None:
        data['stats'] = stats
    if check_mode:
        data['check_mode'] = True
    summary = 'Play %s: %s' % ('started' if phase == 'start' else 'ended', play_name or 'unnamed')
    if playbook:
        summary += ' (%s)' % os.path.basename(str(playbook))
    return make_event(incident_id, 'play', summary, host=None, data=data, ts=ts)


class TaskClock(object):
    """Per (host, task) start times, for the duration of each result."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._task = {}
        self._host = {}

    def task_started(self, task_id):
        self._task[task_id] = self._clock()

    def host_started(self, host, task_id):
        self._host[(host, task_id)] = self._clock()

    def elapsed(self, host, task_id):
        start = self._host.pop((host, task_id), None)
        if start is None:
            start = self._task.get(task_id)
        if start is None:
            return None
        return max(self._clock() - start, 0.0)


class SecretCollector(object):
    """Finds secret values among variables: by variable name, and by reference (`password_var`).

    `resolve` turns a raw variable value into its final value (e.g. templating);
    it may raise, in which case the raw value is used when it is not a template.
    """

    def __init__(self, name_patterns=None, reference_keys=DEFAULT_REFERENCE_KEYS, min_length=MIN_LITERAL_LENGTH):
        self.name_res = [re.compile(p) for p in (list(DEFAULT_SECRET_VAR_PATTERNS) + list(name_patterns or []))]
        self.reference_keys = tuple(reference_keys)
        self.min_length = min_length

    def is_secret_name(self, name):
        return isinstance(name, str) and any(r.search(name) for r in self.name_res)

    def _references(self, value, found):
        if isinstance(value, dict):
            for key, item in value.items():
                if key in self.reference_keys and isinstance(item, str) and item:
                    found.add(item)
                else:
                    self._references(item, found)
        elif isinstance(value, (list, tuple)):
            for item in value:
                self._references(item, found)
        return found

    @staticmethod
    def _url_parts(value):
        """The secret-bearing parts of a secret URL (webhook tokens, keys in the path or query), to redact them alone too."""
        match = _URL_RE.match(value.strip())
        if not match:
            return set()
        parts = set()
        if match.group('userinfo'):
            parts.add(match.group('userinfo'))
        for piece in re.split(r'[/?&=#;]+', match.group('rest') or ''):
            if len(piece) >= URL_PART_MIN_LENGTH and re.search(r'\d', piece) and re.search(r'[A-Za-z]', piece):
                parts.add(piece)
        return parts

    def _literal(self, value, out):
        if isinstance(value, bool) or value is None:
            return
        if isinstance(value, (int, float)):
            value = str(value)
        if isinstance(value, str):
            if len(value) >= self.min_length and '{{' not in value:
                out.add(value)
                out.update(self._url_parts(value))
        elif isinstance(value, dict):
            for item in value.values():
                self._literal(item, out)
        elif isinstance(value, (list, tuple)):
            for item in value:
                self._literal(item, out)

    def collect(self, variables, resolve=None):
        """Secret literal values among `variables` (a mapping of name -> raw value)."""
        literals = set()
        if not variables:
            return literals
        referenced = set()
        for name in ('incident_services', 'incident_contacts'):
            if name in variables:
                value = variables[name]
                if resolve is not None:
                    try:
                        value = resolve(value)
                    except Exception:  # pylint: disable=broad-except
                        pass
                self._references(value, referenced)
        for name in list(variables):
            if isinstance(name, str) and _REFERENCE_NAME_RE.search(name):
                value = variables[name]
                if isinstance(value, str):
                    value = [value]
                elif isinstance(value, dict):
                    value = list(value.values())
                if isinstance(value, (list, tuple)):
                    referenced.update(v for v in value if isinstance(v, str) and v and '{{' not in v)
        for name in list(variables):
            if not (name in referenced or self.is_secret_name(name)):
                continue
            value = variables[name]
            if resolve is not None:
                try:
                    value = resolve(value)
                except Exception:  # pylint: disable=broad-except
                    pass
            self._literal(value, literals)
        return literals


def secret_literals(task_vars, resolve=None, patterns=None):
    """Secret values among a task's variables (secret-looking names, `password_var` references).

    `resolve` is a callable turning a raw value into its final value, or a Templar (its `template` is used).
    """
    if resolve is not None and not callable(resolve) and hasattr(resolve, 'template'):
        resolve = resolve.template
    visible = dict((k, v) for k, v in (task_vars or {}).items() if k not in ('hostvars', 'vars', 'groups'))
    return SecretCollector(name_patterns=patterns).collect(visible, resolve=resolve)


def _store_of(path):
    # the incident store imports this module (secret_literals): imported when first used
    from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore
    return IncidentStore.of_path(path)


def _store_at(incident_dir, incident_id):
    from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore
    return IncidentStore.at(incident_dir, incident_id)


class TimelineWriter(object):
    """Buffers events until the incident is known, then appends them (redacted) to timeline.jsonl.

    Switching to another incident flushes to the new one; events of different
    incidents never share a file.
    """

    def __init__(self, redactor=None, append=append_jsonl):
        self.redactor = redactor or Redactor()
        self._append = append
        self.incident_id = None
        self.path = None
        self.buffer = []
        self.written = 0

    @property
    def known(self):
        return self.path is not None

    @property
    def timeline_path(self):
        return _store_of(self.path).timeline_path if self.path else None

    def add_secrets(self, literals):
        if literals:
            self.redactor.add_literals(literals)

    def set_incident(self, incident_id, path=None, incident_dir=None):
        """Bind to an incident by id and absolute path (or dir root); flush buffered events. Returns True on change."""
        if not valid_incident_id(incident_id):
            return False
        if not path:
            path = _store_at(incident_dir or 'incidents', incident_id).path
        path = os.path.abspath(str(path))
        if incident_id == self.incident_id and path == self.path:
            return False
        self.incident_id = str(incident_id)
        self.path = path
        self.flush()
        return True

    def emit(self, event):
        """Write one event now when the incident is known, else keep it for later."""
        self.buffer.append(event)
        if self.known:
            self.flush()

    def emit_many(self, events):
        """Write several events in one locked, fsynced append (or keep them for later)."""
        self.buffer.extend(events)
        if self.known:
            self.flush()

    def flush(self):
        if not self.known or not self.buffer:
            return 0
        events = []
        for event in self.buffer:
            event = dict(event)
            event['incident_id'] = self.incident_id
            events.append(self.redactor.data(event))  # keys too (e.g. host names in a task's data.hosts)
        self.buffer = []
        count = self._append(self.timeline_path, events)
        self.written += count
        return count


__all__ = ['secret_literals', 'TASK_STATUSES', 'TaskClock', 'SecretCollector', 'TimelineWriter', 'task_event', 'play_event',
           'summarize_result', 'task_status', 'new_run_id', 'isoformat', 'TaskResults', 'compact_task_event',
           'task_results', 'is_compact_task', 'DETAILED_STATUSES']
