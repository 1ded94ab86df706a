# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: oncall
type: stdout
short_description: The on-call console - only what a responder needs at 3 a.m.
description:
  - A stdout callback for the playbooks of this collection. On success it prints only the incident id and severity
    (and every severity change), each phase (play) as it starts and how long it took, every finding that is not ok
    the moment it is recorded, the diagnosis, the messages written or sent, the plan / verification text of the
    remediation playbooks, and at the end the incident directory and the exact next command. No C(ok:) or
    C(skipping:) lines.
  - Failed tasks (unless their errors are ignored) and unreachable hosts are shown in full, with their task banner,
    exactly as the default callback shows them. The C(PLAY RECAP) is kept.
  - With C(-v) or more it behaves exactly like the default callback.
  - At every verbosity, what it prints of a task result is redacted first, keys and values. Redacted are the values
    of the play's secret variables (names ending in password, token, secret and the like, and variables named by a
    C(password_var)) and whatever matches the collection's secret patterns.
  - Under ansible-runner and AWX it runs wrapped by C(awx_display) (set C(ANSIBLE_STDOUT_CALLBACK) for the job,
    see docs/awx.md); the job output is these same lines.
  - The collection's C(ansible.cfg) makes it the stdout callback; C(ANSIBLE_STDOUT_CALLBACK=ansible.builtin.default)
    brings back the full output for one run.
version_added: 0.2.0
author: sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - default_callback
  - result_format_callback
requirements:
  - Set as the stdout callback (C(stdout_callback = sre.incident_response.oncall) in ansible.cfg or C(ANSIBLE_STDOUT_CALLBACK)).
options:
  oncall_max_chars:
    description: Longest summary printed for a finding or a hypothesis (longer ones end in C(...)); 0 prints them whole.
    type: int
    default: 220
    env:
      - name: SRE_ONCALL_MAX_CHARS
    ini:
      - section: sre_incident_oncall
        key: max_chars
  oncall_hypotheses:
    description: How many ranked hypotheses of a diagnosis to print.
    type: int
    default: 3
    env:
      - name: SRE_ONCALL_HYPOTHESES
    ini:
      - section: sre_incident_oncall
        key: hypotheses
  oncall_messages_from:
    description:
      - Names (shell patterns) of your own debug tasks whose message is printed as well. The collection's plans,
        verifications, refusals and reports are printed by their tag C(oncall_message), whatever their task is
        named; so is any debug task of yours that carries that tag. The messages of other debug tasks are left to
        C(-v).
    type: list
    elements: str
    default: []
    env:
      - name: SRE_ONCALL_MESSAGES_FROM
    ini:
      - section: sre_incident_oncall
        key: messages_from
  oncall_show_ok_findings:
    description: Print ok findings too (by default only warn, crit and unknown ones).
    type: bool
    default: false
    env:
      - name: SRE_ONCALL_SHOW_OK_FINDINGS
    ini:
      - section: sre_incident_oncall
        key: show_ok_findings
  oncall_redact_patterns:
    description:
      - Extra regular expressions whose matches are replaced in everything printed, in addition to the default
        secret patterns of the collection (the same variable as the timeline callback's C(redact_patterns)).
    type: list
    elements: str
    default: []
    env:
      - name: SRE_INCIDENT_REDACT_PATTERNS
    ini:
      - section: sre_incident_oncall
        key: redact_patterns
  oncall_secret_var_patterns:
    description:
      - Extra regular expressions on variable names; the values of matching variables are redacted literally
        (the same variable as the timeline callback's C(secret_var_patterns)).
    type: list
    elements: str
    default: []
    env:
      - name: SRE_INCIDENT_SECRET_VAR_PATTERNS
    ini:
      - section: sre_incident_oncall
        key: secret_var_patterns
  oncall_secret_scan_hosts:
    description:
      - At most this many hosts of each play have their variables scanned for secret values, once per play and only
        when something is to be printed (the extra variables and the play's variables are always scanned).
    type: int
    default: 50
    env:
      - name: SRE_INCIDENT_SECRET_SCAN_HOSTS
    ini:
      - section: sre_incident_oncall
        key: secret_scan_hosts
  oncall_clock:
    description: Print the UTC time of day beside each phase.
    type: bool
    default: true
    env:
      - name: SRE_ONCALL_CLOCK
    ini:
      - section: sre_incident_oncall
        key: clock
'''

import os
import time

from ansible import constants as C
from ansible.plugins.callback.default import CallbackModule as DefaultCallbackModule

from ansible_collections.sre.incident_response.plugins.plugin_utils.render.console import Console
from ansible_collections.sre.incident_response.plugins.plugin_utils.render import escape
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor
from ansible_collections.sre.incident_response.plugins.plugin_utils.play_secrets import PlaySecrets

STYLES = {
    'phase': C.COLOR_HIGHLIGHT,
    'info': None,
    'ok': C.COLOR_OK,
    'warn': C.COLOR_WARN,
    'crit': C.COLOR_ERROR,
    'unknown': C.COLOR_SKIP,
    'next': C.COLOR_CHANGED,
}


def _task(result):
    return getattr(result, 'task', None) or getattr(result, '_task', None)


def _tags(task):
    try:
        return list(getattr(task, 'tags', None) or [])
    except Exception:  # pylint: disable=broad-except
        return []


def _data(result):
    data = getattr(result, 'result', None)
    if data is None:
        data = getattr(result, '_result', None)
    return data if isinstance(data, dict) else {}


# Results the compact console reads (plugin_utils/render/console.py): they are redacted before it sees them.
CONSOLE_ACTIONS = ('finding', 'diagnose', 'comms_deliver', 'debug', 'incident_context', 'remediation_run')
CONSOLE_KEYS = ('ansible_facts', 'diagnosis', 'findings', 'messages')


class CallbackModule(DefaultCallbackModule):
    """The default callback with a compact success path; failures and -v go to the default's code."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'sre.incident_response.oncall'

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self.console = None
        self._clock = True
        # the secrets of the plays, scanned when something is to be printed
        self._secrets = PlaySecrets()
        self._redactor = Redactor()
        self._current_play = None
        self._scanned_play = None

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super(CallbackModule, self).set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self._clock = bool(self.get_option('oncall_clock'))
        self._secrets = PlaySecrets(name_patterns=list(self.get_option('oncall_secret_var_patterns') or []),
                                    max_hosts=int(self.get_option('oncall_secret_scan_hosts')))
        self._redactor = Redactor(patterns=list(self.get_option('oncall_redact_patterns') or []))
        self._scanned_play = None
        self.console = Console(max_chars=self.get_option('oncall_max_chars'),
                               hypotheses=self.get_option('oncall_hypotheses'),
                               messages_from=self.get_option('oncall_messages_from'),
                               show_ok=self.get_option('oncall_show_ok_findings'), cwd=os.getcwd())

    @property
    def compact(self):
        return self._display.verbosity < 1

    def _emit(self, lines):
        for text, style in lines:
            # summaries quote log lines and database contents: escape sequences in them must not reach the terminal
            self._display.display(escape.terminal(text), color=STYLES.get(style))

    def _ensure(self):
        if self.console is None:
            self.set_options()

    # --- redaction ---------------------------------------------------------------------------------

    def _redaction(self):
        """The redactor, with the secrets of the current play (scanned once per play, on first use)."""
        play = self._current_play
        if play is not None and self._scanned_play is not play:
            self._scanned_play = play
            literals, dummy = self._secrets.scan(play)
            self._redactor.add_literals(literals)
        return self._redactor

    def _scrub(self, result):
        """Redact a task result in place, before the default callback's code prints any of it."""
        data = getattr(result, 'result', None)
        if data is None:
            data = getattr(result, '_result', None)
        if not data:
            return
        try:
            clean = self._redaction().data(dict(data))
            data.clear()
            data.update(clean)
        except Exception:  # pylint: disable=broad-except
            # never print what could not be redacted
            data.clear()
            data.update(msg='(output hidden: it could not be redacted)', censored=True)

    # --- phases ------------------------------------------------------------------------------------

    def v2_playbook_on_start(self, playbook):
        if not self.compact:
            return super(CallbackModule, self).v2_playbook_on_start(playbook)
        self._ensure()
        return None

    def v2_playbook_on_play_start(self, play):
        self._current_play = play
        if not self.compact:
            return super(CallbackModule, self).v2_playbook_on_play_start(play)
        self._ensure()
        self._play = play
        clock = time.strftime('%H:%M:%SZ', time.gmtime()) if self._clock else ''
        self._emit(self.console.play_start(play.get_name().strip(), time.monotonic(), clock))
        return None

    def v2_playbook_on_task_start(self, task, is_conditional):
        if not self.compact:
            return super(CallbackModule, self).v2_playbook_on_task_start(task, is_conditional)
        # The banner is printed only when a failure or an unreachable host needs it.
        self._last_task_name = task.get_name().strip()
        return None

    def v2_playbook_on_handler_task_start(self, task):
        if not self.compact:
            return super(CallbackModule, self).v2_playbook_on_handler_task_start(task)
        self._task_type_cache[task._uuid] = 'RUNNING HANDLER'  # pylint: disable=protected-access
        self._last_task_name = task.get_name().strip()
        return None

    def v2_playbook_on_include(self, included_file):
        if not self.compact:
            return super(CallbackModule, self).v2_playbook_on_include(included_file)
        return None

    def v2_playbook_on_no_hosts_matched(self):
        if not self.compact:
            return super(CallbackModule, self).v2_playbook_on_no_hosts_matched()
        self._emit([('   no hosts matched', 'warn')])
        return None

    # --- results -----------------------------------------------------------------------------------

    def _ok(self, result):
        self._ensure()
        task = _task(result)
        action = getattr(task, 'action', '') or ''
        data = _data(result)
        if data and (str(action).rsplit('.', 1)[-1] in CONSOLE_ACTIONS or any(k in data for k in CONSOLE_KEYS)):
            self._scrub(result)  # before the console shortens a line (a cut secret is no longer found)
            data = _data(result)
        self._emit(self.console.result(task.get_name().strip() if task else '', action, data, tags=_tags(task)))

    def v2_runner_on_ok(self, result):
        if not self.compact:
            self._scrub(result)
            return super(CallbackModule, self).v2_runner_on_ok(result)
        self._ok(result)
        return None

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not self.compact or not ignore_errors:
            self._scrub(result)
            return super(CallbackModule, self).v2_runner_on_failed(result, ignore_errors=ignore_errors)
        # An ignored error is handled by the play (probes turn it into an unknown finding): not news.
        return None

    def v2_runner_on_skipped(self, result):
        if not self.compact:
            self._scrub(result)
            return super(CallbackModule, self).v2_runner_on_skipped(result)
        return None

    def v2_runner_item_on_ok(self, result):
        if not self.compact:
            self._scrub(result)
            return super(CallbackModule, self).v2_runner_item_on_ok(result)
        self._ok(result)
        return None

    def v2_runner_item_on_skipped(self, result):
        if not self.compact:
            self._scrub(result)
            return super(CallbackModule, self).v2_runner_item_on_skipped(result)
        return None

    def v2_runner_item_on_failed(self, result):
        self._scrub(result)
        return super(CallbackModule, self).v2_runner_item_on_failed(result)

    def v2_runner_on_unreachable(self, result):
        self._scrub(result)
        return super(CallbackModule, self).v2_runner_on_unreachable(result)

    def v2_runner_retry(self, result):
        if not self.compact:
            self._scrub(result)
            return super(CallbackModule, self).v2_runner_retry(result)
        return None

    def v2_runner_on_async_poll(self, result):
        if not self.compact:
            self._scrub(result)
            return super(CallbackModule, self).v2_runner_on_async_poll(result)
        return None

    def v2_runner_on_async_ok(self, result):
        if not self.compact:
            self._scrub(result)
            return super(CallbackModule, self).v2_runner_on_async_ok(result)
        return None

    def v2_runner_on_async_failed(self, result):
        self._scrub(result)
        return super(CallbackModule, self).v2_runner_on_async_failed(result)

    def v2_on_file_diff(self, result):
        if not self.compact:
            self._scrub(result)
            return super(CallbackModule, self).v2_on_file_diff(result)
        return None

    def v2_playbook_on_notify(self, handler, host):
        if not self.compact:
            return super(CallbackModule, self).v2_playbook_on_notify(handler, host)
        return None

    # --- the end -----------------------------------------------------------------------------------

    def v2_playbook_on_stats(self, stats):
        if self.compact:
            self._ensure()
            self._emit(self.console.finish(time.monotonic()))
        return super(CallbackModule, self).v2_playbook_on_stats(stats)
