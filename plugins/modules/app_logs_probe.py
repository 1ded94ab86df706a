#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: app_logs_probe
short_description: Count application errors by endpoint and check the application process
version_added: 0.1.0
description:
  - Fetches the logs of each service's window from a Docker container, a journald unit or a log file,
    counts errors and breaks them down by endpoint (C(path)) and HTTP status for JSON logs
    (C(ts), C(level), C(method), C(path), C(status), C(latency_ms), C(msg)), with latency percentiles.
    Plain-text logs fall back to counting ERROR lines.
  - Checks the application process (running, pid, uptime, memory) and its runtime version
    (for example C(python3 --version) inside the container).
  - Returns findings C(app.errors) and C(app.process) (one per check for the host, the worst service leading)
    and the log excerpt as evidence files. Read-only; it never changes anything.
author: sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.attributes
  - sre.incident_response.attributes.actiongroup_docker
options:
  report_host:
    description: Inventory host name the findings are reported for.
    type: str
    required: true
  services:
    description:
      - Service definitions of the host (C(incident_services), see docs/reference/services.md).
      - Services with a C(logs) entry or of kind C(backend) are checked; others are ignored.
    type: list
    elements: dict
    required: true
  window:
    description: How far back to read logs, such as C(15m), C(1h) or C(90s).
    type: str
    default: 15m
  max_lines:
    description: At most this many of the newest lines are analyzed per service.
    type: int
    default: 50000
  excerpt_lines:
    description: Lines kept in the evidence excerpt (error lines first, then the tail).
    type: int
    default: 200
  ignore_paths:
    description: Request paths left out of the breakdown (for example load-balancer probes).
    type: list
    elements: str
    default: []
  runtime_command:
    description: Command printing the runtime version, run in the container (or on the host for non-Docker services).
    type: list
    elements: str
    default: [python3, --version]
  thresholds:
    description: Thresholds of the C(app.errors) finding.
    type: dict
    default: {}
    suboptions:
      error_rate_warn_pct:
        description: Error rate of one path (percent of its requests) that makes the finding C(warn).
        type: float
        default: 5
      error_rate_crit_pct:
        description: Error rate of one path that makes the finding C(crit).
        type: float
        default: 25
      min_errors:
        description: Paths with fewer errors than this are not rated (noise).
        type: int
        default: 3
      error_lines_warn:
        description: ERROR lines without a request path (plain-text logs) that make the finding C(warn).
        type: int
        default: 10
      error_lines_crit:
        description: ERROR lines without a request path that make the finding C(crit).
        type: int
        default: 100
      latency_p95_warn_ms:
        description: 95th percentile request latency (ms) that makes the finding C(warn).
        type: float
        default: 1000
      latency_p95_crit_ms:
        description: 95th percentile request latency (ms) that makes the finding C(crit).
        type: float
        default: 5000
  docker_host:
    description: Docker engine socket (C(unix://...)); defaults to C(DOCKER_HOST) or C(/var/run/docker.sock).
    type: str
  timeout:
    description: Seconds to wait for the Docker engine, journalctl or the runtime command.
    type: int
    default: 20
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
notes:
  - Container environment variables are never read into the results (they hold secrets).
seealso:
  - module: sre.incident_response.health_probe
'''

EXAMPLES = r'''
- name: Probe application logs and process
  sre.incident_response.app_logs_probe:
    report_host: "{{ inventory_hostname }}"
    services: "{{ incident_services }}"
    window: 15m
  register: __app_logs_probe

- name: Record the findings
  sre.incident_response.finding:
    findings: "{{ __app_logs_probe.findings }}"
    evidence: "{{ {inventory_hostname: __app_logs_probe.evidence_files} }}"
'''

RETURN = r'''
findings:
  description: C(app.errors) and C(app.process) findings of the host.
  returned: always
  type: list
  elements: dict
  sample:
    - check: app.errors
      host: app-backend
      service: backend
      status: crit
      summary: "/api/orders: 48 errors (500) in 15m, 96% of its requests; 52 errors of 400 requests overall"
      evidence: {requests: 400, errors: 52, failing_paths: [/api/orders]}
evidence_files:
  description: File name to content, for C(evidence/<host>/) (log excerpts per service).
  returned: always
  type: dict
  sample: {app.errors-backend.log: "2026-11-27T03:12:09Z {...}\n"}
stats:
  description: The raw breakdown per service (requests, errors, by_path, latency percentiles).
  returned: always
  type: dict
  sample: {backend: {requests: 400, errors: 52, p95_ms: 12.4}}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.incident_response.plugins.module_utils.areas import app_logs as area


def main():
    module = AnsibleModule(argument_spec=area.SPEC, supports_check_mode=True)
    module.exit_json(**area.run(module))


if __name__ == '__main__':
    main()
