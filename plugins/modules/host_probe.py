#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: host_probe
short_description: Check the kernel's and the init system's view of a host - OOM kills, failed units, open files
version_added: 0.3.0
description:
  - C(host.oom) - kernel OOM kills in the window, from the C(oom_kill) counters of the cgroups of the host's
    services (C(memory.events) on cgroup v2, C(memory.oom_control) on v1, readable without privileges) and from
    the kernel log (C(journalctl -k), else C(dmesg), when readable) - which process, which service, when, how
    many. C(crit) for a kill of a service's process in the window.
  - C(host.units) - failed systemd units (C(systemctl --failed)) and the services' units that are failed or
    restarting (C(NRestarts), C(SubState=auto-restart)), with the last exit of the unit's main process (from
    C(systemctl show), else the unit's journal). C(crit) when a service's unit failed or is restarting.
  - C(host.fds) - open file descriptors and TCP connections by process, read from C(/proc) (the top
    O(thresholds.top)), against each process' C(Max open files).
  - Standard library and the commands of a bare Debian host only; each command runs under C(timeout). A source
    that cannot be read is named in the evidence (C(sources), C(error)); the module does not fail.
  - Read-only.
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
      - Service definitions of O(report_host) (C(incident_services)); C(deploy.container) and C(deploy.unit) name the
        cgroups whose OOM kills are counted and the units whose state is checked.
    type: list
    elements: dict
    default: []
  checks:
    description: The checks to run.
    type: list
    elements: str
    choices: [oom, units, fds]
    default: [oom, units, fds]
  window:
    description: The incident window (C(15m)); kills and restarts inside it are rated.
    type: str
    default: 15m
  timeout:
    description: Seconds each command (C(systemctl), C(journalctl), C(dmesg)) and the Docker engine may take.
    type: float
    default: 5
  thresholds:
    description: Thresholds of the findings.
    type: dict
    default: {}
    suboptions:
      fds_warn_pct:
        description: Open files of a process (percent of its C(Max open files)) that make C(host.fds) C(warn).
        type: float
        default: 80
      fds_crit_pct:
        description: Open files of a process that make C(host.fds) C(crit).
        type: float
        default: 95
      unit_restarts_warn:
        description: C(NRestarts) of a service's unit, last started inside the window, that makes C(host.units) C(warn).
        type: int
        default: 3
      top:
        description: Processes listed in C(host.fds) (by open files and by TCP connections).
        type: int
        default: 5
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
  - Reading other users' C(/proc/<pid>/fd) and the kernel log (C(kernel.dmesg_restrict)) needs root or the
    C(systemd-journal)/C(adm) group; without them the findings say what they could not read.
'''

EXAMPLES = r'''
- name: OOM kills, failed units and open files of this host
  sre.incident_response.host_probe:
    report_host: "{{ inventory_hostname }}"
    services: "{{ incident_services }}"
  register: __host_probe
'''

RETURN = r'''
findings:
  description: host.oom, host.units and host.fds (contract in docs/reference/contracts.md).
  returned: always
  type: list
  elements: dict
  sample:
    - check: host.oom
      host: app-backend
      service: backend
      status: crit
      summary: "backend (app-backend): 1 OOM kill in the window (python3 pid 4242)"
      evidence: {kills_in_window: 1}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.incident_response.plugins.module_utils.areas import host as area


def main():
    module = AnsibleModule(argument_spec=area.SPEC, supports_check_mode=True)
    module.exit_json(**area.run(module))


if __name__ == '__main__':
    main()
