#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the postmortem action plugin (the work is done on the controller)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: postmortem
short_description: Render the post-mortem of an incident and mark it resolved
version_added: 0.1.0
description:
  - Runs on the controller (action plugin). Renders C(postmortem-YYYY-MM-DD.md) (the date of the incident start,
    UTC) into the incident directory from C(incident.json), C(timeline.jsonl), C(findings.json) and C(diagnosis.json).
  - "Sections: Summary (date, severity, duration, impact), Timeline (C(HH:MM - event), UTC, significant events only),
    Root cause (given, or the top hypothesis of the diagnosis marked as suspected), Five whys (given, or prompts),
    Contributing factors, What went well, What could be improved, Response times (acknowledge, mitigate, resolve
    against the severity's response target), Action items (C(<measure> - Owner: @name - Due: YYYY-MM-DD); every
    finding that was C(crit) yields at least a proposed item) and the post-mortem requirement of the severity."
  - With O(state=final) it first marks the incident resolved, once (a C(resolved) event in the timeline and
    C(status=Resolved) with C(resolved_at) in C(incident.json)). Running it again changes nothing.
  - The same renderer writes the draft at the end of every run (the timeline callback) and serves
    C(scripts/generate-incident-report.py).
  - Everything written is redacted (default secret patterns, O(redact_patterns), the values of secret variables).
author:
  - sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.attributes
attributes:
  check_mode:
    support: full
    details: In check mode nothing is written; C(changed) tells whether the incident would be resolved or the file would change.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  incident_id:
    description: The incident; defaults to the C(incident_id) fact or variable.
    type: str
  incident_dir:
    description: Root of the incident directories; defaults to the C(incident_path) fact's directory, else C(incident_dir), else C(incidents).
    type: path
  state:
    description: V(draft) renders only; V(final) marks the incident resolved and renders the final document.
    type: str
    choices: [draft, final]
    default: draft
  resolved_at:
    description: Resolution time (ISO 8601, UTC); now when empty. Only used the first time the incident is resolved.
    type: str
    default: ''
  resolved_by:
    description: Who declared the resolution.
    type: str
    default: ''
  title:
    description: Overrides the incident title in the document.
    type: str
    default: ''
  impact:
    description: Impact on users (and revenue); defaults to the incident's impact statement.
    type: str
    default: ''
  summary:
    description: One line of what happened; defaults to the top hypothesis or the crit findings.
    type: str
    default: ''
  root_cause:
    description: The confirmed root cause; when empty the top hypothesis of C(diagnosis.json) is shown as suspected.
    type: str
    default: ''
  five_whys:
    description: The answers of the five whys, in order; when empty the section holds prompts to fill.
    type: list
    elements: str
    default: []
  contributing_factors:
    description: Contributing factors; when empty they are derived from warn and crit findings.
    type: list
    elements: str
    default: []
  went_well:
    description: Added to the computed items of What went well.
    type: list
    elements: str
    default: []
  could_be_improved:
    description: Added to the computed items of What could be improved.
    type: list
    elements: raw
    default: []
  action_items:
    description: Action items, each a string (the measure) or a dict with C(measure), C(owner) and C(due) (YYYY-MM-DD).
    type: list
    elements: raw
    default: []
  default_owner:
    description: Owner of action items that name none (a handle such as C(@backend-oncall)).
    type: str
    default: '@oncall'
  redact_patterns:
    description: Extra regular expressions whose matches are replaced before writing.
    type: list
    elements: str
    default: []
seealso:
  - plugin: sre.incident_response.timeline
    plugin_type: callback
'''

EXAMPLES = r'''
- name: Resolve the incident and render the final post-mortem
  sre.incident_response.postmortem:
    state: final
    resolved_by: alice
    root_cause: The new endpoint opened connections without releasing them
    five_whys:
      - Users saw 500s because the backend returned errors to the load balancer
      - The backend returned errors because database connections timed out
    action_items:
      - measure: Use the async session context manager in every endpoint
        owner: '@backend-oncall'
        due: '2026-12-04'
  run_once: true
'''

RETURN = r'''
path:
  description: The post-mortem file.
  returned: when rendered
  type: str
  sample: /srv/ops/incidents/INC-20261127-0312-a1b2/postmortem-2026-11-27.md
resolved:
  description: Whether the incident is resolved.
  returned: when rendered
  type: bool
  sample: true
metrics:
  description: Times (ISO 8601) and durations (seconds) computed from the timeline.
  returned: when rendered
  type: dict
  sample: {started_at: "2026-11-27T03:12:09.412Z", time_to_acknowledge: 42.0, time_to_resolve: 2700.0}
durations:
  description: The durations in human-readable form, as written in the document.
  returned: when rendered
  type: dict
  sample: {time_to_acknowledge: 42 s, time_to_resolve: 45 min, duration: 45 min}
incident_path:
  description: Absolute path of the incident directory.
  returned: when rendered
  type: str
  sample: /srv/ops/incidents/INC-20261127-0312-a1b2
'''
