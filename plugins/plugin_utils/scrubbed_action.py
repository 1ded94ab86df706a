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
from ansible.utils.display import Display

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import task_redactor

display = Display()


def renamed_choices(args, renamed, module):
    """The task's arguments with a choice's former name replaced by its name, and the deprecation messages."""
    args, messages = dict(args), []
    for option, names in renamed.items():
        old = args.get(option)
        if isinstance(old, str) and old in names:
            args[option] = names[old]
            messages.append('%s: %s=%s is now %s=%s' % (module, option, old, option, names[old]))
    return args, messages


class ScrubbedModuleAction(NormalAction):
    """Runs the module of the same name as ansible.builtin.normal does; returns its result redacted."""

    # an async job's result would come back through async_status, past this redaction
    _supports_async = False
    # option -> {former name of a choice: its name}: still accepted here, with a deprecation warning
    RENAMED_CHOICES = {}

    def run(self, tmp=None, task_vars=None):
        if self.RENAMED_CHOICES:
            self._task.args, messages = renamed_choices(self._task.args, self.RENAMED_CHOICES, self._task.action)
            for message in messages:
                display.deprecated(message, version='1.0.0', collection_name='sre.incident_response')
        result = super(ScrubbedModuleAction, self).run(tmp, task_vars)
        return task_redactor(task_vars or {}, self._templar).data(result)
