# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The changes area of the probes: its argument spec (SPEC) and run(module).

Shared by the module sre.incident_response.changes_probe (one area) and the module probe (every area of a host,
concurrently). run() takes an AnsibleModule or the probe's per-area view of one
(params, run_command, get_bin_path, fail_json) and returns the module result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time


from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import one_line, parse_docker_time, utcnow, window_seconds
from ansible_collections.sre.incident_response.plugins.module_utils.docker_api import DockerClient, DockerError
from ansible_collections.sre.incident_response.plugins.module_utils import probe_changes


HISTORY_SECONDS = 7 * 86400  # how far back engine events are asked for (the engine keeps fewer anyway)


SPEC = dict(
    report_host=dict(type='str', required=True),
    services=dict(type='list', elements='dict', default=[]),
    window=dict(type='str', default='15m'),
    host_changes=dict(type='bool', default=True),
    package_logs=dict(type='list', elements='path', default=['/var/log/dpkg.log']),
    watch_paths=dict(type='list', elements='path', default=['/etc']),
    docker_host=dict(type='str'),
)


def run(module):
    p = module.params
    window_s = window_seconds(module)
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
    return dict(changed=False, findings=findings)
