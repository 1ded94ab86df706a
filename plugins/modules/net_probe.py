#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: net_probe
short_description: Check DNS, TLS certificates, dependencies, disk space and container resources
version_added: 0.1.0
description:
  - Controller-side checks (run it once, on the controller), all concurrently in threads -
    C(net.dns) (resolution of O(dns_names) through their resolver and port, against the expected answers),
    C(net.tls_expiry) (days left, subject, SAN, issuer and chain verification of O(tls_endpoints)) and
    C(dependency.reachability) (HTTP health of O(dependencies), reported for the hosts of the services using them).
  - Host-side checks for O(report_host) - C(host.disk) (space and inodes of each service's C(disk_paths) and
    O(extra_disk_paths)) and C(container.resources) (CPU, memory against the limit, network I/O of each
    Docker service, read from its cgroup without waiting for an engine sample, CPU over O(cpu_sample_seconds);
    memory of each systemd unit - C(MemoryCurrent), or the resident size of its main process where the cgroup does
    not account memory - against its C(MemoryMax)).
  - Read-only. Unreachable names, endpoints or engines become C(crit) or C(unknown) findings; the module does not fail.
author: sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.attributes
  - sre.incident_response.attributes.actiongroup_docker
options:
  dns_names:
    description: Names to resolve, C({name, resolver, port, expect, type, timeout}) (C(incident_dns_names)).
    type: list
    elements: dict
    default: []
  tls_endpoints:
    description: TLS endpoints, C({name, host, port, server_name, ca_cert, verify}) (C(incident_tls_endpoints)).
      With C(verify=true) an untrusted chain is C(crit); otherwise the chain result is evidence only.
    type: list
    elements: dict
    default: []
  dependencies:
    description: External dependencies, C({name, url, used_by, critical, expect_status}) (C(incident_dependencies)).
      Unreachable is C(crit) for critical ones, C(warn) otherwise.
    type: list
    elements: dict
    default: []
  host_services:
    description:
      - Inventory host to its service definitions (C(incident_services) of the play hosts); a dependency is reported for
        the hosts running the services in its C(used_by).
    type: dict
    default: {}
  controller_name:
    description: Host name C(net.dns), C(net.tls_expiry) and unattributed dependencies are reported for.
    type: str
    default: controller
  report_host:
    description: Inventory host the host-side findings are reported for. Required with O(services).
    type: str
  services:
    description: Service definitions of O(report_host) (C(disk_paths), C(deploy.container)).
    type: list
    elements: dict
  container_resources:
    description: Check C(container.resources) of the Docker services in O(services).
    type: bool
    default: true
  extra_disk_paths:
    description: Paths checked on every host besides the services' C(disk_paths).
    type: list
    elements: path
    default: [/]
  thresholds:
    description: Thresholds of the findings.
    type: dict
    default: {}
    suboptions:
      dns_latency_warn_ms:
        description: Resolution time (ms) that makes C(net.dns) C(warn).
        type: float
        default: 500
      tls_warn_days:
        description: Days left at or below which C(net.tls_expiry) is C(warn).
        type: float
        default: 14
      tls_crit_days:
        description: Days left at or below which C(net.tls_expiry) is C(crit) (0 - expired).
        type: float
        default: 0
      disk_warn_pct:
        description: Space or inode usage (percent) that makes C(host.disk) C(warn).
        type: float
        default: 90
      disk_crit_pct:
        description: Usage that makes C(host.disk) C(crit).
        type: float
        default: 95
      memory_warn_pct:
        description: Container memory (percent of its limit) that makes C(container.resources) C(warn).
        type: float
        default: 80
      memory_crit_pct:
        description: Container memory that makes C(container.resources) C(crit).
        type: float
        default: 90
      cpu_warn_pct:
        description: Container CPU (percent of the CPUs it may use) that makes C(container.resources) C(warn).
        type: float
        default: 90
      dependency_latency_warn_ms:
        description: Dependency response time (ms) that makes C(dependency.reachability) C(warn).
        type: float
        default: 2000
  timeout:
    description: Seconds per DNS query, TLS handshake or HTTP request.
    type: float
    default: 3
  cpu_sample_seconds:
    description:
      - Seconds over which the CPU usage of every container is sampled from its cgroup (all containers at once).
      - C(0) leaves CPU out (memory, pids and network are read at once either way).
      - Where the container's cgroup is not visible to the module (it runs in a container without the host's
        C(/sys/fs/cgroup)), memory comes from one one-shot sample of the engine and CPU is left out, with a note
        in the evidence (C(cpu_note)), rather than a number that is not a current one.
    type: float
    default: 0.3
  docker_host:
    description: Docker engine socket (C(unix://...)); defaults to C(DOCKER_HOST) or C(/var/run/docker.sock).
    type: str
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
requirements:
  - dnspython for custom resolvers
  - cryptography for certificate details
'''

EXAMPLES = r'''
- name: DNS, TLS and dependencies, from the controller
  sre.incident_response.net_probe:
    dns_names: "{{ incident_dns_names }}"
    tls_endpoints: "{{ incident_tls_endpoints }}"
    dependencies: "{{ incident_dependencies }}"
    host_services: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'incident_services'))) }}"
  run_once: true
  delegate_to: localhost
  register: __network_controller

- name: Disk and container resources of this host
  sre.incident_response.net_probe:
    report_host: "{{ inventory_hostname }}"
    services: "{{ incident_services }}"
  register: __network_host
'''

RETURN = r'''
findings:
  description: net.dns, net.tls_expiry, dependency.reachability (controller side), host.disk and container.resources (host side).
  returned: always
  type: list
  elements: dict
  sample:
    - check: net.tls_expiry
      host: controller
      service: api
      status: warn
      summary: "api 127.0.0.1:18443: certificate expires in 5.0 days (2026-12-02 03:00 UTC), subject api.lab.test, SAN api.lab.test"
      evidence: {endpoints: [{days_left: 5.0}]}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.incident_response.plugins.module_utils.areas import network as area


def main():
    module = AnsibleModule(argument_spec=area.SPEC, supports_check_mode=True, required_by=area.REQUIRED_BY)
    module.exit_json(**area.run(module))


if __name__ == '__main__':
    main()
