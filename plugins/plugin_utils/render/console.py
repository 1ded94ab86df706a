# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The on-call console: task results in, the few lines a responder needs at 3 a.m. out.

Pure logic behind the ``sre.incident_response.oncall`` stdout callback (plugins/callback/oncall.py), so that it can
be tested on recorded events. Each method takes plain data (a play name, a task's action, tags and result dict)
and returns the lines to print as ``(text, style)`` tuples; ``style`` is one of ``phase``, ``info``, ``ok``,
``warn``, ``crit``, ``unknown``, ``next`` and maps to a colour in the callback.

What it prints: the incident id and severity (and every severity change), each phase (play) as it starts and
how long it took, every finding that is not ok the moment it is recorded, the diagnosis, messages written or
sent, the text of the debug tasks meant for the responder (tagged ``oncall_message``: plans, verifications,
refusals), and at the end the incident directory and the exact next command.

A result is known by what it is, never by its task's name (a playbook copy may rename any task): by its action
(``finding``, ``diagnose``, ``comms_deliver``, ``incident_context``), its keys, and for debug tasks by their tag.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch

from ansible_collections.sre.incident_response.plugins.module_utils import timefmt
from ansible_collections.sre.incident_response.plugins.module_utils.findings import STATUSES, finding_line, worst_first

# Debug tasks whose text is for the responder carry this tag (plans, verifications, refusals, reports); the rest
# of the debug output is repeated by the console itself (the incident, findings, diagnosis and messages) or is
# detail for -v.
MESSAGE_TAG = 'oncall_message'
# The comms role's report (its delivery task is no_log): one line per message file and the delivery outcome.
COMMS_REPORT_TAG = 'oncall_comms_report'


def _one_line(text, limit):
    text = ' '.join(str(text if text is not None else '').split())
    if limit and len(text) > limit:
        return text[:max(limit - 3, 1)].rstrip() + '...'
    return text


def _is_finding(item):
    return isinstance(item, dict) and 'check' in item and 'status' in item


# what a host lacks when an area has no client (evidence.client none): the area's name for the person
NO_CLIENT_AREAS = (('pg.', 'PostgreSQL'), ('redis.', 'Redis'))


def _no_client(item):
    """The packages that would fix a finding of an area with no client on its host (evidence.client none, also
    inside a combined finding of several services), else None."""
    evidence = item.get('evidence') if isinstance(item.get('evidence'), dict) else {}
    inner = [evidence]
    if isinstance(evidence.get('services'), dict):
        inner = [s.get('evidence') for s in evidence['services'].values()
                 if isinstance(s, dict) and isinstance(s.get('evidence'), dict)]
    if not inner or any(e.get('client') != 'none' for e in inner):
        return None
    install = []
    for e in inner:
        install.extend(str(p) for p in (e.get('install') or []) if str(p) not in install)
    return install


class Console(object):
    """State of one run: the incident, the current phase, what was already printed."""

    def __init__(self, max_chars=220, hypotheses=3, messages_from=(), show_ok=False, cwd=None):
        self.max_chars = int(max_chars or 0)
        self.hypotheses = max(int(hypotheses), 1)
        self.messages_from = list(messages_from or [])  # names (shell patterns) of a user's own debug tasks
        self.show_ok = bool(show_ok)
        self.cwd = cwd  # paths below it are printed relative to it
        self.incident_id = None
        self.severity = None
        self.incident_path = None
        self.phase = None
        self.phase_started = None
        self.phase_count = 0
        self.next_command = None
        self.healthy = None
        self._printed_findings = set()
        self._printed_no_client = set()  # hosts whose missing client was printed (once per host)
        self._last_diagnosis = None
        self._printed_messages = set()

    # --- phases ----------------------------------------------------------------------------------

    def play_start(self, name, now, clock=''):
        lines = self.play_end(now)
        self.phase = name or 'unnamed play'
        self.phase_started = now
        self.phase_count += 1
        lines.append(('== %s%s' % (self.phase, ('  [%s]' % clock) if clock else ''), 'phase'))
        return lines

    def play_end(self, now):
        if self.phase is None:
            return []
        took = max(now - self.phase_started, 0.0)
        self.phase = None
        return [('   done in %s' % timefmt.elapsed(took), 'info')]

    # --- results ---------------------------------------------------------------------------------

    def result(self, task_name, action, data, tags=()):
        """An ok (or changed) task result; returns the lines it deserves (most results deserve none).

        task_name is read only against ``messages_from`` (a user's own debug tasks); the collection's results are
        known by action, keys and tags."""
        if not isinstance(data, dict):
            return []
        short = str(action or '').rsplit('.', 1)[-1]
        lines = self._incident(data)
        if short == 'finding' and isinstance(data.get('findings'), list) and data.get('recorded', True):
            lines.extend(self._findings(data['findings']))
        if isinstance(data.get('diagnosis'), dict):
            lines.extend(self._diagnosis(data['diagnosis']))
        if short == 'comms_deliver' and isinstance(data.get('messages'), list):
            lines.extend(self._comms(data))
        if short == 'debug':
            lines.extend(self._debug_result(task_name, tags, data))
        if short == 'remediation_run' and MESSAGE_TAG in set(str(t) for t in (tags or ())):
            lines.extend(self._debug({'msg': data.get('lines')}) if data.get('lines') else [])
        return lines

    def _debug_result(self, task_name, tags, data):
        tags = set(str(t) for t in (tags or ()))
        if COMMS_REPORT_TAG in tags:
            return self._comms_report(data.get('msg'))
        if MESSAGE_TAG in tags or self._wanted(task_name):
            return self._debug(data)
        return []

    def _incident(self, data):
        facts = data.get('ansible_facts') if isinstance(data.get('ansible_facts'), dict) else {}
        incident = facts.get('incident') if isinstance(facts.get('incident'), dict) else None
        if facts.get('incident_path'):
            self.incident_path = str(facts['incident_path'])
        if not incident or not incident.get('id'):
            return []
        lines = []
        severity = incident.get('severity')
        if incident.get('id') != self.incident_id:
            self.incident_id = str(incident['id'])
            self.severity = severity
            commander = incident.get('commander')
            lines.append(('   INCIDENT %s  %s  %s%s' % (
                self.incident_id, severity or 'SEV?', _one_line(incident.get('title') or '', 80),
                ('  commander %s' % _one_line(commander, 60)) if commander else ''), 'crit' if severity in ('SEV1', 'SEV2') else 'warn'))
        elif severity and severity != self.severity:
            lines.append(('   SEVERITY %s -> %s' % (self.severity or 'SEV?', severity), 'crit'))
            self.severity = severity
        return lines

    def _findings(self, findings):
        lines = self._no_client_lines(findings)
        for item in sorted((f for f in findings if _is_finding(f)), key=worst_first):
            status = str(item.get('status'))
            if status == 'ok' and not self.show_ok:
                continue
            if _no_client(item) is not None:
                continue
            summary = _one_line(item.get('summary'), self.max_chars)
            seen = (item.get('host'), item.get('check'), status, summary)
            if seen in self._printed_findings:
                continue
            self._printed_findings.add(seen)
            lines.append(('   %s' % finding_line(item, summary, width=7),
                          status if status in STATUSES else 'unknown'))
        return lines

    def _no_client_lines(self, findings):
        """One line per host for the areas that have no client there (no library, no CLI), whatever the number
        of areas and services: the same fix (install one package) for all of them."""
        by_host = {}
        for item in findings:
            if _is_finding(item) and _no_client(item) is not None and item.get('host') not in self._printed_no_client:
                by_host.setdefault(item.get('host'), []).append(item)
        lines = []
        for host in sorted(by_host, key=str):
            self._printed_no_client.add(host)
            items = sorted(by_host[host], key=lambda f: str(f.get('check')))
            if len(items) == 1:
                summary = items[0].get('summary')
            else:
                summary = 'no client on the host for %s' % '; '.join(
                    '%s (install %s)' % (next((label for prefix, label in NO_CLIENT_AREAS
                                               if str(f.get('check')).startswith(prefix)), f.get('check')),
                                         ' or '.join(_no_client(f)))
                    for f in items)
            shown = {'status': 'unknown', 'host': host, 'check': ', '.join(str(f.get('check')) for f in items)}
            lines.append(('   %s' % finding_line(shown, _one_line(summary, self.max_chars), width=7), 'unknown'))
        return lines

    def _diagnosis(self, doc):
        hyps = [h for h in (doc.get('hypotheses') or []) if isinstance(h, dict)][:self.hypotheses]
        self.healthy = doc.get('healthy')
        shown = (doc.get('summary'), tuple((h.get('pattern'), h.get('confidence'), h.get('first_action')) for h in hyps))
        if shown == self._last_diagnosis:
            return []
        self._last_diagnosis = shown
        if doc.get('healthy') is True:
            self.next_command = None
            return [('   HEALTHY: %s' % _one_line(doc.get('summary'), self.max_chars), 'ok')]
        lines = []
        if doc.get('affected_services'):
            lines.append(('   AFFECTED %s' % ', '.join(str(s) for s in doc['affected_services']), 'info'))
        if not hyps:
            lines.append(('   DIAGNOSIS %s' % _one_line(doc.get('summary') or 'no quick-reference pattern matched',
                                                        self.max_chars), 'warn'))
            return lines
        for rank, hyp in enumerate(hyps, 1):
            lines.append(('   DIAGNOSIS %d. %s (confidence %.2f): %s' % (
                rank, hyp.get('pattern'), float(hyp.get('confidence') or 0), _one_line(hyp.get('likely_cause'), self.max_chars)),
                'crit' if rank == 1 else 'warn'))
            evidence = hyp.get('evidence') or []
            if evidence:
                lines.append(('      evidence: %s' % ', '.join(str(e) for e in evidence), 'info'))
            if hyp.get('escalation'):  # diagnosis/safety.py refused a restart, kill or delete
                lines.append(('      ESCALATE %s' % _one_line(hyp['escalation'], self.max_chars), 'crit' if rank == 1 else 'warn'))
        top = hyps[0]
        if top.get('first_action'):
            self.next_command = str(top['first_action'])
            lines.append(('   NEXT %s' % self.next_command, 'next'))
        return lines

    def _comms(self, data):
        lines = []
        outcome = []
        for d in data.get('deliveries') or []:
            if not isinstance(d, dict):
                continue
            outcome.append('%s %s' % (d.get('target'), 'skipped' if d.get('skipped') else ('ok' if d.get('ok') else 'FAILED')))
        for msg in data['messages']:
            if not isinstance(msg, dict):
                continue
            key = msg.get('path')
            if key in self._printed_messages:
                continue
            self._printed_messages.add(key)
            lines.append(('   MESSAGE %s (%s) to %s: %s' % (
                msg.get('kind'), msg.get('status') or '-', data.get('channel') or '-', ', '.join(outcome) or 'file only'),
                'warn' if any(o.endswith('FAILED') for o in outcome) else 'info'))
        return lines

    def _comms_report(self, msg):
        lines = []
        for line in (msg if isinstance(msg, list) else str(msg or '').splitlines()):
            line = str(line)
            if line.startswith('(') and line.endswith(')'):
                path = line[1:-1]
                if path in self._printed_messages:
                    continue
                self._printed_messages.add(path)
                lines.append(('   MESSAGE %s' % path.rsplit('/', 1)[-1], 'info'))
            elif line.startswith('Channel '):
                lines.append(('   %s' % _one_line(line, self.max_chars), 'warn' if 'FAILED' in line else 'info'))
        return lines

    def _wanted(self, task_name):
        name = str(task_name or '').split(' : ', 1)[-1]  # 'role : task' -> 'task'
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.messages_from)

    def _debug(self, data):
        msg = data.get('msg')
        if msg is None:
            return []
        items = msg if isinstance(msg, list) else [msg]
        lines = []
        for item in items:
            for line in str(item).splitlines() or ['']:
                lines.append(('   %s' % line, 'info'))
        return lines

    # --- the end ---------------------------------------------------------------------------------

    def finish(self, now):
        lines = self.play_end(now)
        if not self.incident_id:
            return lines
        lines.append(('', 'info'))
        path = self.incident_path
        if path and self.cwd and path.startswith(self.cwd.rstrip('/') + '/'):
            path = path[len(self.cwd.rstrip('/')) + 1:]
        lines.append(('%s  %s%s' % (self.incident_id, self.severity or 'SEV?', ('  files: %s' % path) if path else ''), 'phase'))
        if self.next_command:
            lines.append(('NEXT %s' % self.next_command, 'next'))
        return lines
