# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: the approval gate of every remediation (documentation in plugins/modules/remediation_gate.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import getpass
import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.vars import load_extra_vars

from ansible_collections.sre.incident_response.plugins.module_utils import incident_approval
from ansible_collections.sre.incident_response.plugins.module_utils import incident_files as files
from ansible_collections.sre.incident_response.plugins.module_utils import remediation as logic


class ActionModule(ActionBase):
    """Runs on the controller, where the incident directory and the launcher's identity are."""

    TRANSFERS_FILES = False
    _requires_connection = False

    ARGSPEC = dict(
        action=dict(type='str', required=True, choices=sorted(logic.ACTIONS)),
        service=dict(type='str', default=''),
        apply=dict(type='bool', default=False),
        approved_by=dict(type='str', default=''),
        approval_reason=dict(type='str', default=''),
        change_ref=dict(type='str', default=''),
        launcher=dict(type='str', default=''),
        allow_self_approval=dict(type='bool', default=False),
        budget=dict(type='int'),
        incident_id=dict(type='str', default=''),
        incident_dir=dict(type='path'),
    )

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGSPEC)
        incident_id = args['incident_id'] or task_vars.get('incident_id') or ''
        incident_dir = logic.resolve_incident_dir(args['incident_dir'], incident_id, task_vars)
        # The launcher is who runs this (OS user / SUDO_USER, or awx_user_name in an AWX job), never an extra var:
        # a policy may name it, or lift four eyes, only in inventory or the playbook.
        try:
            extra = load_extra_vars(self._loader)
        except Exception:  # pylint: disable=broad-except
            extra = {}
        try:
            os_user = getpass.getuser()
        except Exception:  # no passwd entry (containers)
            os_user = os.environ.get('USER', 'unknown')
        policy_vars = dict(task_vars)
        if args['launcher'] and args['launcher'] != str(extra.get('remediation_launcher', '')).strip():
            policy_vars['remediation_launcher'] = args['launcher']
        launcher, source, allow_self, notes = incident_approval.launcher_identity(policy_vars, extra, os.environ, os_user)
        if args['allow_self_approval'] and 'remediation_allow_self_approval' not in extra:
            allow_self = True
        events = []
        if incident_id:
            try:
                events = files.read_jsonl(os.path.join(files.incident_path(incident_dir, incident_id), files.TIMELINE))
            except ValueError as exc:
                raise AnsibleActionFail(str(exc))
        used = logic.count_actions(events, args['action'], args['service'] or None)
        budget = args['budget']
        if budget is None:
            budget = logic.DEFAULT_BUDGET.get(args['action'])
        decision = logic.decide(
            args['action'], service=args['service'] or None, apply=args['apply'],
            check_mode=bool(self._task.check_mode), approved_by=args['approved_by'],
            reason=args['approval_reason'], change_ref=args['change_ref'], launcher=launcher,
            allow_self_approval=allow_self, budget=budget if incident_id else None,
            used=used, incident_id=incident_id or None)
        decision['launcher_source'] = source
        decision['launcher_notes'] = notes
        decision['allow_self_approval'] = allow_self
        if notes:
            decision['msg'] = '%s (%s)' % (decision['msg'], '; '.join(notes))
        decision['incident_id'] = incident_id or None
        previous = logic.find_action(events, decision['approval_id']) if incident_id else None
        decision['already_applied'] = bool(previous)
        decision['already_applied_at'] = previous.get('ts') if previous else None
        if not incident_id:
            decision['budget_note'] = 'no incident_id: the per-incident budget and single-use approval cannot be enforced'
        result.update(changed=False, gate=decision, msg=decision['msg'])
        return result
