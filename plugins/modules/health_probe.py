#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: health_probe
short_description: Check services' health endpoints concurrently and their containers' or units' state
version_added: 0.1.0
description:
  - With O(http_targets), checks every service's health endpoints (status code, latency, JSON body
    expectations such as C(/health/ready) dependency flags) concurrently in threads, and returns one
    C(health.endpoint) finding per inventory host. Run it once on the controller for all hosts.
  - With O(services), checks the state of each service on O(report_host) - Docker container (running,
    restarting, exit code, OOM-killed, restart count, health status), systemd unit or process - and
    returns one C(health.container) finding.
  - Both can be given in one call. Read-only.
author: sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.attributes
  - sre.incident_response.attributes.actiongroup_docker
options:
  http_targets:
    description:
      - Inventory host name to its service definitions (C(incident_services)); each service's
        C(health) list is checked (C(url), C(expect_status), C(expect_json), C(expect_body), C(timeout), C(validate_certs)).
    type: dict
    default: {}
  report_host:
    description: Inventory host the O(services) state finding is reported for. Required with O(services).
    type: str
  services:
    description: Service definitions of O(report_host) whose container, unit or process state is checked.
    type: list
    elements: dict
  window:
    description: The incident window (C(15m)); restarts inside it make the state finding C(warn).
    type: str
    default: 15m
  restart_warn:
    description: Restart count at which a container started inside the window is C(warn).
    type: int
    default: 1
  latency_warn_ms:
    description: Endpoint latency (ms) that makes the finding C(warn).
    type: float
    default: 1000
  latency_crit_ms:
    description: Endpoint latency (ms) that makes the finding C(crit).
    type: float
    default: 5000
  timeout:
    description: Default per-request timeout in seconds (an endpoint's own C(timeout) wins).
    type: float
    default: 3
  docker_host:
    description: Docker engine socket (C(unix://...)); defaults to C(DOCKER_HOST) or C(/var/run/docker.sock).
    type: str
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
notes:
  - Container environment variables are never read into the results (they hold secrets).
'''

EXAMPLES = r'''
- name: Check every play host's health endpoints from the controller
  sre.incident_response.health_probe:
    http_targets: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'incident_services'))) }}"
  run_once: true
  delegate_to: localhost
  register: __health_http

- name: Check the state of this host's containers
  sre.incident_response.health_probe:
    report_host: "{{ inventory_hostname }}"
    services: "{{ incident_services }}"
  register: __health_state
'''

RETURN = r'''
findings:
  description: C(health.endpoint) findings (one per host with endpoints) and the C(health.container) finding.
  returned: always
  type: list
  elements: dict
  sample:
    - check: health.endpoint
      host: app-backend
      service: backend
      status: crit
      summary: "backend readiness: HTTP 503 status=fail, expected 200 (database (critical): OperationalError ...) in 2004 ms; 2 of 3 endpoints healthy"
      evidence: {endpoints: [{url: "http://127.0.0.1:18000/health/ready", http_status: 503}]}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.incident_response.plugins.module_utils.areas import health as area


def main():
    module = AnsibleModule(argument_spec=area.SPEC, supports_check_mode=True)
    module.exit_json(**area.run(module))


if __name__ == '__main__':
    main()
