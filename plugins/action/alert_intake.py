# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: one Alertmanager alert event -> the incident of its group (documentation in plugins/modules/alert_intake.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sre.incident_response.plugins.module_utils import alerts


class ActionModule(ActionBase):
    """Runs on the controller, where the incident directory lives."""

    TRANSFERS_FILES = False
    _requires_connection = False

    ARGSPEC = dict(
        event=dict(type='dict', required=True),
        incident_dir=dict(type='path', default='incidents'),
        hosts_services=dict(type='dict', default={}),
        severity_map=dict(type='dict', default={}),
        throttle_minutes=dict(type='float', default=10.0),
        contacts=dict(type='dict', default={}),
    )

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGSPEC)
        if args['throttle_minutes'] < 0:
            raise AnsibleActionFail('throttle_minutes must be 0 or more, got %s' % args['throttle_minutes'])
        try:
            outcome = alerts.intake(
                args['event'], incident_dir=args['incident_dir'], hosts_services=args['hosts_services'],
                severity_map=args['severity_map'], throttle_minutes=args['throttle_minutes'],
                contacts=args['contacts'], host=task_vars.get('inventory_hostname') if task_vars else None)
        except (ValueError, OSError) as exc:
            raise AnsibleActionFail(str(exc))
        result.update(outcome)
        result['changed'] = bool(outcome['incident_id'])
        result['ansible_facts'] = {'alert_intake': outcome}
        if outcome['incident_id']:
            result['ansible_facts'].update(incident_id=outcome['incident_id'], incident_path=outcome['incident_path'])
        result['msg'] = '%s %s: %s' % ('declared' if outcome['created'] else 'appended to',
                                       outcome['incident_id'] or '(no incident)', outcome['triage_reason'])
        return result
