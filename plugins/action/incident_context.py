# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: declare or load an incident, classify its severity (documentation in plugins/modules/incident_context.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import incident as logic
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore, task_redactor


class ActionModule(ActionBase):
    """Runs on the controller: the incident directory lives where the playbook runs."""

    TRANSFERS_FILES = False
    _requires_connection = False

    ARGSPEC = dict(
        incident_id=dict(type='str', default=''),
        incident_dir=dict(type='path'),
        title=dict(type='str', default=''),
        commander=dict(type='str', default=''),
        started_at=dict(type='str', default=''),
        impact=dict(type='str', default=''),
        severity=dict(type='str', default=''),
        impact_facts=dict(type='dict', default={}),
        thresholds=dict(type='dict', default={}),
        severity_floor=dict(type='str', default=''),
        severity_floor_reasons=dict(type='list', elements='str', default=[]),
        services=dict(type='list', elements='str', default=[]),
        contacts=dict(type='dict', default={}),
        must_exist=dict(type='bool', default=False),
        default_severity=dict(type='str', default='SEV4'),
        status=dict(type='str', default='', choices=['', 'Investigating', 'Identified', 'Mitigating', 'Resolved']),
    )

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGSPEC)
        # free text of the caller (an alert's summary, a person's words) may quote a secret: redacted before
        # incident.json and the timeline (plugin_utils/incident/incident.py knows the collection's patterns only)
        redactor = task_redactor(task_vars or {}, self._templar)
        for key in ('title', 'commander', 'impact', 'severity_floor_reasons'):
            args[key] = redactor.data(args[key])
        # an incident named without its directory is where the store resolves it (the incident role's facts,
        # then `incident_dir`); a new one goes under incident_dir (default `incidents`)
        store = None
        if args['incident_id'] and not args['incident_dir']:
            store = IncidentStore.resolve({'incident_id': args['incident_id']}, task_vars or {})
        try:
            outcome = logic.declare_or_load(
                store=store,
                incident_id=args['incident_id'],
                incident_dir=args['incident_dir'] or 'incidents',
                title=args['title'],
                commander=args['commander'],
                started_at=args['started_at'],
                impact=args['impact'],
                severity=args['severity'],
                impact_facts=args['impact_facts'],
                thresholds=args['thresholds'],
                severity_floor=args['severity_floor'],
                severity_floor_reasons=args['severity_floor_reasons'],
                services=args['services'],
                contacts=args['contacts'],
                must_exist=args['must_exist'],
                default_severity=args['default_severity'],
                status=args['status'],
                host=task_vars.get('inventory_hostname') if task_vars else None,
            )
        except (ValueError, OSError) as exc:
            raise AnsibleActionFail(str(exc))
        incident = outcome['incident']
        result.update(
            changed=bool(outcome['created'] or outcome['severity_changed']),
            created=outcome['created'],
            announced=outcome['announced'],
            severity_changed=outcome['severity_changed'],
            events=outcome['events'],
            incident=incident,
            incident_id=incident['id'],
            incident_path=outcome['path'],
            decision=outcome['decision'],
            ansible_facts=dict(
                incident_id=incident['id'],
                incident_path=outcome['path'],
                incident=incident,
                incident_announced=outcome['announced'],
            ),
            msg='%s %s: %s (%s)' % ('declared' if outcome['created'] else 'loaded', incident['id'],
                                    incident['severity'], outcome['path']),
        )
        return result
