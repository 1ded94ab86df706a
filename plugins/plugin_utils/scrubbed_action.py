# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action of every plain module of the collection: run the module, redact its result.

A module returns outside data (log lines, session application names, Redis keys, file names)
and knows only the secrets it was given (its no_log options, values only). Its action knows
the task's variables: the result is redacted with task_redactor (the values of the secret
variables, the collection's patterns; keys as well as values) before -v/-vvv print it,
`register` keeps it or a callback sees it. Otherwise it is ansible.builtin.normal.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action.normal import ActionModule as NormalAction

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import task_redactor


class ScrubbedModuleAction(NormalAction):
    """Runs the module of the same name as ansible.builtin.normal does; returns its result redacted."""

    # an async job's result would come back through async_status, past this redaction
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ScrubbedModuleAction, self).run(tmp, task_vars)
        return task_redactor(task_vars or {}, self._templar).data(result)
