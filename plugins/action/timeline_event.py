# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: append one redacted event to the incident timeline (documentation in plugins/modules/timeline_event.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.files import EVENT_KINDS
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore, task_redactor


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
        store = IncidentStore.resolve(args, task_vars)
        result['changed'] = False
        if store is None:
            result.update(skipped=True, recorded=False,
                          msg='no incident_id known (run the incident role first, or give incident_id): event not recorded')
            return result
        incident_id, path = store.incident_id, store.path
        redactor = task_redactor(task_vars, self._templar, args['redact_patterns'])
        host = args.get('host') or task_vars.get('inventory_hostname')
        event = redactor.data(store.event(args['kind'], args['summary'], host=host, data=args['data']))
        try:
            store.append(event, redactor)
        except OSError as exc:
            raise AnsibleActionFail('could not append to %s: %s' % (store.timeline_path, exc))
        result.update(recorded=True, event=event, incident_id=incident_id, incident_path=path,
                      timeline=store.timeline_path,
                      msg='%s event recorded in %s' % (args['kind'], incident_id))
        return result
