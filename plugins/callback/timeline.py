# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: timeline
type: notification
short_description: Write the incident timeline (timeline.jsonl) and the post-mortem draft
description:
  - Appends one JSON line per event to C(<incident_dir>/<incident_id>/timeline.jsonl) as events happen
    (play start and end, task results), each write locked, flushed and fsynced, so that a run killed by
    SIGINT or SIGKILL leaves a valid file.
  - Task results are recorded compactly. The results of a task are kept in memory while its hosts run it, then
    written as ONE C(task) event when the task is done (at the next task or handler, the end of the play or of
    the run, and on an interrupted run by the exit hook) - C(host) is the host when one host ran it, else null;
    C(summary) is the task name and the count of each status
    (C(ok 98, changed 0, failed 1, unreachable 1, skipped 0)); C(data) holds C(task), C(action), C(play),
    C(role), C(run), C(task_id), C(counts) and C(hosts) (host -> C(status), C(duration_s), C(ignored) for an
    ignored failure). So a flush is one locked, fsynced append, not one per host.
  - A failed or unreachable result also gets its own detailed event at once, as a per-host C(task) event with
    C(status), C(duration_s), C(msg), C(rc), C(stderr) tail and C(data.detail=true). A run killed with SIGKILL
    loses only the successful results of the task it was running.
  - Findings, plans, approvals, actions, verifications, messages and notes are appended to the same file
    by the C(sre.incident_response.finding) and C(sre.incident_response.timeline_event) action plugins.
  - The incident is taken from the extra variables C(incident_id) and C(incident_dir), or from the facts
    C(incident_id) and C(incident_path) that the C(sre.incident_response.incident) role sets. Events are
    kept in memory until the incident is known, then written; runs without an incident write nothing.
  - Redacts before writing. Results of C(no_log) tasks are never written (only the fact that they were
    hidden), task arguments are never written, values matching the secret patterns are replaced, and the
    values of secret variables (names matching O(secret_var_patterns), variables named by a C(password_var)
    in C(incident_services)) are replaced wherever they appear.
  - At the end of every run renders the post-mortem draft C(postmortem-YYYY-MM-DD.md) into the incident
    directory, unless the incident is already resolved (C(playbooks/resolve.yml) writes the final one).
  - Works beside any stdout callback, including the one of AWX and ansible-runner (C(awx_display)).
version_added: 0.1.0
author: sre.incident_response contributors (@sre-incident-response)
requirements:
  - Enable it in ansible.cfg with C(callbacks_enabled = sre.incident_response.timeline) (or C(ANSIBLE_CALLBACKS_ENABLED)).
options:
  incident_dir:
    description:
      - Root directory of incident directories, used when the incident comes from O(incident_id) or the
        C(incident_id) extra variable without C(incident_dir).
    type: path
    default: incidents
    env:
      - name: SRE_INCIDENT_DIR
    ini:
      - section: sre_incident_timeline
        key: incident_dir
  incident_id:
    description:
      - An incident id to record into when the run declares none (for example set by an AWX job template).
        The C(incident_id) extra variable takes precedence.
    type: str
    env:
      - name: SRE_INCIDENT_ID
    ini:
      - section: sre_incident_timeline
        key: incident_id
  incident_id_source:
    description:
      - Where the incident comes from. V(auto) uses the extra variables (or O(incident_id)) and follows the
        facts set by the incident role; V(vars) only the extra variables and O(incident_id); V(facts) only
        the facts C(incident_id) and C(incident_path).
    type: str
    default: auto
    choices: [auto, vars, facts]
    env:
      - name: SRE_INCIDENT_ID_SOURCE
    ini:
      - section: sre_incident_timeline
        key: incident_id_source
  redact_patterns:
    description:
      - Extra regular expressions whose matches are replaced in every event, in addition to the default
        secret patterns of the collection (URL credentials, webhook paths, bearer tokens, C(password=) values).
    type: list
    elements: str
    default: []
    env:
      - name: SRE_INCIDENT_REDACT_PATTERNS
    ini:
      - section: sre_incident_timeline
        key: redact_patterns
  secret_var_patterns:
    description:
      - Extra regular expressions on variable names; the values of matching variables are redacted literally.
        Names ending in password, token, secret, api_key, webhook_url, routing_key and similar always are.
    type: list
    elements: str
    default: []
    env:
      - name: SRE_INCIDENT_SECRET_VAR_PATTERNS
    ini:
      - section: sre_incident_timeline
        key: secret_var_patterns
  secret_scan_hosts:
    description:
      - At most this many hosts of each play have their variables scanned for secret values (the variables
        of group C(all) and the extra variables are always scanned).
    type: int
    default: 50
    env:
      - name: SRE_INCIDENT_SECRET_SCAN_HOSTS
    ini:
      - section: sre_incident_timeline
        key: secret_scan_hosts
  record_skipped:
    description: List skipped task results in the task's event too (as status C(skipped)); when false they are left out.
    type: bool
    default: true
    env:
      - name: SRE_INCIDENT_RECORD_SKIPPED
    ini:
      - section: sre_incident_timeline
        key: record_skipped
  result_max_chars:
    description: Longest message or stderr excerpt kept from a task result.
    type: int
    default: 300
    env:
      - name: SRE_INCIDENT_RESULT_MAX_CHARS
    ini:
      - section: sre_incident_timeline
        key: result_max_chars
  postmortem_draft:
    description: Render the post-mortem draft into the incident directory at the end of every run.
    type: bool
    default: true
    env:
      - name: SRE_INCIDENT_POSTMORTEM_DRAFT
    ini:
      - section: sre_incident_timeline
        key: postmortem_draft
'''

import atexit

from ansible import context
from ansible.plugins.callback import CallbackBase

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.files import (
    isoformat,
    valid_incident_id,
)
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore
from ansible_collections.sre.incident_response.plugins.plugin_utils.render.postmortem import (
    IncidentRecord,
    render_to_dir,
)
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.timeline import (
    DETAILED_STATUSES,
    TaskClock,
    TaskResults,
    TimelineWriter,
    new_run_id,
    play_event,
    task_event,
    task_status,
)
from ansible_collections.sre.incident_response.plugins.plugin_utils.play_secrets import PlaySecrets


class CallbackModule(CallbackBase):
    """Translates v2_* hooks into TimelineWriter calls; the logic lives in plugin_utils/incident/timeline.py."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'notification'
    CALLBACK_NAME = 'sre.incident_response.timeline'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super(CallbackModule, self).__init__(display=display)
        self.run_id = new_run_id()
        self.clock = TaskClock()
        self.tasks = TaskResults()
        self.writer = None
        self.secrets = None
        self.playbook = None
        self.play_name = None
        self.play_count = 0
        self.default_owner = None
        self._opts = {}
        self._finished = False
        self._write_failed = False
        self._pending = None
        self._failed = False
        atexit.register(self._at_exit)

    # --- options ---------------------------------------------------------------------------------

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super(CallbackModule, self).set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self._opts = {
            'incident_dir': self.get_option('incident_dir') or 'incidents',
            'incident_id': self.get_option('incident_id'),
            'incident_id_source': self.get_option('incident_id_source') or 'auto',
            'redact_patterns': list(self.get_option('redact_patterns') or []),
            'secret_var_patterns': list(self.get_option('secret_var_patterns') or []),
            'secret_scan_hosts': int(self.get_option('secret_scan_hosts')),
            'record_skipped': bool(self.get_option('record_skipped')),
            'result_max_chars': int(self.get_option('result_max_chars')),
            'postmortem_draft': bool(self.get_option('postmortem_draft')),
        }
        self.writer = TimelineWriter(redactor=Redactor(patterns=self._opts['redact_patterns']))
        self.secrets = PlaySecrets(name_patterns=self._opts['secret_var_patterns'],
                                   max_hosts=self._opts['secret_scan_hosts'])

    def _ensure(self):
        if self.writer is None:
            self.set_options()

    # --- incident discovery and secrets ----------------------------------------------------------

    def _from_vars(self, extra_vars):
        if self._opts['incident_id_source'] == 'facts':
            return
        incident_id = extra_vars.get('incident_id') or self._opts['incident_id']
        if not incident_id or not valid_incident_id(str(incident_id)):
            return
        incident_dir = extra_vars.get('incident_dir') or self._opts['incident_dir']
        try:
            exists = IncidentStore.at(str(incident_dir), str(incident_id)).exists()
        except ValueError:
            return
        if not exists and self._opts['incident_id_source'] != 'vars':
            # A new id: keep the events until a task has succeeded or the incident directory exists (or the run
            # ends without a failure), so a run refused by its first task - the input checks of every entry
            # playbook - leaves no half-written incident directory behind.
            self._pending = (str(incident_id), str(incident_dir))
            return
        self._bind(str(incident_id), incident_dir=str(incident_dir))

    def _from_facts(self, facts, hostname):
        if self._opts['incident_id_source'] == 'vars' or not isinstance(facts, dict):
            return
        incident_id = facts.get('incident_id')
        path = facts.get('incident_path')
        if not incident_id and path:
            incident_id = IncidentStore.of_path(str(path)).incident_id
        if not incident_id or not valid_incident_id(str(incident_id)):
            return
        if path:
            self._bind(str(incident_id), path=str(path))
        elif facts.get('incident_dir') or self.writer.incident_id != str(incident_id):
            self._bind(str(incident_id), incident_dir=str(facts.get('incident_dir') or self._opts['incident_dir']))

    def _bind(self, incident_id, path=None, incident_dir=None):
        try:
            self.writer.set_incident(incident_id, path=path, incident_dir=incident_dir)
        except (OSError, ValueError) as exc:
            if not self._write_failed:
                self._write_failed = True
                self._display.warning('sre.incident_response.timeline: cannot write the timeline of %s: %s'
                                      % (incident_id, exc))

    def _bind_pending(self, exists_only):
        if not self._pending or self.writer.known:
            return
        incident_id, incident_dir = self._pending
        if exists_only and not IncidentStore.at(incident_dir, incident_id).exists():
            return
        self._pending = None
        self._bind(incident_id, incident_dir=incident_dir)

    def _scan_secrets(self, play):
        """Collect secret values visible to the play (plugin_utils/play_secrets.py); returns the extra variables."""
        def owner(variables, resolve):
            if self.default_owner is None:
                try:
                    contacts = resolve(variables.get('incident_contacts') or {})
                    self.default_owner = (contacts.get('oncall') or {}).get('handle') or ''
                except Exception:  # pylint: disable=broad-except
                    self.default_owner = ''

        literals, extra = self.secrets.scan(play, on_host=owner)
        self.writer.add_secrets(literals)
        return extra

    def _emit(self, event):
        self._write([event])

    def _emit_tasks(self, interrupted=False):
        """Write the buffered results: one compact `task` event per task, in one append."""
        if len(self.tasks):
            self._write(self.tasks.drain(interrupted=interrupted))

    def _write(self, events):
        """Append events (or keep them until the incident is known); a failed write warns once, never raises."""
        try:
            self.writer.emit_many(events)
        except (OSError, ValueError) as exc:
            if not self._write_failed:
                self._write_failed = True
                self._display.warning('sre.incident_response.timeline: cannot write %s: %s'
                                      % (self.writer.timeline_path, exc))

    def _render_draft(self):
        if not self.writer.known or not self._opts.get('postmortem_draft', True):
            return
        try:
            record = IncidentRecord.load(self.writer.path, incident_id=self.writer.incident_id)
            if str(record.incident.get('status', '')).lower() == 'resolved':
                return
            dest, changed, _text = render_to_dir(self.writer.path, record, final=False,
                                                 inputs={'default_owner': self.default_owner or '@oncall'},
                                                 redactor=self.writer.redactor)
            self._display.vv('sre.incident_response.timeline: post-mortem draft %s (%s) at %s'
                             % (dest, 'updated' if changed else 'unchanged', isoformat()))
        except Exception as exc:  # pylint: disable=broad-except
            self._display.warning('sre.incident_response.timeline: could not render the post-mortem draft: %s' % exc)

    def _at_exit(self):
        """An interrupted run (SIGINT, a fatal error) never reaches v2_playbook_on_stats: still leave a draft."""
        if self._finished or self.writer is None or not self.writer.known:
            return
        self._finished = True
        self._end_play(interrupted=True)
        try:
            self.writer.flush()
        except Exception:  # pylint: disable=broad-except
            pass
        self._render_draft()

    # --- hooks -----------------------------------------------------------------------------------

    def v2_playbook_on_start(self, playbook):
        self._ensure()
        self.playbook = getattr(playbook, '_file_name', None)

    def _end_play(self, stats=None, interrupted=False):
        self._emit_tasks(interrupted=interrupted)
        if self.play_name is None:
            return
        event = play_event(None, 'end', self.play_name, run_id=self.run_id, playbook=self.playbook, stats=stats)
        if interrupted:
            event['data']['interrupted'] = True
            event['summary'] += ' - run interrupted'
        self._emit(event)
        self.play_name = None

    def v2_playbook_on_play_start(self, play):
        self._ensure()
        self._end_play()
        self.play_count += 1
        self.play_name = play.get_name() or 'unnamed play'
        extra = self._scan_secrets(play)
        self._from_vars(extra)
        event = play_event(None, 'start', self.play_name, hosts=list(play.hosts or []) if isinstance(play.hosts, list)
                           else [str(play.hosts)], run_id=self.run_id, playbook=self.playbook,
                           check_mode=bool(context.CLIARGS.get('check')))
        event['data']['first_in_run'] = self.play_count == 1
        self._emit(event)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._ensure()
        self._emit_tasks()  # the previous task is done on every host
        self.clock.task_started(task._uuid)  # pylint: disable=protected-access

    def v2_playbook_on_handler_task_start(self, task):
        self._ensure()
        self._emit_tasks()
        self.clock.task_started(task._uuid)  # pylint: disable=protected-access

    def v2_runner_on_start(self, host, task):
        self.clock.host_started(host.get_name(), task._uuid)  # pylint: disable=protected-access

    def _result(self, hook, result, ignore_errors=False):
        self._ensure()
        task = result.task
        host = result.host.get_name()
        data = result.result or {}
        task_id = task._uuid  # pylint: disable=protected-access
        if hook == 'skipped' and not self._opts['record_skipped']:
            self.clock.elapsed(host, task_id)
            return
        status = task_status(hook, data)
        duration = self.clock.elapsed(host, task_id)
        role = task._role.get_name() if getattr(task, '_role', None) else None  # pylint: disable=protected-access
        if hook == 'failed' and not ignore_errors:
            self._failed = True
        # A new incident id is bound at the first task that succeeded (the entry playbooks' first task is the input
        # check), or as soon as its directory exists.
        self._bind_pending(exists_only=hook != 'ok')
        if status in DETAILED_STATUSES:
            # rare and what the post-mortem is about: its own event with the message, written at once
            if task.no_log is True:
                data = dict(data, _ansible_no_log=True)
            self._emit(task_event(
                None, host, task.get_name(), status, duration=duration, result=data, action=task.action,
                play=self.play_name, role=role, run_id=self.run_id, ignore_errors=ignore_errors,
                max_chars=self._opts['result_max_chars'], task_id=task_id, detail=True))
        # Filed after the detailed event: the compact event takes the time of its last result, and the file stays
        # in time order only if that is not earlier than a detailed event already written.
        self.tasks.add(task_id, host, status, duration=duration, ignored=ignore_errors,
                       task={'task': task.get_name(), 'action': task.action, 'play': self.play_name, 'role': role,
                             'run': self.run_id})
        if hook == 'ok':
            self._from_facts(data.get('ansible_facts'), host)

    def v2_runner_on_ok(self, result):
        self._result('ok', result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result('failed', result, ignore_errors=ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._result('skipped', result)

    def v2_runner_on_unreachable(self, result):
        self._result('unreachable', result)

    def v2_playbook_on_stats(self, stats):
        self._ensure()
        self._finished = True
        if not self._failed:
            self._bind_pending(exists_only=False)
        summary = {}
        for host in sorted(stats.processed.keys()):
            summary[host] = stats.summarize(host)
        self._end_play(stats=summary)
        try:
            self.writer.flush()
        except (OSError, ValueError) as exc:
            self._display.warning('sre.incident_response.timeline: cannot write the timeline: %s' % exc)
        if not self.writer.known:
            self._display.vvv('sre.incident_response.timeline: no incident known in this run; nothing recorded')
            return
        self._render_draft()
