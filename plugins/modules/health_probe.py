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
author: sre.incident_response contributors
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

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.incident_response.plugins.module_utils.findings import make_finding as finding
from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import (
    combine, one_line, parse_duration)
from ansible_collections.sre.incident_response.plugins.module_utils.probe_docker import (
    DockerClient, DockerError, safe_inspect_summary)
from ansible_collections.sre.incident_response.plugins.module_utils import probe_health


def service_state(module, client, service, host, window_s):
    deploy = service.get('deploy') or {}
    dtype = deploy.get('type') or 'docker'
    name = service.get('name')
    if dtype == 'docker':
        container = deploy.get('container')
        try:
            info = client.inspect(container)
        except DockerError as exc:
            status = 'crit' if exc.status == 404 else 'unknown'
            return finding('health.container', host, name, status, '%s: %s' % (container, one_line(str(exc))),
                           {'container': container})
        status, text = probe_health.evaluate_container(info, window_s=window_s, restart_warn=module.params['restart_warn'])
        return finding('health.container', host, name, status, text, safe_inspect_summary(info))
    if dtype == 'systemd':
        unit = deploy.get('unit')
        systemctl = module.get_bin_path('systemctl')
        if not systemctl:
            return finding('health.container', host, name, 'unknown', 'systemctl not found on %s' % host, {'unit': unit})
        rc, out, err = module.run_command([systemctl, 'show', unit, '-p', 'ActiveState', '-p', 'SubState', '-p',
                                           'NRestarts', '-p', 'Result', '-p', 'ExecMainStatus'])
        props = dict(line.split('=', 1) for line in out.splitlines() if '=' in line)
        active = props.get('ActiveState')
        status = 'ok' if active == 'active' else 'crit'
        return finding('health.container', host, name, status, '%s %s (%s, result %s, %s restarts)' % (
            unit, active, props.get('SubState'), props.get('Result'), props.get('NRestarts', '?')), {'unit': unit, 'properties': props})
    pattern = deploy.get('process') or name
    rc, out, err = module.run_command(['pgrep', '-af', pattern])
    procs = [ln for ln in out.splitlines() if ln.strip()]
    status = 'ok' if procs else 'crit'
    return finding('health.container', host, name, status, '%d process%s match %r' % (
        len(procs), '' if len(procs) == 1 else 'es', pattern), {'pattern': pattern, 'processes': procs[:20]})


def main():
    module = AnsibleModule(
        argument_spec=dict(
            http_targets=dict(type='dict', default={}),
            report_host=dict(type='str'),
            services=dict(type='list', elements='dict'),
            window=dict(type='str', default='15m'),
            restart_warn=dict(type='int', default=1),
            latency_warn_ms=dict(type='float', default=1000),
            latency_crit_ms=dict(type='float', default=5000),
            timeout=dict(type='float', default=3),
            docker_host=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        window_s = parse_duration(p['window'])
    except ValueError as exc:
        module.fail_json(msg='window: %s' % exc)
    if p['services'] and not p['report_host']:
        module.fail_json(msg='report_host is required when services are given (the inventory host they run on)')
    if p['latency_warn_ms'] > p['latency_crit_ms']:
        module.fail_json(msg='latency_warn_ms (%s) must not exceed latency_crit_ms (%s)' % (p['latency_warn_ms'], p['latency_crit_ms']))
    started = time.monotonic()
    findings = []
    specs = probe_health.endpoint_specs(p['http_targets'])
    results = probe_health.check_endpoints(specs, default_timeout=p['timeout'])
    findings.extend(probe_health.endpoint_findings(specs, results, p['latency_warn_ms'], p['latency_crit_ms']))
    if p['services']:
        client = DockerClient(p['docker_host'])
        state = [service_state(module, client, s, p['report_host'], window_s)
                 for s in p['services'] if isinstance(s, dict) and s.get('deploy')]
        findings.extend(combine(state))
    module.exit_json(changed=False, findings=findings, elapsed_ms=round((time.monotonic() - started) * 1000, 1))


if __name__ == '__main__':
    main()
