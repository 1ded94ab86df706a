# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: one batch of alerts of one Alertmanager group -> the incident of its group.

Documentation in plugins/modules/alert_intake.py. The alert text never passes through a template: the
event is read from the task's variables as it is (the playbook does not write `{{ ansible_eda.event }}`)
and its payload is base64-encoded JSON decoded here; a notification file is parsed here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sre.incident_response.plugins.plugin_utils.comms import alerts
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import task_redactor


class ActionModule(ActionBase):
    """Runs on the controller, where the incident directory lives."""

    TRANSFERS_FILES = False
    _requires_connection = False

    ARGSPEC = dict(
        event=dict(type='dict'),
        notification_file=dict(type='path'),
        incident_dir=dict(type='path', default='incidents'),
        hosts_services=dict(type='dict', default={}),
        severity_map=dict(type='dict', default={}),
        throttle_minutes=dict(type='float', default=10.0),
        contacts=dict(type='dict', default={}),
    )

    @staticmethod
    def _rulebook_event(task_vars):
        """ansible_eda.event as ansible-rulebook passed it (an extra var), read without templating it."""
        eda = (task_vars or {}).get('ansible_eda')
        return eda.get('event') if isinstance(eda, dict) else None

    def _batch(self, args, task_vars):
        if args['event'] and args['notification_file']:
            raise ValueError('give event or notification_file, not both')
        if args['notification_file']:
            return alerts.read_notification_file(args['notification_file'])
        event = args['event'] or self._rulebook_event(task_vars)
        if not event:
            raise ValueError('no alert: this playbook is run by the rulebook (ansible_eda.event); %s' % alerts.BY_HAND)
        return alerts.decode_event(event)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGSPEC)
        if args['throttle_minutes'] < 0:
            raise AnsibleActionFail('throttle_minutes must be 0 or more, got %s' % args['throttle_minutes'])
        groups = (task_vars or {}).get('groups') or {}
        inventory_names = set(groups) | set(groups.get('all') or [])
        redactor = task_redactor(task_vars, self._templar)
        try:
            outcome = alerts.intake(
                self._batch(args, task_vars), incident_dir=args['incident_dir'],
                hosts_services=args['hosts_services'], severity_map=args['severity_map'],
                throttle_minutes=args['throttle_minutes'], contacts=args['contacts'],
                host=task_vars.get('inventory_hostname') if task_vars else None, inventory_names=inventory_names,
                redactor=redactor)
        except (ValueError, OSError) as exc:
            raise AnsibleActionFail(redactor.text(str(exc)))
        outcome = redactor.data(outcome)
        result.update(outcome)
        result['changed'] = bool(outcome['incident_id'])
        result['ansible_facts'] = {'alert_intake': outcome}
        if outcome['incident_id']:
            result['ansible_facts'].update(incident_id=outcome['incident_id'], incident_path=outcome['incident_path'])
        result['msg'] = '%s %s: %d alert(s), %s' % ('declared' if outcome['created'] else 'appended to',
                                                    outcome['incident_id'] or '(no incident)', outcome['alerts'],
                                                    outcome['triage_reason'])
        return result
