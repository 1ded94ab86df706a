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
author: sre.incident_response contributors
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

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import one_line, parse_docker_time, parse_duration, utcnow
from ansible_collections.sre.incident_response.plugins.module_utils.docker_api import DockerClient, DockerError
from ansible_collections.sre.incident_response.plugins.module_utils import probe_changes


HISTORY_SECONDS = 7 * 86400  # how far back engine events are asked for (the engine keeps fewer anyway)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            report_host=dict(type='str', required=True),
            services=dict(type='list', elements='dict', default=[]),
            window=dict(type='str', default='15m'),
            host_changes=dict(type='bool', default=True),
            package_logs=dict(type='list', elements='path', default=['/var/log/dpkg.log']),
            watch_paths=dict(type='list', elements='path', default=['/etc']),
            docker_host=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        window_s = parse_duration(p['window'])
    except ValueError as exc:
        module.fail_json(msg='window: %s' % exc)
    host = p['report_host']
    now = utcnow()
    since = time.time() - window_s
    items, errors = [], []
    client = DockerClient(p['docker_host'])
    image_cache = {}
    created_cache = {}

    def created_of(image_id):
        if image_id not in created_cache:
            try:
                created_cache[image_id] = parse_docker_time(client.image(image_id).get('Created'))
            except DockerError:
                created_cache[image_id] = None
        return created_cache[image_id]

    for service in p['services']:
        if not isinstance(service, dict):
            continue
        deploy = service.get('deploy') or {}
        name = service.get('name') or 'unnamed'
        try:
            if deploy.get('type', 'docker') == 'docker' and deploy.get('container'):
                info = client.inspect(deploy['container'])
                ref = (info.get('Config') or {}).get('Image')
                image_info = client.image(info.get('Image'))
                repo = probe_changes.repo_of(ref)
                if repo not in image_cache:
                    image_cache[repo] = client.images(repo)
                try:  # the engine's record of what the container of this name ran before (bounded in-memory history)
                    history = client.image_history(deploy['container'], time.time() - HISTORY_SECONDS, time.time())
                except DockerError:
                    history = []
                items.append((name, probe_changes.deploy_item(deploy['container'], info, image_info, image_cache[repo], now,
                                                              window_s, history, created_of)))
            elif deploy.get('release_link'):
                items.append((name, probe_changes.release_item(deploy['release_link'], now, window_s)))
        except (DockerError, OSError) as exc:
            errors.append((deploy.get('container') or deploy.get('release_link') or name, one_line(str(exc))))
    findings = []
    if items or errors:
        findings.append(probe_changes.evaluate_deploys(host, items, p['window'], errors))
    if p['host_changes']:
        packages = []
        for log in p['package_logs']:
            try:
                packages.extend(probe_changes.package_changes(log, since))
            except (OSError, ValueError):
                continue
        files = probe_changes.modified_files(p['watch_paths'], since)
        findings.append(probe_changes.evaluate_host_changes(host, packages, files, p['window'], p['watch_paths']))
    module.exit_json(changed=False, findings=findings)


if __name__ == '__main__':
    main()
