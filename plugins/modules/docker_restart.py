#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: docker_restart
short_description: Restart a Docker container in place (same container, same spec), once per observed start
version_added: 0.1.0
description:
  - Inspects the container (image, status, started at, health, restart count) and reports the plan; then
    restarts it in place with Docker's restart call (SIGTERM, SIGKILL after O(stop_timeout) seconds, started
    again with the same container ID and spec). A stopped container is started.
  - With O(started_at) (the C(before.started_at) of a plan), only the container that still runs the start the
    plan saw is restarted; when it was started since (by an earlier run, its restart policy or a person),
    nothing is done and the result says so - a second run does not restart twice.
  - The restart role (C(sre.incident_response.restart)) runs it in check mode for the plan, then behind the
    approval gate with O(started_at) from that plan.
author: sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.docker
  - sre.incident_response.attributes
  - sre.incident_response.attributes.idempotent
  - sre.incident_response.attributes.actiongroup_docker
options:
  name:
    description: Container name or ID.
    type: str
    required: true
  stop_timeout:
    description: Seconds the container gets to stop before it is killed.
    type: int
    default: 10
  started_at:
    description:
      - Restart only when the container's C(State.StartedAt) is still this value (from the plan).
      - Omit to restart whatever its start time.
    type: str
attributes:
  check_mode:
    support: full
    details: Inspects the container and reports what would be restarted; nothing is stopped or started.
  diff_mode:
    support: full
    details: Status, start time, health and restart count before and after.
  idempotent:
    support: partial
    details: A restart changes the container every time by nature; with O(started_at) a repeated call finds a
      newer start and changes nothing.
'''

EXAMPLES = r'''
- name: Plan the restart (read-only)
  sre.incident_response.docker_restart:
    name: app-backend
  check_mode: true
  register: plan

- name: Restart the container the plan saw, once
  sre.incident_response.docker_restart:
    name: app-backend
    stop_timeout: 10
    started_at: "{{ plan.before.started_at }}"
'''

RETURN = r'''
before:
  description: The container before (C(type) is always C(docker)).
  returned: success
  type: dict
  sample: {type: docker, container: app-backend, id: 4f1c2d3e4f5a, image: "app-backend:1.0.0", status: running,
           running: true, started_at: "2026-11-27T03:48:01.123456789Z", restart_count: 0, health: healthy}
after:
  description: The container after the restart (the same as RV(before) when nothing was done or in check mode).
  returned: success
  type: dict
  sample: {type: docker, container: app-backend, id: 4f1c2d3e4f5a, image: "app-backend:1.0.0", status: running,
           running: true, started_at: "2026-11-27T04:02:17.000000000Z", restart_count: 0, health: starting}
container_id:
  description: ID of the container.
  returned: success
  type: str
  sample: 4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c
plan:
  description: What happens (or happened), for people.
  returned: always
  type: list
  elements: str
  sample: ["restart container app-backend (image app-backend:1.0.0, running since 2026-11-27T03:48:01Z, health healthy, restarts 0)"]
'''

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.sre.incident_response.plugins.module_utils.docker_api import (
    DockerClient, DockerError, docker_argument_spec)

DIFF_KEYS = ('status', 'started_at', 'health', 'restart_count')


def describe(name, inspect):
    """The restart role's view of a container (no Env, no mounts): what the plan shows and the verify reads."""
    state = inspect.get('State') or {}
    return {
        'type': 'docker',
        'container': name,
        'id': (inspect.get('Id') or '')[:12],
        'image': (inspect.get('Config') or {}).get('Image'),
        'status': state.get('Status'),
        'running': bool(state.get('Running')),
        'started_at': state.get('StartedAt'),
        'restart_count': inspect.get('RestartCount'),
        'health': (state.get('Health') or {}).get('Status') or 'none',
    }


def plan_line(before):
    return 'restart container %s (image %s, %s since %s, health %s, restarts %s)' % (
        before['container'], before['image'], before['status'], before['started_at'], before['health'], before['restart_count'])


def decide(before, started_at):
    """(restart?, plan line): restart unless the plan's start time is given and the container was started since."""
    if started_at and before.get('started_at') != started_at:
        return False, ('container %s was started at %s, after the plan saw the start at %s: not restarted again'
                       % (before['container'], before.get('started_at'), started_at))
    return True, plan_line(before)


def main():
    argument_spec = docker_argument_spec()
    argument_spec.update(
        name=dict(type='str', required=True),
        stop_timeout=dict(type='int', default=10),
        started_at=dict(type='str'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    result = dict(changed=False, plan=[])
    try:
        client = DockerClient(p['docker_host'], timeout=max(10, p['stop_timeout'] + 10))
        info = client.container(p['name'])
        if not info:
            module.fail_json(msg='container %s does not exist; nothing to restart (is it removed? use rollback or redeploy)'
                             % p['name'], **result)
        before = describe(p['name'], info)
        restart, line = decide(before, p['started_at'])
        result.update(before=before, after=before, container_id=info.get('Id'), plan=[line])
        if restart and not module.check_mode:
            client.restart(info['Id'], p['stop_timeout'])
            result['after'] = describe(p['name'], client.inspect(info['Id']))
        result['changed'] = restart
        if module._diff:
            after = dict(result['after'])
            if restart and module.check_mode:
                after.update(status='running', started_at='(restarted now)')
            result['diff'] = dict(before=dict((k, before[k]) for k in DIFF_KEYS),
                                  after=dict((k, after[k]) for k in DIFF_KEYS))
    except DockerError as exc:
        module.fail_json(msg='Docker error during the restart of %s: %s' % (p['name'], to_native(exc)),
                         exception=traceback.format_exc(), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
