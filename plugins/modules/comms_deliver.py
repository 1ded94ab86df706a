#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the comms_deliver action plugin (the work is done on the controller)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: comms_deliver
short_description: Render, file and deliver incident communications
version_added: 0.1.0
description:
  - Runs on the controller (action plugin). Renders the practice's templates from the incident's files
    (C(incident.json), C(diagnosis.json), C(findings.json), C(timeline.jsonl)) - C(INCIDENT DECLARED),
    C(INCIDENT UPDATE), the status page message (Investigating / Identified / Resolved) and a ticket draft -
    with C(Next update) from the severity's cadence and C(Duration) from the start time.
  - Always writes each message to C(messages/YYYYMMDDTHHMMSSZ-<kind>[-<status>].md) in the incident directory.
  - Delivers when configured, concurrently - Slack incoming webhook, a generic JSON webhook, PagerDuty Events v2
    (C(trigger) on declaration when the severity pages, C(resolve) on a Resolved update; C(dedup_key) is the
    incident id), a Statuspage-style HTTP API (create, then update the same status page incident).
  - URLs and keys are given by the B(name) of the variable that holds them; their values never appear in the
    messages, the timeline, or the result. A failed delivery is recorded and returned, never fatal.
  - Appends one C(comms) event per message (with the outcome of its deliveries) to the timeline.
author:
  - sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.attributes
attributes:
  check_mode:
    support: partial
    details: In check mode the messages are rendered and filed but nothing is delivered.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  kinds:
    description: Messages to render - C(declared), C(update), C(statuspage), C(ticket).
    type: list
    elements: str
    default: [update]
  status:
    description: Status of an update or status page message.
    type: str
    choices: [Investigating, Identified, Mitigating, Resolved]
    default: Investigating
  findings_text:
    description: "'Current findings' of an update; default from diagnosis.json (top hypotheses) or findings.json."
    type: str
    default: ''
  actions_text:
    description: "'Actions in progress'; default from the timeline's plan/approval/action/verify events or the first action."
    type: str
    default: ''
  issue:
    description: Issue description of the status page message; default the title, or the top hypothesis once identified.
    type: str
    default: ''
  impact:
    description: User-visible impact; default incident.json's impact or one derived from the top hypothesis.
    type: str
    default: ''
  eta:
    description: Estimated resolution for the Identified status page message.
    type: str
    default: ''
  service:
    description: Service named in the Resolved status page message; default the affected services.
    type: str
    default: ''
  root_cause:
    description: Root cause in the Resolved status page message; default the top hypothesis.
    type: str
    default: ''
  channel:
    description: Slack channel; default by severity (C(#incidents) for SEV1/SEV2, C(#incidents-low) for SEV3/SEV4).
    type: str
    default: ''
  deliver:
    description: Deliver to the configured targets (false - files only).
    type: bool
    default: true
  page:
    description: C(auto) pages when the severity's policy says so (SEV1, SEV2); C(always) or C(never) override it.
    type: str
    choices: [auto, always, never]
    default: auto
  slack:
    description: "Slack incoming webhook: C(url_var) (name of the variable holding the webhook URL), optional C(channel)."
    type: dict
    default: {}
  webhook:
    description: "Generic JSON webhook: C(url_var), optional C(token_var) (sent as a Bearer token)."
    type: dict
    default: {}
  pagerduty:
    description:
      - "PagerDuty Events v2: optional C(url) (default https://events.pagerduty.com/v2/enqueue), optional
        C(routing_key_vars) (escalation role to variable name). Without it, each escalation role's
        C(pagerduty_routing_key_var) in O(contacts) is used."
    type: dict
    default: {}
  statuspage:
    description:
      - "Statuspage-style API: C(url) (page base, e.g. https://api.statuspage.example.com/v1/pages/PAGE_ID),
        C(api_key_var), optional C(component_ids), optional C(publish) (default true)."
    type: dict
    default: {}
  contacts:
    description: The contact matrix (C(incident_contacts)).
    type: dict
    default: {}
  timeout:
    description: Seconds per delivery.
    type: float
    default: 5.0
  incident_id:
    description: The incident; defaults to the C(incident_id) fact.
    type: str
    default: ''
  incident_dir:
    description: Root of the incident directories; defaults to the C(incident_path) fact, else C(incidents).
    type: path
seealso:
  - module: sre.incident_response.incident_context
'''

EXAMPLES = r'''
- name: Declare in the channel, page and draft the status page (SEV1/SEV2)
  sre.incident_response.comms_deliver:
    kinds: [declared, statuspage]
    slack: {url_var: vault_slack_incidents_webhook}
    contacts: "{{ incident_contacts }}"
  run_once: true
  no_log: true

- name: Post an update
  sre.incident_response.comms_deliver:
    kinds: [update, statuspage]
    status: Identified
    eta: within 30 minutes
  run_once: true
'''

RETURN = r'''
report:
  description: Printable lines - the messages, their files and the delivery outcome.
  returned: success
  type: list
  elements: str
  sample: ["INCIDENT UPDATE: Orders fail", "Severity: SEV2", "Channel #incidents; deliveries: slack ok"]
mentions:
  description: Handles tagged in Slack (the escalation and notify roles of the severity).
  returned: success
  type: list
  elements: str
  sample: ["@backend-oncall", "@eng-manager"]
messages:
  description: The rendered messages and their files.
  returned: success
  type: list
  elements: dict
  sample: [{"kind": "declared", "status": "Investigating", "path": "/srv/incidents/INC-1/messages/20261127T031209Z-declared.md",
            "text": "INCIDENT DECLARED: Orders fail\nSeverity: SEV2\n..."}]
deliveries:
  description: One entry per delivery - target, message, ok, http_status, error, skipped (no URL or key).
  returned: success
  type: list
  elements: dict
  sample: [{"target": "pagerduty:oncall", "ok": true, "http_status": 202, "event_action": "trigger", "dedup_key": "INC-1"}]
delivery_failed:
  description: Number of failed deliveries.
  returned: success
  type: int
  sample: 0
channel:
  description: The channel used.
  returned: success
  type: str
  sample: "#incidents"
severity:
  description: The incident's severity.
  returned: success
  type: str
  sample: SEV2
paged:
  description: Escalation roles paged successfully (PagerDuty trigger).
  returned: success
  type: list
  elements: str
  sample: [oncall]
page_action:
  description: The PagerDuty event action sent (trigger, resolve), or null.
  returned: success
  type: str
  sample: trigger
'''
