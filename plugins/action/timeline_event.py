# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: append one redacted event to the incident timeline (documentation in plugins/modules/timeline_event.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sre.incident_response.plugins.module_utils.incident_files import (
    EVENT_KINDS,
    TIMELINE,
    append_jsonl,
    make_event,
)
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor
from ansible_collections.sre.incident_response.plugins.module_utils.timeline import resolve_incident as _resolve_incident
from ansible_collections.sre.incident_response.plugins.module_utils.timeline import secret_literals


def resolve_incident(args, task_vars):
    """(incident_id, path) of the incident a task records into, or (None, None); shared with the finding action."""
    try:
        return _resolve_incident(args, task_vars)
    except ValueError as exc:
        raise AnsibleActionFail(str(exc))


__all__ = ['resolve_incident', 'secret_literals', 'ActionModule']


class ActionModule(ActionBase):
    """Runs on the controller: the incident directory lives where the playbook runs."""

    TRANSFERS_FILES = False
    _requires_connection = False

    ARGSPEC = dict(
        kind=dict(type='str', required=True, choices=list(EVENT_KINDS)),
        summary=dict(type='str', required=True),
        data=dict(type='dict', default={}),
        host=dict(type='str'),
        incident_id=dict(type='str'),
        incident_dir=dict(type='path'),
        redact_patterns=dict(type='list', elements='str', default=[]),
    )

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGSPEC)
        incident_id, path = resolve_incident(args, task_vars)
        result['changed'] = False
        if not incident_id:
            result.update(skipped=True, recorded=False,
                          msg='no incident_id known (run the incident role first, or give incident_id): event not recorded')
            return result
        patterns = list(args['redact_patterns'] or []) + list(task_vars.get('incident_redact_patterns') or [])
        try:
            literals = secret_literals(task_vars, resolve=self._templar.template)
        except Exception:  # pylint: disable=broad-except
            literals = set()
        redactor = Redactor(patterns=patterns, literals=literals)
        host = args.get('host') or task_vars.get('inventory_hostname')
        event = redactor.data(make_event(incident_id, args['kind'], ' '.join(str(args['summary']).split()),
                                         host=host, data=args['data']))
        try:
            append_jsonl(os.path.join(path, TIMELINE), event)
        except OSError as exc:
            raise AnsibleActionFail('could not append to %s: %s' % (os.path.join(path, TIMELINE), exc))
        result.update(recorded=True, event=event, incident_id=incident_id, incident_path=path,
                      timeline=os.path.join(path, TIMELINE),
                      msg='%s event recorded in %s' % (args['kind'], incident_id))
        return result
