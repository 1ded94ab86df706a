#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the incident_report action plugin (the work is done on the controller)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: incident_report
short_description: Read an incident directory into the model of report.html
version_added: 0.2.0
description:
  - Runs on the controller (action plugin) and changes nothing. Reads C(incident.json), C(timeline.jsonl),
    C(findings.json), C(diagnosis.json), C(evidence/) and the newest C(postmortem-*.md) of an incident and returns
    the model the role C(sre.incident_response.report) renders into C(report.html) with its Jinja2 template -
    timeline lanes and marks with their coordinates, severity changes, messages, the plan / approval / action /
    verify chain, response-time targets, the hosts x checks grid with evidence, the ranked diagnosis and the
    post-mortem text.
  - Every string of the model is redacted (default secret patterns, O(redact_patterns), the values of secret variables).
author:
  - sre.incident_response contributors
attributes:
  check_mode:
    support: full
    details: Reads only; the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  incident_id:
    description: Incident id; defaults to the C(incident_id) fact or variable.
    type: str
  incident_dir:
    description: Root of the incident directories; defaults to the C(incident_path) fact, else C(incident_dir), else C(incidents).
    type: path
  redact_patterns:
    description: Extra regular expressions to redact.
    type: list
    elements: str
    default: []
'''

EXAMPLES = r'''
- name: Read the incident into the report model
  sre.incident_response.incident_report:
    incident_id: INC-20261127-0312-a1b2
  register: model

- name: Render it
  ansible.builtin.template:
    src: report.html.j2
    dest: "{{ model.incident_path }}/report.html"
    mode: "0644"
  vars:
    report_model: "{{ model.report }}"
'''

RETURN = r'''
incident_id:
  description: The incident.
  returned: always
  type: str
  sample: INC-20261127-0312-a1b2
incident_path:
  description: Its directory (absolute).
  returned: always
  type: str
  sample: /srv/incidents/INC-20261127-0312-a1b2
report:
  description: The model of report.html (see plugins/module_utils/report.py); every string redacted.
  returned: always
  type: dict
  sample: {incident: {id: INC-20261127-0312-a1b2, severity: SEV2}, timeline: {lanes: [{host: app-backend, marks: []}]}}
summary:
  description: One line about what the report shows.
  returned: always
  type: str
  sample: "SEV2, 3 host lanes, 18 finding events, 2 hypotheses, post-mortem postmortem-2026-11-27.md"
'''
