#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the diagnose action plugin (the work is done on the controller)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: diagnose
short_description: Match an incident's findings against the quick-reference patterns
version_added: 0.1.0
description:
  - Runs on the controller (action plugin). Reads C(findings.json) of the incident and writes C(diagnosis.json)
    with hypotheses ranked by confidence, each with C(pattern) (C(backend_down), C(slow_responses),
    C(partial_failures), C(memory_growth), C(error_spike_after_deploy), C(gradual_degradation)), C(likely_cause),
    C(evidence) (finding keys C(host/check)), C(confidence) and C(first_action) (the exact playbook command).
  - Every hypothesis cites at least one C(warn) or C(crit) finding; with no such finding the diagnosis says the
    system is healthy and has no hypotheses.
  - Also computes the severity floor the findings imply (every backend down means SEV1, a C(crit) on every
    backend at least SEV2, any other C(crit) SEV3, warnings SEV4) and raises the incident's severity to it.
  - Sets the facts C(diagnosis) (and C(incident) when the incident exists); with C(run_once) on every play host.
  - Appends one C(diagnosis) event to the timeline.
author:
  - sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.attributes
attributes:
  check_mode:
    support: full
    details: Reads and writes only the incident record on the controller, in check mode too.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  incident_id:
    description: The incident; defaults to the C(incident_id) fact.
    type: str
    default: ''
  incident_dir:
    description: Root of the incident directories; defaults to the C(incident_path) fact's parent, else C(incidents).
    type: path
  services:
    description: C(incident_services) per host (host name to list of services); finds the backends and endpoints.
    type: dict
    default: {}
  backend_kinds:
    description: Service kinds that count as backends for the severity floor and C(backend_down).
    type: list
    elements: str
    default: [backend]
  inventory:
    description: Inventory shown in the first-action commands; defaults to the sources of this run (relative).
    type: str
    default: ''
  playbook_dir:
    description: Directory of the collection's playbooks in the commands; defaults to this run's playbook directory.
    type: str
    default: ''
  record:
    description: Append a C(diagnosis) event to the timeline.
    type: bool
    default: true
  raise_severity:
    description:
      - Raise the incident's severity to the floor the findings imply (updates incident.json, appends a
        C(severity) event, refreshes the C(incident) fact). Never lowers it.
    type: bool
    default: true
seealso:
  - module: sre.incident_response.incident_context
'''

EXAMPLES = r'''
- name: Diagnose the incident's findings
  sre.incident_response.diagnose:
    services: "{{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)
                  | map(attribute='incident_services', default=[]))) }}"
  register: diagnosis
  run_once: true
'''

RETURN = r'''
report:
  description: Printable lines - the summary and the top three hypotheses with their first actions.
  returned: success
  type: list
  elements: str
  sample: ["backend_down (...)", "1. backend_down (confidence 0.95): Backend crashed [evidence: app-backend/health.container]"]
diagnosis:
  description: The document written to diagnosis.json.
  returned: success
  type: dict
  sample: {"healthy": false, "severity_floor": "SEV2", "affected_services": ["backend"],
           "hypotheses": [{"rank": 1, "pattern": "error_spike_after_deploy", "confidence": 0.95,
                           "likely_cause": "Bug in the new code", "evidence": ["app-backend/deploy.recent", "app-backend/app.errors"],
                           "first_action": "ansible-playbook playbooks/remediate.yml -i inventory/lab -e remediation_action=rollback
                                            -e incident_id=INC-1 -e service=backend"}]}
top:
  description: The first hypothesis, or null when there is none.
  returned: success
  type: dict
  sample: {"pattern": "backend_down", "confidence": 0.95}
healthy:
  description: True when no symptom check is C(warn) or C(crit); null when there were no findings.
  returned: success
  type: bool
  sample: false
severity_floor:
  description: The severity the findings imply (empty when healthy).
  returned: success
  type: str
  sample: SEV2
severity_reasons:
  description: Why the floor applies.
  returned: success
  type: list
  elements: str
  sample: ["crit on every backend (app-backend/app.errors)"]
severity_raised_to:
  description: The new severity when the findings raised it, else null.
  returned: success
  type: str
  sample: SEV1
path:
  description: Path of diagnosis.json.
  returned: success
  type: str
  sample: /srv/ops/incidents/INC-20261127-0312-a1b2/diagnosis.json
'''
