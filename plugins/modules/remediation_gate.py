# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: remediation_gate
short_description: Decide whether a remediation plans or applies (approval, four eyes, budget)
version_added: 0.1.0
description:
  - The approval gate of every remediation role. Runs on the controller (action plugin) and changes no target.
  - Without O(apply), or in check mode, the decision is C(plan).
  - With O(apply) the decision is C(apply) only when O(approved_by) and O(approval_reason) or O(change_ref) are given,
    the approver is none of the launcher's accounts for destructive classes (terminate, evict, delete) unless
    O(allow_self_approval), the launcher is established for those classes, and the incident's action budget for
    this action is not used up.
  - The launcher comes only from what the caller cannot set - the kernel (real uid, audit login uid, the caller of
    sudo/su/doas above the run; C(SUDO_USER) only when it agrees) and, in an AWX/AAP job, the controller's API
    (C(remediation_awx_url) from inventory, the job's controller credential). Extra variables and environment
    variables such as C(USER), C(LOGNAME), C(SUDO_USER), C(JOB_ID) or C(awx_user_name) never name it.
  - An apply is decided under the incident's remediation lock (C(<incident>/remediation.lock)) after every other
    run's open intent on the incident is settled (waiting at most O(lock_timeout) seconds); the gate then appends
    the C(approval) event and, when it grants, the intent (an C(action) event with C(status=started)). The role
    settles it (C(status=done) or C(failed)). The budget counts changed and failed attempts and intents that were
    never settled (a run killed after the change).
  - A refused apply is returned with C(gate.refused=true) and a message; the caller fails.
author: sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.attributes
options:
  action:
    description: The remediation action.
    type: str
    required: true
    choices: [apply_cert, clean_disk, flush_keys, kill_clients, kill_query, raise_maxmemory, restart, rollback]
  service:
    description: The service (C(incident_services) name) the action targets; scopes the budget.
    type: str
    default: ''
  apply:
    description: Apply (true) or only plan (false).
    type: bool
    default: false
  approved_by:
    description: Who approved the change (for AWX workflows, the approval node's approver).
    type: str
    default: ''
  approval_reason:
    description: Why the change is approved.
    type: str
    default: ''
  change_ref:
    description: A change or ticket reference, accepted instead of O(approval_reason).
    type: str
    default: ''
  launcher:
    description: Who launched the run; empty means detect it.
    type: str
    default: ''
  allow_self_approval:
    description: Policy switch that lifts the four-eyes rule for destructive classes.
    type: bool
    default: false
  budget:
    description: Maximum number of changing actions of this kind per incident and service; default per action.
    type: int
  lock_timeout:
    description: Seconds an apply waits for other runs acting on the same incident (their open intents) and for the lock.
    type: int
    default: 300
  incident_id:
    description: The incident whose timeline holds the budget; defaults to the C(incident_id) variable.
    type: str
    default: ''
  incident_dir:
    description: Root of the incident directories; defaults to the directory of the C(incident_path) fact, else the C(incident_dir) variable, else C(incidents).
    type: path
attributes:
  check_mode:
    support: full
    details: In check mode the decision is always C(plan).
  diff_mode:
    support: none
notes:
  - Action plugin; runs on the controller.
'''

EXAMPLES = r'''
- name: Gate the restart
  sre.incident_response.remediation_gate:
    action: restart
    service: backend
    apply: "{{ remediation_apply }}"
    approved_by: "{{ remediation_approved_by }}"
    approval_reason: "{{ remediation_approval_reason }}"
  register: __gate
'''

RETURN = r'''
gate:
  description: The decision.
  returned: always
  type: dict
  contains:
    mode:
      description: C(plan) or C(apply).
      type: str
      sample: apply
    refused:
      description: True when an apply was requested and refused.
      type: bool
      sample: false
    decision:
      description: C(plan), C(granted) or C(refused).
      type: str
      sample: granted
    msg:
      description: Why.
      type: str
      sample: approved by alice (CHG-42), launched by bob
    launcher:
      description: Who launched the run.
      type: str
      sample: bob
    approval_id:
      description: Identity of this approval (incident, action, service, approver, reason, change).
      type: str
      sample: 3f2a9c1d0b7e4a55
    launcher_source:
      description: Where the launcher comes from.
      type: str
      sample: "SUDO_USER alice, verified: sudo pid 4120 run by uid 1000"
    identities:
      description: Every account of the run; the approver of a destructive class must be none of them.
      type: list
      elements: str
      sample: [alice, root]
    identity_problems:
      description: Why the launcher is not established (destructive classes are then refused).
      type: list
      elements: str
      sample: []
    intent_id:
      description: The intent recorded for a granted apply (the settle event carries it); null otherwise.
      type: str
      sample: 9b1f0c2d4e6a8b10
    already_applied:
      description: An attempt under the same approval on this host changed something or was interrupted (single-use approvals).
      type: bool
      sample: false
    already_applied_state:
      description: C(done) or C(open) (interrupted) for that attempt; null when there is none.
      type: str
      sample: done
    budget:
      description: Limit and used count (changed or failed attempts, and intents never settled).
      type: dict
      sample: {limit: 3, used: 1}
evidence:
  description:
    - The symptom checks of the hypothesis this action came from (the incident's C(diagnosis.json)), as the
      verification re-runs them; empty without an incident or a hypothesis naming this action.
  returned: always
  type: list
  elements: dict
  sample: [{host: db1, check: pg.connections}]
next:
  description:
    - The other hypotheses of the incident's C(diagnosis.json) that carry an action, best first. A verification that
      finds the action's own symptom gone while the service is still unhealthy prints the first as the next action.
  returned: always
  type: list
  elements: dict
  sample: [{action: restart, service: redis, likely_cause: "Redis unreachable", first_action: "ansible-playbook ..."}]
'''
