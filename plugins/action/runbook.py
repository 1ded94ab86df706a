# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: render docs/runbooks/<service>-runbook.md (documentation in plugins/modules/runbook.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.files import write_rendered
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor
from ansible_collections.sre.incident_response.plugins.plugin_utils.render.runbook import RunbookRenderer


class ActionModule(ActionBase):
    """Runs on the controller: the runbooks are documents of the checkout that runs the playbook."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    ARGSPEC = dict(
        services=dict(type='list', elements='dict', required=True),
        contacts=dict(type='dict', default={}),
        dependencies=dict(type='list', elements='dict', default=[]),
        dest=dict(type='path', required=True),
        inventory=dict(type='str', default='inventory/lab'),
    )

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGSPEC)
        for entry in args['services']:
            if not isinstance(entry.get('service'), dict) or not entry['service'].get('name'):
                raise AnsibleActionFail('every item of services needs host and service (an incident_services entry '
                                        'with a name), got %r' % (entry,))
        inventory = str(args['inventory'] or 'inventory/lab')
        if os.path.isabs(inventory):
            relative = os.path.relpath(inventory, os.getcwd())
            if not relative.startswith('..'):
                inventory = relative
        renderer = RunbookRenderer(args['services'], contacts=args['contacts'], dependencies=args['dependencies'],
                                   inventory=inventory, redactor=Redactor())
        documents = renderer.render_all()
        check = bool(self._task.check_mode)
        changed_files = []
        kept = []
        for name, text in sorted(documents.items()):
            dest = os.path.join(args['dest'], name)
            # A runbook a person edited is never overwritten: the new rendering goes beside it (<name>.new.md).
            outcome = write_rendered(dest, text, mode=0o644, check_mode=check)
            if outcome['changed']:
                changed_files.append(outcome['path'])
            if outcome['status'] == 'edited':
                kept.append('%s (edited; new rendering in %s)' % (dest, os.path.basename(outcome['path'])))
        result.update(
            changed=bool(changed_files),
            files=[os.path.join(args['dest'], n) for n in sorted(documents)],
            changed_files=changed_files,
            edited=kept,
            services=sorted(renderer.services()),
            msg='%d runbooks in %s, %d changed%s' % (len(documents), args['dest'], len(changed_files),
                                                     ('; kept edited: ' + ', '.join(kept)) if kept else ''),
        )
        return result
