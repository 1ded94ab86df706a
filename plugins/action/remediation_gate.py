# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: the approval gate of every remediation (documentation in plugins/modules/remediation_gate.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import uuid

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import load_extra_vars

from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import diagnosis
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import incident_approval
from ansible_collections.sre.incident_response.plugins.module_utils import remediation as logic
from ansible_collections.sre.incident_response.plugins.plugin_utils import remediation_lock as locking
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore, task_redactor

display = Display()

# what the identity reads from the task's variables: AWX's job variables (claims: only whether and what they say,
# never templated) and the inventory policy for the controller to ask (templated like any inventory value)
_CLAIM_VARS = incident_approval.AWX_CLAIM_VARS
_POLICY_VARS = ('remediation_awx_url', 'remediation_awx_validate_certs')


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
        lock_timeout=dict(type='int', default=locking.DEFAULT_LOCK_TIMEOUT),
        incident_id=dict(type='str', default=''),
        incident_dir=dict(type='path'),
    )

    def _identity(self, args, task_vars, applying):
        """The launcher from what the caller cannot set (plugin_utils/incident/incident_approval.py)."""
        try:
            extra = load_extra_vars(self._loader)
        except Exception:  # pylint: disable=broad-except
            extra = {}
        policy_vars = dict((key, str(task_vars[key])) for key in _CLAIM_VARS if task_vars.get(key) is not None)
        for key in _POLICY_VARS:
            if key in task_vars and key not in extra:
                policy_vars[key] = self._templar.template(task_vars[key])
            elif key in extra:
                policy_vars[key] = None
        # the role passes the policy variables as arguments; the same names given with -e are ignored
        if args['launcher']:
            policy_vars['remediation_launcher'] = args['launcher']
        policy_vars['remediation_allow_self_approval'] = args['allow_self_approval']
        return incident_approval.launcher_identity(policy_vars, extra, os.environ, ask_controller=applying)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGSPEC)
        store = IncidentStore.resolve({'incident_id': args['incident_id'], 'incident_dir': args['incident_dir']}, task_vars)
        decision, evidence, following = self.gate(args, task_vars, store)
        result.update(changed=False, gate=decision, evidence=evidence, next=following, msg=decision['msg'])
        return result

    def gate(self, args, task_vars, store):
        """(decision, evidence, next): plan or apply decided, and recorded under the lock for an apply; raises
        AnsibleActionFail (after recording the refusal) when another run holds the incident too long.
        remediation_run calls it with the same arguments."""
        check_mode = bool(self._task.check_mode)
        ident = self._identity(args, task_vars, args['apply'] and not check_mode)
        budget = args['budget']
        if budget is None:
            budget = logic.DEFAULT_BUDGET.get(args['action'])
        host = task_vars.get('inventory_hostname')

        def decide(events):
            decision = logic.decide(
                args['action'], service=args['service'] or None, apply=args['apply'], check_mode=check_mode,
                approved_by=args['approved_by'], reason=args['approval_reason'], change_ref=args['change_ref'],
                launcher=ident['launcher'], allow_self_approval=ident['allow_self_approval'],
                budget=budget if store else None,
                used=logic.count_actions(events, args['action'], args['service'] or None),
                incident_id=store.incident_id if store else None, identities=ident['identities'],
                identity_problems=ident['problems'])
            decision.update(launcher_source=ident['source'], launcher_notes=ident['notes'],
                            allow_self_approval=ident['allow_self_approval'],
                            incident_id=store.incident_id if store else None)
            if ident['notes']:
                decision['msg'] = '%s (%s)' % (decision['msg'], '; '.join(ident['notes']))
            previous = logic.find_action(events, decision['approval_id'], host) if store else None
            decision['already_applied'] = bool(previous)
            decision['already_applied_at'] = previous['ts'] if previous else None
            decision['already_applied_state'] = previous['state'] if previous else None
            decision['intent_id'] = None
            return decision

        if store is None:
            decision = decide([])
            decision['budget_note'] = 'no incident_id: the per-incident budget and single-use approval cannot be enforced'
        elif args['apply'] and not check_mode:
            decision = self._decide_under_lock(store, decide, args, host, task_vars)
        else:
            decision = decide(store.timeline())
        # the symptom checks of the hypothesis the action came from: verification re-runs them (roles/remediation)
        doc = (store.diagnosis() or {}) if store else {}
        evidence = diagnosis.evidence_of(doc, args['action'], args['service']) if store else []
        # what remains once this action worked (the other hypotheses with an action): the verification names the next
        following = diagnosis.next_actions(doc, args['action'], args['service']) if store else []
        return decision, evidence, following

    def _decide_under_lock(self, store, decide, args, host, task_vars):
        """Wait for other runs' open intents, then decide and append the approval (and the intent) under the lock."""
        me = locking.run_owner(os.getppid())  # the ansible-playbook process: the worker ends with this task
        redactor = task_redactor(task_vars, self._templar)
        timeout = max(int(args['lock_timeout']), 0)
        where = '%s on %s' % (args['action'], args['service'] or '-')

        def record(decision):
            store.append(self._events(store, decision, args, host, me), redactor)

        def on_wait(entry):
            display.display('%s: %s waits for another run to settle %s (intent %s), at most %d s'
                            % (host, where, locking.describe_intent(entry), entry['intent_id'], timeout))

        try:
            return locking.decide_under_lock(store.remediation_lock_path, lambda: store.timeline(fresh=True),
                                             decide, record, me, timeout=timeout, on_wait=on_wait)
        except locking.StillActing as exc:
            msg = ('REFUSED: %s was not applied, nothing changed: %s in incident %s. Re-run when it has finished (its '
                   '`action` event with status done or failed settles it).' % (where, exc, store.incident_id))
        except locking.LockTimeout as exc:
            msg = 'REFUSED: %s was not applied, nothing changed: %s' % (where, exc)
        except (OSError, ValueError) as exc:
            raise AnsibleActionFail('%s: could not read or write incident %s (%s); nothing was changed'
                                    % (where, store.incident_id, exc))
        # the refusal is recorded like every other (an append needs no remediation lock)
        store.append(store.event('approval', msg[:250], host=host, data={
            'action': args['action'], 'service': args['service'], 'decision': 'refused', 'refusal': msg,
            'approved_by': args['approved_by'], 'reason': args['approval_reason'], 'change_ref': args['change_ref']}),
            redactor)
        raise AnsibleActionFail(msg)

    @staticmethod
    def _events(store, decision, args, host, owner):
        """The approval event, and for a granted apply the intent (an `action` event with status started)."""
        action, service = args['action'], args['service']
        out = [store.event('approval', '%s on %s %s: %s' % (action, service, decision['decision'], decision['msg'][:200]),
                           host=host, data={
                               'action': action, 'service': service, 'decision': decision['decision'],
                               'approved_by': decision['approved_by'], 'reason': decision['reason'],
                               'change_ref': decision['change_ref'], 'launcher': decision['launcher'],
                               'launcher_source': decision['launcher_source'],
                               'launcher_notes': decision['launcher_notes'], 'identities': decision['identities'],
                               'identity_problems': decision['identity_problems'],
                               'allow_self_approval': decision['allow_self_approval'],
                               'four_eyes': decision['four_eyes'], 'budget': decision['budget'],
                               'approval_id': decision['approval_id']})]
        if decision['apply']:
            decision['intent_id'] = uuid.uuid4().hex[:16]
            out.append(store.event(
                'action', '%s on %s: starting (approved by %s, intent %s)' % (action, service, decision['approved_by'],
                                                                              decision['intent_id']),
                host=host, data={'action': action, 'service': service, 'status': logic.STARTED,
                                 'intent_id': decision['intent_id'], 'approval_id': decision['approval_id'],
                                 'approved_by': decision['approved_by'], 'change_ref': decision['change_ref'],
                                 'launcher': decision['launcher'], 'owner': owner}))
        return out
