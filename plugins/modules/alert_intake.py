#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the alert_intake action plugin (the work is done on the controller)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: alert_intake
short_description: Record an Alertmanager alert in the incident of its alert group
version_added: 0.2.0
description:
  - Runs on the controller (action plugin); used by C(playbooks/alert.yml), which the rulebook
    C(extensions/eda/rulebooks/incident_response.yml) runs for every alert event.
  - B(One incident per alert group.) C(<incident_dir>/.alert-groups.json) maps the Alertmanager group key to
    the incident it opened; lookup, declaration and update happen under one exclusive lock, so concurrent runs
    for the same group never open two incidents. The group keeps its incident until a person resolves it.
  - Appends a C(note) event for every alert (fired, re-sent, fired again, resolved) with the group key,
    fingerprint, status, labels and annotations.
  - Decides whether to run the triage - a firing alert whose group had no triage within O(throttle_minutes) -
    and whether to draft the Resolved update (a resolved alert and every alert of the group resolved). It never
    closes the incident.
  - Maps the alert's labels to the triage scope (label C(triage_hosts); else the hosts of the C(service) label,
    its dependencies and dependents; else C(all)), the severity (label C(incident_severity), else C(severity)
    through O(severity_map)) and the title (the alertname, a colon and the summary annotation).
author:
  - sre.incident_response contributors
attributes:
  check_mode:
    support: full
    details: The incident record lives on the controller and is written in check mode too; targets are never touched.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  event:
    description: One event of the C(sre.incident_response.alertmanager) event source (C(ansible_eda.event)).
    type: dict
    required: true
  incident_dir:
    description: Root of the incident directories.
    type: path
    default: incidents
  hosts_services:
    description: Map of each inventory host to its C(incident_services), to map the C(service) label to hosts.
    type: dict
    default: {}
  severity_map:
    description: 'Alert C(severity) label to SEVn, merged over C({critical: SEV2, page: SEV2, error: SEV3, warning: SEV3, info: SEV4}).'
    type: dict
    default: {}
  throttle_minutes:
    description: At most one triage per alert group within this many minutes (0 triages every firing alert).
    type: float
    default: 10
  contacts:
    description: The contact matrix (C(incident_contacts)), for the default commander of a new incident.
    type: dict
    default: {}
seealso:
  - module: sre.incident_response.incident_context
'''

EXAMPLES = r'''
- name: Record the alert and decide the triage
  sre.incident_response.alert_intake:
    event: "{{ ansible_eda.event }}"
    incident_dir: /srv/ops/incidents
    throttle_minutes: 10
  run_once: true
'''

RETURN = r'''
incident_id:
  description: The incident of the alert group (empty for a resolved alert of a group without an open incident).
  returned: success
  type: str
  sample: INC-20261201-0312-a1b2
incident_path:
  description: Absolute path of the incident directory.
  returned: success
  type: str
  sample: /srv/ops/incidents/INC-20261201-0312-a1b2
created:
  description: Whether this alert opened the incident.
  returned: success
  type: bool
  sample: true
triage:
  description: Whether the triage should run now (firing, not throttled).
  returned: success
  type: bool
  sample: true
triage_reason:
  description: Why the triage runs or not.
  returned: success
  type: str
  sample: "throttled: last triage of this group 1.2 min ago (< 10 min)"
draft_resolved:
  description: Whether every alert of the group is resolved and the Resolved update should be drafted.
  returned: success
  type: bool
  sample: false
triage_hosts:
  description: Inventory pattern to triage.
  returned: success
  type: str
  sample: "app-backend:app-db:app-redis"
severity:
  description: The incident's severity.
  returned: success
  type: str
  sample: SEV2
title:
  description: The incident's title.
  returned: success
  type: str
  sample: "BackendDown: backend app-backend is down"
group_key:
  description: The Alertmanager group key.
  returned: success
  type: str
  sample: '{}:{alertname="BackendDown"}'
'''
