#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the timeline_event action plugin (the work is done on the controller)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: timeline_event
short_description: Append one event to the incident timeline
version_added: 0.1.0
description:
  - Runs on the controller (action plugin). Appends one event to C(<incident_dir>/<incident_id>/timeline.jsonl)
    with a locked, flushed and fsynced write; the file is never rewritten.
  - For the events the timeline callback cannot see by itself, such as C(plan), C(approval), C(action), C(verify),
    C(comms), C(note), C(diagnosis) and C(resolved).
  - The event is redacted first, with the default secret patterns, O(redact_patterns), the variable
    C(incident_redact_patterns), and the values of the task's secret variables (names ending in password,
    token, secret, webhook_url and the like, and variables named by a C(password_var) in C(incident_services)).
  - When no incident is known (no O(incident_id) and no C(incident_id) variable or fact) it records nothing and
    says so; it never fails for that.
author:
  - sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.attributes
attributes:
  check_mode:
    support: full
    details: The record lives on the controller and is written in check mode too (plans are recorded); targets are never touched.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  kind:
    description: The event kind.
    type: str
    required: true
    choices: [declared, severity, play, task, finding, diagnosis, plan, approval, action, verify, comms, note, resolved]
  summary:
    description: One line a human reads at 3 a.m.
    type: str
    required: true
  data:
    description: Structured details of the event.
    type: dict
    default: {}
  host:
    description: The host the event is about; defaults to C(inventory_hostname).
    type: str
  incident_id:
    description: The incident; defaults to the C(incident_id) fact or variable.
    type: str
  incident_dir:
    description:
      - Root of the incident directories. Defaults to the directory of the C(incident_path) fact, else the
        C(incident_dir) variable, else C(incidents).
    type: path
  redact_patterns:
    description: Extra regular expressions whose matches are replaced before writing.
    type: list
    elements: str
    default: []
notes:
  - Changes nothing on the target, so it always reports C(changed=false).
seealso:
  - plugin: sre.incident_response.timeline
    plugin_type: callback
'''

EXAMPLES = r'''
- name: Record the approval of the remediation
  sre.incident_response.timeline_event:
    kind: approval
    summary: "kill_query approved by {{ approved_by }}: {{ approval_reason }}"
    data:
      action: kill_query
      approved_by: "{{ approved_by }}"
      reason: "{{ approval_reason }}"

- name: Add a note from the commander
  sre.incident_response.timeline_event:
    kind: note
    summary: Customer support reports checkout failures since 14:25
    incident_id: INC-20261127-0312-a1b2
    incident_dir: incidents
  run_once: true
'''

RETURN = r'''
recorded:
  description: Whether an event was appended.
  returned: always
  type: bool
  sample: true
event:
  description: The event as written (redacted).
  returned: when recorded
  type: dict
  sample:
    ts: "2026-11-27T03:12:09.412Z"
    incident_id: INC-20261127-0312-a1b2
    kind: approval
    host: app-db
    summary: kill_query approved by alice
    data: {action: kill_query}
incident_id:
  description: The incident the event was recorded in.
  returned: when recorded
  type: str
  sample: INC-20261127-0312-a1b2
incident_path:
  description: Absolute path of the incident directory.
  returned: when recorded
  type: str
  sample: /srv/ops/incidents/INC-20261127-0312-a1b2
timeline:
  description: Absolute path of timeline.jsonl.
  returned: when recorded
  type: str
  sample: /srv/ops/incidents/INC-20261127-0312-a1b2/timeline.jsonl
'''
