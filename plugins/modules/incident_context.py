#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the incident_context action plugin (the work is done on the controller)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: incident_context
short_description: Declare or load an incident and classify its severity
version_added: 0.1.0
description:
  - Runs on the controller (action plugin). Creates or loads C(<incident_dir>/<incident_id>/incident.json).
  - Generates an id of the form C(INC-YYYYMMDD-HHMM-xxxx) (UTC) when none is given.
  - Classifies the severity from an explicit O(severity), or from O(impact_facts) through the rules of the
    severity table; O(severity_floor) (from triage findings) may only raise it.
  - Appends a C(declared) event when the incident is created and a C(severity) event whenever the severity
    changes to C(timeline.jsonl). Re-running with the same O(incident_id) loads and appends, never rewrites.
  - Returns the facts C(incident_id), C(incident_path) and C(incident); with C(run_once) they land on every
    host of the play.
author:
  - sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.attributes
attributes:
  check_mode:
    support: full
    details: The incident record lives on the controller and is written in check mode too; targets are never touched.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  incident_id:
    description: The incident id; generated when empty. Letters, digits, C(.), C(_), C(-); at most 64 characters.
    type: str
    default: ''
  incident_dir:
    description:
      - Root of the incident directories (relative to the working directory); a new incident goes under C(incidents)
        without it.
      - Without it, an existing O(incident_id) is found where the incident store resolves it (the incident role's
        C(incident_path) fact, then the variable C(incident_dir), then C(incidents)).
    type: path
  title:
    description: Short title (kept from incident.json when empty on a later run).
    type: str
    default: ''
  commander:
    description: Incident commander; defaults to C(contacts.incident_commander).
    type: str
    default: ''
  started_at:
    description: Start of the impact (ISO 8601); defaults to now on creation.
    type: str
    default: ''
  impact:
    description: What users are experiencing, one sentence.
    type: str
    default: ''
  severity:
    description: Explicit severity C(SEV1)..C(SEV4) or C(P1)..C(P4); wins over O(impact_facts).
    type: str
    default: ''
  impact_facts:
    description:
      - Impact facts for the rules; keys C(service_down), C(data_loss), C(security_breach), C(core_feature_broken),
        C(feature_broken), C(intermittent_errors), C(cosmetic) (booleans), C(users_affected_pct) (0..100) and
        C(latency_factor) (multiple of normal latency).
    type: dict
    default: {}
  thresholds:
    description: Overrides of the rule thresholds (C(users_all_pct), C(users_most_pct), C(users_some_pct),
      C(latency_severe_factor), C(latency_degraded_factor)).
    type: dict
    default: {}
  severity_floor:
    description: A severity the incident must be at least (from findings); raises, never lowers.
    type: str
    default: ''
  severity_floor_reasons:
    description: Why the floor applies (recorded in the C(severity) event).
    type: list
    elements: str
    default: []
  services:
    description: Names of the services in scope (merged into incident.json).
    type: list
    elements: str
    default: []
  contacts:
    description: The contact matrix (C(incident_contacts)), used for the default commander.
    type: dict
    default: {}
  must_exist:
    description: Fail when the incident does not exist yet (for playbooks that act on a declared incident).
    type: bool
    default: false
  default_severity:
    description: Provisional severity when neither O(severity) nor O(impact_facts) decide.
    type: str
    default: SEV4
  status:
    description: Set the incident's status (empty keeps it; a new incident starts as Investigating).
    type: str
    choices: ['', Investigating, Identified, Mitigating, Resolved]
    default: ''
seealso:
  - module: sre.incident_response.diagnose
'''

EXAMPLES = r'''
- name: Declare an incident from impact facts
  sre.incident_response.incident_context:
    title: Checkout returns 500
    impact_facts:
      core_feature_broken: true
      users_affected_pct: 60
  run_once: true

- name: Load an incident and raise its severity from findings
  sre.incident_response.incident_context:
    incident_id: INC-20261127-0312-a1b2
    severity_floor: SEV2
    severity_floor_reasons: ["crit on every backend"]
  run_once: true
'''

RETURN = r'''
incident_id:
  description: The incident id (given or generated).
  returned: success
  type: str
  sample: INC-20261127-0312-a1b2
incident_path:
  description: Absolute path of the incident directory.
  returned: success
  type: str
  sample: /srv/ops/incidents/INC-20261127-0312-a1b2
incident:
  description: The content of incident.json, including C(policy) (response time, cadence, escalation, channel).
  returned: success
  type: dict
  sample: {"id": "INC-20261127-0312-a1b2", "severity": "SEV2", "commander": "On-call IC (@oncall-ic)",
           "started_at": "2026-11-27T03:12:00.000Z", "impact": "Checkout fails", "status": "Investigating",
           "policy": {"response_minutes": 15, "update_minutes": 30, "channel": "#incidents"}}
announced:
  description: Whether an INCIDENT DECLARED message was already written (also the fact C(incident_announced)).
  returned: success
  type: bool
  sample: false
created:
  description: Whether the incident was declared by this call.
  returned: success
  type: bool
  sample: true
severity_changed:
  description: Whether the severity changed (a C(severity) event was appended).
  returned: success
  type: bool
  sample: true
decision:
  description: The severity decision with its source (explicit, impact, findings, current, default) and reasons.
  returned: success
  type: dict
  sample: {"severity": "SEV2", "source": "impact", "reasons": ["core feature broken"], "update_minutes": 30}
events:
  description: Kinds of the timeline events appended.
  returned: success
  type: list
  elements: str
  sample: ["declared", "severity"]
'''
