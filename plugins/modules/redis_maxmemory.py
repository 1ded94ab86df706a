#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: redis_maxmemory
short_description: Raise Redis maxmemory within the host's free memory (Redis full of keys that may not be evicted)
version_added: 0.2.0
description:
  - Computes the C(maxmemory) at which the used memory is O(target_used_percent) of it, rounded up to a MiB.
  - Refuses when the increase exceeds O(max_free_fraction) of the host's C(MemAvailable) (C(/proc/meminfo) of the
    host the module runs on, so run it on the Redis host), and never lowers C(maxmemory).
  - With O(state=present) sets it with C(CONFIG SET maxmemory) (runtime; C(CONFIG REWRITE) when O(persist) is set).
    No key is deleted. Check mode and O(state=plan) report the plan and change nothing.
author: sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.redis_connection
  - sre.incident_response.attributes
  - sre.incident_response.attributes.idempotent
  - sre.incident_response.attributes.actiongroup_redis
options:
  target_used_percent:
    description: The used memory, as a percent of the new maxmemory.
    type: float
    default: 75
  max_free_fraction:
    description: The increase may use at most this fraction of the host's available memory.
    type: float
    default: 0.5
  persist:
    description: Also write the new value to the configuration file with C(CONFIG REWRITE).
    type: bool
    default: false
  state:
    description:
      - C(plan) plans only; C(present) sets the new maxmemory.
      - C(list) is the former name of C(plan); the action still accepts it, with a deprecation warning.
    type: str
    default: plan
    choices: [plan, present]
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A second run finds maxmemory already at or above the target and changes nothing.
'''

EXAMPLES = r'''
- name: Give Redis room (no key deleted)
  sre.incident_response.redis_maxmemory:
    login_host: 127.0.0.1
    login_port: 6379
    login_password: "{{ redis_password }}"
    state: present
'''

RETURN = r'''
memory_before:
  description: used_memory and maxmemory before.
  returned: always
  type: dict
  sample: {used_memory: 67150000, maxmemory: 67108864}
memory_after:
  description: used_memory and maxmemory after (equal to before in a plan).
  returned: always
  type: dict
  sample: {used_memory: 67150000, maxmemory: 90177536}
new_maxmemory:
  description: The planned maxmemory in bytes.
  returned: always
  type: int
  sample: 90177536
host_available:
  description: MemAvailable of the host in bytes (null when /proc/meminfo cannot be read).
  returned: always
  type: int
  sample: 23622320128
fits:
  description: Whether the increase fits within max_free_fraction of the host's available memory.
  returned: always
  type: bool
  sample: true
plan:
  description: Lines for people.
  returned: always
  type: list
  elements: str
  sample: ["raise maxmemory 64.0 MiB -> 86.0 MiB (used 64.0 MiB = 75 %), host has 21.9 GiB available"]
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.sre.incident_response.plugins.module_utils import redis_common
from ansible_collections.sre.incident_response.plugins.module_utils import remediation as logic


def memory(client):
    info = client.info('memory')
    return {'used_memory': int(info.get('used_memory', 0)), 'maxmemory': int(info.get('maxmemory', 0)),
            'used_memory_human': info.get('used_memory_human')}


def mem_available(path='/proc/meminfo'):
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def main():
    spec = redis_common.redis_argument_spec()
    spec.update(
        target_used_percent=dict(type='float', default=75.0),
        max_free_fraction=dict(type='float', default=0.5),
        persist=dict(type='bool', default=False),
        state=dict(type='str', default='plan', choices=['plan', 'present']),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    if not redis_common.HAS_REDIS:
        module.fail_json(msg=missing_required_lib('redis'), exception=redis_common.REDIS_IMPORT_ERROR)
    if not 1 <= p['target_used_percent'] < 100 or not 0 < p['max_free_fraction'] <= 1:
        module.fail_json(msg='target_used_percent must be in [1, 100) and max_free_fraction in (0, 1]')
    available = mem_available()
    try:
        client = redis_common.redis_connect(p)
        before = memory(client)
        plan = logic.maxmemory_plan(before['used_memory'], before['maxmemory'], available,
                                    p['target_used_percent'], p['max_free_fraction'])
        result = dict(changed=False, memory_before=before, memory_after=dict(before), new_maxmemory=plan['new'],
                      host_available=available, fits=plan['fits'], plan=[plan['line']])
        if p['state'] == 'present' and not plan['fits']:
            module.fail_json(msg='refusing to raise maxmemory: %s' % plan['line'], **result)
        if plan['needed'] and p['state'] == 'present':
            result['changed'] = True
            if not module.check_mode:
                client.config_set('maxmemory', plan['new'])
                if p['persist']:
                    client.config_rewrite()
                result['memory_after'] = memory(client)
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg='redis_maxmemory failed: %s' % redis_common.describe_error(exc, [p.get('login_password')]))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
