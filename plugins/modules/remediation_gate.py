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
  - The approval gate of every remediation role. Runs on the controller (action plugin) and changes nothing.
  - Without O(apply), or in check mode, the decision is C(plan).
  - With O(apply) the decision is C(apply) only when O(approved_by) and O(approval_reason) or O(change_ref) are given,
    the approver is not the launcher for destructive classes (terminate, evict, delete) unless O(allow_self_approval),
    and the incident's action budget for this action is not used up (changing C(action) events of the timeline).
  - A refused apply is returned with C(gate.refused=true) and a message; the caller records it and fails.
  - The launcher is O(launcher), else the AWX/AAP variables C(awx_user_name) / C(tower_user_name), else the OS user.
author: sre.incident_response contributors
options:
  action:
    description: The remediation action.
    type: str
    required: true
    choices: [apply_cert, clean_disk, flush_keys, kill_query, raise_maxmemory, restart, rollback]
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
    already_applied:
      description: An action event with the same token and a change already exists (single-use approvals).
      type: bool
      sample: false
    budget:
      description: Limit and used count.
      type: dict
      sample: {limit: 3, used: 1}
'''
