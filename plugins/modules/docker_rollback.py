#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: docker_rollback
short_description: Redeploy the previous image of a Docker container, keeping its full spec, with automatic restore
version_added: 0.1.0
description:
  - Records the running image (tag, image ID, repository digests) and chooses the target - O(image), else the
    C(sre.incident_response.previous_image) label of the container or its image, else the highest local tag of
    the same repository below the current version (or the newest local image created before the current one).
  - Verifies that the target image exists locally B(before) anything is stopped, then creates the replacement
    from the container's own inspect data (environment, mounts, memory, network mode, restart policy, command,
    labels, health check - everything in C(Config) and C(HostConfig)) with only the image changed. Values the
    old image supplied (its C(ENV), C(CMD), labels, ...) are left to the new image.
  - Stops the old container, renames it aside, starts the replacement under the original name and waits for
    Docker's health status (and O(health_url) when given). When the replacement is not healthy in
    O(health_timeout) seconds it is stopped and the previous container is started again, and the module fails.
  - The replacement carries the label C(sre.incident_response.rolled_back_from); a second run without O(image)
    sees it and reports no change.
author: sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.docker
  - sre.incident_response.attributes
  - sre.incident_response.attributes.idempotent
  - sre.incident_response.attributes.actiongroup_docker
options:
  name:
    description: Container name.
    type: str
    required: true
  image:
    description: Target image reference (C(repo:tag)); chosen automatically when omitted.
    type: str
  health_timeout:
    description: Seconds to wait for the replacement to be running and healthy.
    type: int
    default: 90
  health_url:
    description: HTTP URL that must answer 200 (checked from the host running the module) besides Docker's health status.
    type: str
  stop_timeout:
    description: Seconds Docker waits for the old container to stop before killing it.
    type: int
    default: 10
  keep_previous:
    description: Keep the old container (stopped, renamed C(<name>-pre-rollback-<time>)) instead of removing it.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Resolves and checks the target and reports the plan; nothing is created, stopped or started.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: When the container already runs the target image (or was rolled back) nothing changes.
notes:
  - Talks to the Docker engine with the collection's own client (standard library only, no Docker SDK or
    requests on the managed host); the container's environment is read to recreate it and never returned.
'''

EXAMPLES = r'''
- name: Roll app-backend back to the previous local version
  sre.incident_response.docker_rollback:
    name: app-backend
    health_url: http://127.0.0.1:8000/health

- name: Roll back to an explicit image
  sre.incident_response.docker_rollback:
    name: app-backend
    image: app-backend:1.0.0
'''

RETURN = r'''
current:
  description: The image running before (tag, image id, repo digests, created).
  returned: always
  type: dict
  sample: {image: "app-backend:1.1.0", id: "sha256:3415f6...", repo_digests: [], digest: "sha256:3415f6...", created: "2026-11-27T03:48:01Z"}
target:
  description: The image rolled back to, and why it was chosen.
  returned: success
  type: dict
  sample: {image: "app-backend:1.0.0", id: "sha256:bf262f...", digest: "sha256:bf262f...", reason: highest local version below 1.1.0}
container_id:
  description: ID of the container running under O(name) at the end.
  returned: always
  type: str
  sample: 4f1c2d...
restored:
  description: True when the replacement failed its health check and the previous container was started again.
  returned: always
  type: bool
  sample: false
steps:
  description: What was done, in order (create, stop and rename, the replacement's health, removal).
  returned: always
  type: list
  elements: str
  sample: ["created 4f1c2d3e4f5a from app-backend:1.0.0", "stopped 9a8b7c6d5e4f and renamed it app-backend-pre-rollback-20261127T035500"]
plan:
  description: What happens, for people.
  returned: always
  type: list
  elements: str
  sample: ["app-backend: app-backend:1.1.0 (sha256:3415f6) -> app-backend:1.0.0 (sha256:bf262f): highest local version below 1.1.0"]
'''

import time
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.urls import open_url

from ansible_collections.sre.incident_response.plugins.module_utils import remediation as logic
from ansible_collections.sre.incident_response.plugins.module_utils.docker_api import (
    DockerClient, DockerError, docker_argument_spec)

LABEL_FROM = 'sre.incident_response.rolled_back_from'
LABEL_AT = 'sre.incident_response.rolled_back_at'
LABEL_PREVIOUS = 'sre.incident_response.previous_image'
IMAGE_DEFAULTS = ('Cmd', 'Entrypoint', 'WorkingDir', 'User', 'Healthcheck', 'StopSignal', 'Shell', 'OnBuild')


def describe_image(ref, inspect):
    digests = inspect.get('RepoDigests') or []
    return {'image': ref, 'id': inspect.get('Id'), 'repo_digests': digests, 'digest': digests[0] if digests else inspect.get('Id'),
            'created': inspect.get('Created'), 'tags': inspect.get('RepoTags') or [],
            'version': ((inspect.get('Config') or {}).get('Labels') or {}).get('org.opencontainers.image.version')}


def short(image_id):
    image_id = str(image_id or '')
    return image_id[7:19] if image_id.startswith('sha256:') else image_id[:12]


def local_images(client, repo):
    images = client.images(reference=repo) or []
    out = []
    for img in images:
        for tag in img.get('RepoTags') or []:
            r, t = logic.split_image(tag)
            if r == repo:
                out.append({'tag': t, 'id': img.get('Id'), 'created': '%020d' % int(img.get('Created') or 0)})
    return out


def create_body(container, old_image, new_image_ref, current_ref):
    """The container's own Config/HostConfig with only the image changed (pure apart from inputs)."""
    cfg = dict(container.get('Config') or {})
    old_cfg = old_image.get('Config') or {}
    old_env = set(old_cfg.get('Env') or [])
    cfg['Env'] = [e for e in (cfg.get('Env') or []) if e not in old_env]
    old_labels = old_cfg.get('Labels') or {}
    labels = dict((k, v) for k, v in (cfg.get('Labels') or {}).items() if old_labels.get(k) != v)
    labels[LABEL_FROM] = current_ref
    labels[LABEL_AT] = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    cfg['Labels'] = labels
    for key in IMAGE_DEFAULTS:
        if key in cfg and cfg.get(key) == old_cfg.get(key):
            cfg.pop(key, None)
    for key in ('ExposedPorts', 'Volumes'):
        if cfg.get(key) and old_cfg.get(key):
            cfg[key] = dict((k, v) for k, v in cfg[key].items() if k not in old_cfg[key]) or None
    host_config = dict(container.get('HostConfig') or {})
    mode = str(host_config.get('NetworkMode') or '')
    if mode == 'host' or mode.startswith('container:') or cfg.get('Hostname') == (container.get('Id') or '')[:12]:
        cfg.pop('Hostname', None)
        cfg.pop('Domainname', None)
    cfg['Image'] = new_image_ref
    body = dict(cfg)
    body['HostConfig'] = host_config
    networks = (container.get('NetworkSettings') or {}).get('Networks') or {}
    endpoints = {}
    for net, conf in networks.items():
        if net in ('host', 'none', 'bridge', 'default') or mode.startswith('container:'):
            continue
        endpoints[net] = {'Aliases': conf.get('Aliases'), 'IPAMConfig': conf.get('IPAMConfig'), 'Links': conf.get('Links')}
    if endpoints:
        body['NetworkingConfig'] = {'EndpointsConfig': endpoints}
    return body


def http_ok(url, timeout=3):
    try:
        resp = open_url(url, timeout=timeout, validate_certs=False)
        return resp.getcode() == 200, 'HTTP %s' % resp.getcode()
    except Exception as exc:
        return False, to_native(exc).splitlines()[0] if to_native(exc) else type(exc).__name__


def wait_healthy(client, cid, timeout, url):
    deadline = time.time() + timeout
    last = 'not started'
    while time.time() < deadline:
        info = client.inspect(cid)
        state = info.get('State') or {}
        if not state.get('Running'):
            last = 'not running (status %s, exit code %s)' % (state.get('Status'), state.get('ExitCode'))
            if state.get('Status') in ('exited', 'dead') and not state.get('Restarting'):
                return False, last
        else:
            health = (state.get('Health') or {}).get('Status')
            if health == 'unhealthy':
                return False, 'Docker health status unhealthy'
            docker_ok = health in (None, 'healthy')
            http, why = (True, '') if not url else http_ok(url)
            if docker_ok and http:
                return True, 'running%s%s' % (', healthy' if health else '', (', %s %s' % (url, why)) if url else '')
            last = 'health %s%s' % (health, (', %s: %s' % (url, why)) if url else '')
        time.sleep(1)
    return False, 'not healthy after %ss: %s' % (timeout, last)


def restore(client, p, new_id, old_id, failed_name):
    """Best effort, step by step: stop and set aside the replacement, give the old container its name back, start it."""
    steps = ((client.stop, new_id, p['stop_timeout']),
             (client.rename, new_id, failed_name),
             (client.rename, old_id, p['name']),
             (client.start, old_id))
    for step in steps:
        try:
            step[0](*step[1:])
        except DockerError:
            pass


def main():
    argument_spec = docker_argument_spec()
    argument_spec.update(
        name=dict(type='str', required=True),
        image=dict(type='str'),
        health_timeout=dict(type='int', default=90),
        health_url=dict(type='str'),
        stop_timeout=dict(type='int', default=10),
        keep_previous=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    result = dict(changed=False, current={}, target={}, container_id=None, restored=False, plan=[], steps=[])
    try:
        client = DockerClient(p['docker_host'])
        # the environment is needed to recreate the container; it is never returned
        container = client.container(p['name'], keep_env=True)
        if not container:
            module.fail_json(msg='container %s does not exist; nothing to roll back' % p['name'], **result)
        result['container_id'] = container['Id']
        current_ref = (container.get('Config') or {}).get('Image')
        current_inspect = client.find_image(container['Image']) or {}
        result['current'] = describe_image(current_ref, current_inspect)
        labels = (container.get('Config') or {}).get('Labels') or {}
        repo, current_tag = logic.split_image(current_ref)
        reason = None
        if p['image']:
            target_ref, reason = p['image'], 'requested (image)'
        elif labels.get(LABEL_FROM):
            target_ref, reason = current_ref, 'already rolled back from %s at %s' % (labels[LABEL_FROM], labels.get(LABEL_AT))
        elif labels.get(LABEL_PREVIOUS) or ((current_inspect.get('Config') or {}).get('Labels') or {}).get(LABEL_PREVIOUS):
            target_ref = labels.get(LABEL_PREVIOUS) or current_inspect['Config']['Labels'][LABEL_PREVIOUS]
            reason = 'label %s' % LABEL_PREVIOUS
        else:
            tag, reason = logic.pick_previous_tag(current_tag, local_images(client, repo))
            if not tag:
                module.fail_json(msg='no previous image of %s found locally (%s); pass rollback_image. Nothing was stopped.'
                                 % (current_ref, reason), **result)
            target_ref = '%s:%s' % (repo, tag)
        target_inspect = client.find_image(target_ref)
        if not target_inspect:
            module.fail_json(msg='rollback target image %s is not present locally; nothing was stopped (%s still runs %s). '
                             'Load or pull it first.' % (target_ref, p['name'], current_ref), **result)
        result['target'] = describe_image(target_ref, target_inspect)
        result['target']['reason'] = reason
        if target_inspect.get('Id') == container['Image']:
            result['plan'].append('%s already runs %s (%s): nothing to do (%s)' % (p['name'], current_ref, short(container['Image']), reason))
            module.exit_json(**result)
        result['plan'].append('%s: %s (%s) -> %s (%s): %s; container spec kept, health wait %ss' % (
            p['name'], current_ref, short(container['Image']), target_ref, short(target_inspect.get('Id')), reason, p['health_timeout']))
        result['changed'] = True
        if module.check_mode:
            module.exit_json(**result)

        stamp = time.strftime('%Y%m%dT%H%M%S', time.gmtime())
        body = create_body(container, current_inspect, target_ref, current_ref)
        new_id = client.create(body, name='%s-rollback-%s' % (p['name'], stamp))
        result['steps'].append('created %s from %s' % (new_id[:12], target_ref))
        old_id = container['Id']
        aside = '%s-pre-rollback-%s' % (p['name'], stamp)
        failed_name = '%s-failed-rollback-%s' % (p['name'], stamp)
        try:
            client.stop(old_id, p['stop_timeout'])
            client.rename(old_id, aside)
            client.rename(new_id, p['name'])
            result['steps'].append('stopped %s and renamed it %s' % (old_id[:12], aside))
            client.start(new_id)
            result['container_id'] = new_id
            ok, why = wait_healthy(client, new_id, p['health_timeout'], p['health_url'])
        except DockerError as exc:
            ok, why = False, 'Docker error while switching: %s' % to_native(exc)
        result['steps'].append('replacement: %s' % why)
        if not ok:
            restore(client, p, new_id, old_id, failed_name)
            result.update(restored=True, container_id=old_id)
            module.fail_json(msg='ROLLBACK FAILED VERIFICATION: %s on %s was not healthy (%s); the previous container (%s) was '
                             'started again; the failed replacement is kept stopped as %s. Investigate before retrying.'
                             % (p['name'], target_ref, why, current_ref, failed_name), **result)
        if not p['keep_previous']:
            client.remove(old_id, force=True)
            result['steps'].append('removed the previous container %s' % old_id[:12])
    except DockerError as exc:
        module.fail_json(msg='Docker error during rollback of %s: %s' % (p['name'], to_native(exc)),
                         exception=traceback.format_exc(), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
