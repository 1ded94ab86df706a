#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: redis_evict
short_description: Remove Redis keys of allow-listed, non-critical patterns with SCAN and UNLINK
version_added: 0.1.0
description:
  - Walks the keyspace with C(SCAN MATCH) for each pattern of O(patterns), measures every key with
    C(MEMORY USAGE) and removes the keys with C(UNLINK) in batches of O(batch_size).
  - A key that matches any of O(protected_patterns) is never removed, whatever else matches it; a pattern
    without a literal prefix or overlapping a protected pattern is refused.
  - Never uses C(KEYS), C(FLUSHALL) or C(FLUSHDB).
  - Check mode counts and measures the keys and removes nothing.
author: sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.redis_connection
  - sre.incident_response.attributes
  - sre.incident_response.attributes.idempotent
  - sre.incident_response.attributes.actiongroup_redis
options:
  patterns:
    description: Redis glob patterns of evictable keys, e.g. C(cache:*).
    type: list
    elements: str
    required: true
  protected_patterns:
    description: Redis glob patterns of keys that must never be removed, e.g. C(session:*).
    type: list
    elements: str
    default: []
  max_used_percent:
    description: The plan says whether removing the keys brings used memory below this percent of maxmemory.
    type: float
    default: 90
  state:
    description:
      - C(plan) only lists, C(absent) removes the keys.
      - C(list) is the former name of C(plan); the action still accepts it, with a deprecation warning.
    type: str
    default: plan
    choices: [plan, absent]
  batch_size:
    description: SCAN COUNT hint and the number of keys per UNLINK.
    type: int
    default: 500
  max_keys:
    description: Stop after this many keys in total (0 means no limit).
    type: int
    default: 0
  sample_keys:
    description: How many key names per pattern to return as examples.
    type: int
    default: 5
attributes:
  check_mode:
    support: full
    details: Counts and measures; removes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A second run finds no keys and reports no change.
requirements:
  - redis (redis-py)
'''

EXAMPLES = r'''
- name: Remove cache keys, never sessions
  sre.incident_response.redis_evict:
    login_port: 6379
    login_password: "{{ lookup('ansible.builtin.vars', 'vault_redis_password') }}"
    patterns: ["cache:*"]
    protected_patterns: ["session:*"]
    state: absent
'''

RETURN = r'''
patterns:
  description: Per pattern - keys, bytes and example key names.
  returned: always
  type: list
  elements: dict
  sample: [{pattern: "cache:*", keys: 52000, bytes: 60817408, examples: ["cache:product:1"]}]
keys:
  description: Keys matched (to remove, or removed).
  returned: always
  type: int
  sample: 52000
bytes:
  description: Sum of C(MEMORY USAGE) of the matched keys.
  returned: always
  type: int
  sample: 60817408
keys_removed:
  description: Keys actually unlinked (0 in check mode).
  returned: always
  type: int
  sample: 52000
bytes_freed:
  description: C(used_memory) before minus after.
  returned: always
  type: int
  sample: 60000000
protected_skipped:
  description: Keys that matched a pattern but are protected, and were left alone.
  returned: always
  type: int
  sample: 0
protected_keys:
  description: Number of keys of each protected pattern before and after.
  returned: always
  type: dict
  sample: {"session:*": {before: 100, after: 100}}
protected_intact:
  description: No protected pattern has fewer keys after than before.
  returned: always
  type: bool
  sample: true
memory_before:
  description: INFO memory used_memory and maxmemory before.
  returned: always
  type: dict
  sample: {used_memory: 66000000, maxmemory: 67108864}
memory_after:
  description: INFO memory after (equal to before in check mode).
  returned: always
  type: dict
  sample: {used_memory: 1200000, maxmemory: 67108864}
enough:
  description: Whether removing the planned keys brings used memory below O(max_used_percent) of maxmemory.
  returned: always
  type: bool
  sample: false
needed_bytes:
  description: Bytes that must be freed to get below O(max_used_percent) of maxmemory (0 when already below).
  returned: always
  type: int
  sample: 6711000
sufficiency:
  description: The planned bytes against the needed bytes, in words (the first plan line).
  returned: always
  type: str
  sample: "CANNOT free enough: plans 2.9 KiB of the 6.4 MiB needed to get below 90 % of maxmemory 64.0 MiB"
plan:
  description: One line per pattern, for people.
  returned: always
  type: list
  elements: str
  sample: ["cache:*: 52000 keys, 58.0 MiB (e.g. cache:product:1)"]
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.sre.incident_response.plugins.module_utils import redis_common
from ansible_collections.sre.incident_response.plugins.module_utils import remediation as logic


def memory(client):
    info = client.info('memory')
    return {'used_memory': int(info.get('used_memory', 0)), 'used_memory_human': info.get('used_memory_human'),
            'maxmemory': int(info.get('maxmemory', 0))}


def count_pattern(client, pattern, batch):
    n = 0
    for dummy in client.scan_iter(match=pattern, count=batch):
        n += 1
    return n


def main():
    spec = redis_common.redis_argument_spec()
    spec.update(
        patterns=dict(type='list', elements='str', required=True),
        protected_patterns=dict(type='list', elements='str', default=[]),
        state=dict(type='str', default='plan', choices=['plan', 'absent']),
        batch_size=dict(type='int', default=500),
        # counts of keys, not secrets (no_log=False answers validate-modules' name check)
        max_keys=dict(type='int', default=0, no_log=False),
        sample_keys=dict(type='int', default=5, no_log=False),
        max_used_percent=dict(type='float', default=90.0),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    if not redis_common.HAS_REDIS:
        module.fail_json(msg=missing_required_lib('redis'), exception=redis_common.REDIS_IMPORT_ERROR)
    errors = logic.pattern_errors(p['patterns'], p['protected_patterns'])
    if errors:
        module.fail_json(msg='refusing to evict: %s' % '; '.join(errors))
    batch = max(1, min(p['batch_size'], 10000))
    protected = [logic.redis_glob_to_regex(x) for x in p['protected_patterns']]
    secrets = [p.get('login_password')]
    result = dict(changed=False, patterns=[], keys=0, bytes=0, enough=True, needed_bytes=0, sufficiency='', keys_removed=0, bytes_freed=0, protected_skipped=0,
                  protected_keys={}, protected_intact=True, memory_before={}, memory_after={}, plan=[])
    try:
        client = redis_common.redis_connect(p)
        client.ping()
        result['memory_before'] = memory(client)
        for prot in p['protected_patterns']:
            result['protected_keys'][prot] = {'before': count_pattern(client, prot, batch)}
        remove = p['state'] == 'absent' and not module.check_mode
        seen = set()
        for pattern in p['patterns']:
            entry = {'pattern': pattern, 'keys': 0, 'bytes': 0, 'examples': [], 'removed': 0}
            pending = []

            def flush(pending, entry):
                if not pending:
                    return
                sizes = client.pipeline(transaction=False)
                for key in pending:
                    sizes.memory_usage(key, samples=0)
                for size in sizes.execute():
                    entry['bytes'] += int(size or 0)
                if remove:
                    entry['removed'] += int(client.unlink(*pending) or 0)
                del pending[:]

            for key in client.scan_iter(match=pattern, count=batch):
                if key in seen:
                    continue
                if any(r.match(key) for r in protected):
                    result['protected_skipped'] += 1
                    continue
                if p['max_keys'] and len(seen) >= p['max_keys']:
                    break
                seen.add(key)
                entry['keys'] += 1
                if len(entry['examples']) < p['sample_keys']:
                    entry['examples'].append(key)
                pending.append(key)
                if len(pending) >= batch:
                    flush(pending, entry)
            flush(pending, entry)
            result['patterns'].append(entry)
            result['keys'] += entry['keys']
            result['bytes'] += entry['bytes']
            result['keys_removed'] += entry['removed']
            result['plan'].append('%s: %d keys, %s%s' % (pattern, entry['keys'], logic.human_bytes(entry['bytes']),
                                                         (' (e.g. %s)' % ', '.join(entry['examples'][:3])) if entry['examples'] else ''))
        for prot in p['protected_patterns']:
            result['plan'].append('%s: protected, %d keys, never touched' % (prot, result['protected_keys'][prot]['before']))
        before = result['memory_before']
        result.update(logic.flush_sufficiency(before['used_memory'], before['maxmemory'], result['bytes'],
                                              p['max_used_percent']))
        result['plan'].insert(0, result['sufficiency'])
        result['memory_after'] = memory(client) if remove else dict(result['memory_before'])
        for prot in p['protected_patterns']:
            result['protected_keys'][prot]['after'] = (count_pattern(client, prot, batch) if remove
                                                       else result['protected_keys'][prot]['before'])
        result['protected_intact'] = all(v['after'] >= v['before'] for v in result['protected_keys'].values())
        result['bytes_freed'] = max(0, result['memory_before']['used_memory'] - result['memory_after']['used_memory'])
        result['changed'] = result['keys'] > 0 and p['state'] == 'absent'
    except Exception as exc:
        module.fail_json(msg='redis_evict failed: %s' % redis_common.describe_error(exc, secrets), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
