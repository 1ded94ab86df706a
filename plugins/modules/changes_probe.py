#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: changes_probe
short_description: Find recent deployments and host changes inside the incident window
version_added: 0.1.0
description:
  - C(deploy.recent) - for each Docker service, the container's image (tag, id, digest), when the container was
    created (deployed) and started, whether that falls inside the window, and the previous image (from a container
    label such as C(sre.incident_response.previous_image), else the newest older local tag of the same repository).
    For non-Docker services, the release symlink (C(deploy.release_link)) - its target, when it changed and the
    previous release. A deployment inside the window makes the finding C(warn) (the error-spike-after-deploy pattern).
  - C(host.changes) - cheap infrastructure changes on the host inside the window - package installs, upgrades and
    removals from the dpkg log, and files modified directly under O(watch_paths).
  - Read-only.
author: sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.attributes
  - sre.incident_response.attributes.actiongroup_docker
options:
  report_host:
    description: Inventory host the findings are reported for.
    type: str
    required: true
  services:
    description: Service definitions of O(report_host) (C(deploy.type), C(deploy.container), C(deploy.release_link)).
    type: list
    elements: dict
    default: []
  window:
    description: The incident window, such as C(15m) or C(2h).
    type: str
    default: 15m
  host_changes:
    description: Whether to look for package and file changes on the host (C(host.changes)).
    type: bool
    default: true
  package_logs:
    description: dpkg-style logs read for package changes.
    type: list
    elements: path
    default: [/var/log/dpkg.log]
  watch_paths:
    description: Directories (files directly in them, and one level below) or files whose modification inside the window is reported.
    type: list
    elements: path
    default: [/etc]
  docker_host:
    description: Docker engine socket (C(unix://...)); defaults to C(DOCKER_HOST) or C(/var/run/docker.sock).
    type: str
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
'''

EXAMPLES = r'''
- name: Recent deployments and host changes
  sre.incident_response.changes_probe:
    report_host: "{{ inventory_hostname }}"
    services: "{{ incident_services }}"
    window: 15m
  register: __changes_probe
'''

RETURN = r'''
findings:
  description: deploy.recent (when the host has services) and host.changes (when O(host_changes)).
  returned: always
  type: list
  elements: dict
  sample:
    - check: deploy.recent
      host: app-backend
      service: backend
      status: warn
      summary: "backend: app-backend:1.1.0 (sha256:bf262f9f4229) deployed 2m10s ago, inside the 15m window; previous app-backend:1.0.0"
      evidence: {deploy_in_window: true, deploys: [{image: "app-backend:1.1.0", previous_image: "app-backend:1.0.0"}]}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.incident_response.plugins.module_utils.areas import changes as area


def main():
    module = AnsibleModule(argument_spec=area.SPEC, supports_check_mode=True)
    module.exit_json(**area.run(module))


if __name__ == '__main__':
    main()
