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
    C(extensions/eda/rulebooks/incident_response.yml) runs for every event of the
    C(sre.incident_response.alertmanager) event source - one event per alert group, holding every alert of the
    group that arrived since the previous run (coalesced).
  - B(Alert text is data, never a template.) The event carries the alerts as base64-encoded JSON, decoded here in
    Python; without O(event), the action reads C(ansible_eda.event) from the task's variables as it is, so the
    playbook never writes C({{ ansible_eda.event }}). A notification given by hand (O(notification_file)) is parsed
    here too. Results are module results, which ansible-core never templates.
  - B(One incident per alert group.) C(<incident_dir>/.alert-groups.json) maps the Alertmanager group key to
    the incident it opened; lookup, declaration and update happen under one exclusive lock, so concurrent runs
    for the same group never open two incidents. The group keeps its incident until a person resolves it.
  - Appends a C(note) event for every alert of the batch (fired, re-sent, fired again, resolved) with the group
    key, fingerprint, status, labels and annotations, verbatim.
  - Decides whether to run the triage - the batch has a firing alert and the group had no triage within
    O(throttle_minutes) - and whether to draft the Resolved update (the batch has a resolved alert and every
    alert of the group is resolved). It never closes the incident.
  - Maps the labels to the triage scope (label C(triage_hosts) when every name in it is an inventory host or
    group; else the hosts of the C(service) label, its dependencies and dependents; else C(all); the union over
    the firing alerts), the severity (the most severe of label C(incident_severity), else C(severity) through
    O(severity_map)) and the title (the alertname, a colon and the summary annotation of the first firing alert).
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
  event:
    description:
      - One event of the C(sre.incident_response.alertmanager) event source (format
        C(sre.incident_response.alertmanager/2), alerts in C(payload) as base64-encoded JSON).
      - "Default, and the way to use it: C(ansible_eda.event) from the task's variables, read without templating."
    type: dict
  notification_file:
    description:
      - Path of a file holding one Alertmanager webhook notification (the JSON Alertmanager POSTs), to run by hand.
      - Mutually exclusive with O(event).
    type: path
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
- name: Record the alerts of the event (ansible_eda.event, read as it is) and decide the triage
  sre.incident_response.alert_intake:
    incident_dir: /srv/ops/incidents
    throttle_minutes: 10
  run_once: true

- name: Record the alerts of a notification saved from Alertmanager
  sre.incident_response.alert_intake:
    notification_file: /tmp/notification.json
    incident_dir: /srv/ops/incidents
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
triage_hosts_reason:
  description: Why these hosts (label triage_hosts, service scope, or every host).
  returned: success
  type: str
  sample: "service backend, its dependencies and dependents"
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
status:
  description: C(firing) when an alert of the batch fires, else C(resolved).
  returned: success
  type: str
  sample: firing
alertname:
  description: The alertname of the first firing alert of the batch (the one the title comes from).
  returned: success
  type: str
  sample: BackendDown
fingerprint:
  description: The fingerprint of that alert.
  returned: success
  type: str
  sample: c0ffee12
service:
  description: The C(service) label of that alert (null without one).
  returned: success
  type: str
  sample: backend
alerts:
  description: Number of alerts in the batch.
  returned: success
  type: int
  sample: 3
alertnames:
  description: The alertnames of the batch, sorted, at most 50.
  returned: success
  type: list
  elements: str
  sample: [BackendDown, BackendHighErrorRate]
resolved_actions:
  description: The next step for the Resolved update, naming the alerts (data, for C(comms_actions)).
  returned: success
  type: str
  sample: "All alerts of the group resolved (BackendDown); confirm, then run playbooks/resolve.yml"
'''
