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
short_description: Read an incident directory into the model of report.html, and render report.html
version_added: 0.2.0
description:
  - Runs on the controller (action plugin). Reads C(incident.json), C(timeline.jsonl), C(findings.json),
    C(diagnosis.json), C(evidence/) and the newest C(postmortem-*.md) of an incident and returns the model of
    C(report.html) - timeline lanes and marks with their coordinates, severity changes, messages, the plan / approval /
    action / verify chain, response-time targets, the hosts x checks grid with evidence, the ranked diagnosis and the
    post-mortem text.
  - With O(file), also renders the page into the incident directory from the role's template
    C(roles/report/templates/report.html.j2), in a sandboxed Jinja2 environment that HTML-escapes every value
    (everything in the model came from outside - alert labels, log lines, database rows). The page carries a
    Content-Security-Policy that allows no script and only its own inline style. Do not render the model with
    M(ansible.builtin.template) - it ignores C({% autoescape %}), so the page would go out unescaped.
  - Every string of the model is redacted (default secret patterns, O(redact_patterns), the values of secret variables).
author:
  - sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.attributes
attributes:
  check_mode:
    support: full
    details: Reads only; with O(file), reports whether the page would change and writes nothing.
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
  file:
    description:
      - Render the page to this file name inside the incident directory (a plain C(*.html) name). Written atomically,
        and only when its content changes.
      - Omitted, only the model is returned.
    type: str
'''

EXAMPLES = r'''
- name: Render report.html of the incident
  sre.incident_response.incident_report:
    incident_id: INC-20261127-0312-a1b2
    file: report.html

- name: Read the incident into the report model only
  sre.incident_response.incident_report:
    incident_id: INC-20261127-0312-a1b2
  register: model
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
path:
  description: The page written (or, in check mode, that would be written).
  returned: when O(file) is given
  type: str
  sample: /srv/incidents/INC-20261127-0312-a1b2/report.html
report:
  description: The model of report.html (see plugins/plugin_utils/render/report.py); every string redacted, none escaped.
  returned: always
  type: dict
  sample: {incident: {id: INC-20261127-0312-a1b2, severity: SEV2}, timeline: {lanes: [{host: app-backend, marks: []}]}}
summary:
  description: One line about what the report shows.
  returned: always
  type: str
  sample: "SEV2, 3 host lanes, 18 finding events, 2 hypotheses, post-mortem postmortem-2026-11-27.md"
'''
