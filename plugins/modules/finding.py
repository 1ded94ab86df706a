#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# The work is done by the action plugin plugins/action/finding.py; this file documents it.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: finding
short_description: Record findings and their evidence in the incident directory
version_added: 0.1.0
description:
  - Normalizes findings (C(check), C(host), C(service), C(status), C(summary), C(evidence)), merges them into
    C(<incident_dir>/<incident_id>/findings.json) (the latest per host and check), writes evidence files to
    C(evidence/<host>/) and appends one C(finding) event per finding to C(timeline.jsonl).
  - Several findings of one host and check (several services of one kind) become one - the worst service's
    status and summary, every service in C(evidence.services).
  - Secrets are redacted first (values of secret-looking variables, C(password_var) references, URL credentials, tokens).
  - Runs on the controller. When no incident is known it records nothing and says so (it never fails for that).
author: sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.attributes
options:
  findings:
    description:
      - Findings to record. C(check) (C(area.name)), C(status) (C(ok), C(warn), C(crit), C(unknown)) and
        C(summary) are required; C(host) defaults to the task's host, C(service) to null, C(evidence) to {}.
    type: list
    elements: raw
    default: []
  probe_var:
    description:
      - The name of the variable registered by M(sre.incident_response.probe) on every host. The findings and
        evidence of every host's result are recorded with O(findings), in one write (run it with C(run_once)).
      - A host whose result is unreachable gets a C(host.reachability) C(crit) finding; a failed probe an
        C(unknown) finding with the error. A host without the variable adds nothing.
    type: str
  hosts:
    description: The hosts whose O(probe_var) is read; the play's hosts (C(ansible_play_hosts_all)) by default.
    type: list
    elements: str
  evidence:
    description:
      - Raw evidence files - inventory host to a dict of file name to text or data; data is written as JSON.
      - Each finding's C(evidence) is also written as C(evidence/<host>/<check>.json).
    type: dict
    default: {}
  incident_id:
    description: The incident; defaults to the C(incident_id) variable (set by the C(incident) role).
    type: str
  incident_dir:
    description: Root of incident directories; defaults to the C(incident_path) fact, else C(incident_dir), else C(incidents).
    type: path
  redact_patterns:
    description: Extra regular expressions whose matches are redacted (added to C(incident_redact_patterns)).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    details: Records in check mode too - it writes only the controller's incident files, never the target.
  diff_mode:
    support: none
'''

EXAMPLES = r'''
- name: Record the PostgreSQL findings
  sre.incident_response.finding:
    findings: "{{ __postgres_probe.findings }}"
    evidence: "{{ {inventory_hostname: __postgres_probe.evidence_files} }}"

- name: Record a finding by hand
  sre.incident_response.finding:
    incident_id: INC-20261127-0312-a1b2
    findings:
      - check: app.errors
        status: warn
        summary: "/api/orders: 12 errors (500) in 15m, 8% of its requests"
'''

RETURN = r'''
findings:
  description: The normalized, redacted findings recorded (one per host and check).
  returned: always
  type: list
  elements: dict
  sample: [{check: pg.locks, host: app-db, service: db, status: crit, summary: "2 sessions blocked ...", evidence: {}, ts: "2026-11-27T03:12:09.412Z"}]
counts:
  description: Number of findings by status.
  returned: always
  type: dict
  sample: {ok: 4, warn: 1, crit: 1, unknown: 0}
recorded:
  description: Whether the findings were written (false when no incident is known).
  returned: always
  type: bool
  sample: true
findings_file:
  description: Path of findings.json.
  returned: when recorded
  type: str
  sample: /srv/incidents/INC-20261127-0312-a1b2/findings.json
evidence_written:
  description: Evidence files written.
  returned: when recorded
  type: list
  elements: str
  sample: [/srv/incidents/INC-20261127-0312-a1b2/evidence/app-db/pg.locks.json]
'''
