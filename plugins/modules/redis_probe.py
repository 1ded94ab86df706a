#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: redis_probe
short_description: Diagnose a Redis server in one connection and return findings
version_added: 0.1.0
description:
  - Connects once (plain TCP or TLS, with timeouts) and returns the findings C(redis.connectivity) (PING),
    C(redis.memory) (used vs maxmemory, fragmentation, evicted keys, policy, OOM errors), C(redis.clients)
    (connected, blocked, rejected), C(redis.slowlog) (the top entries, those inside the window rated) and
    C(redis.keyspace) (keys per database, hit rate), C(redis.persistence) (last background save, AOF writes; a
    failed save is C(crit)), C(redis.replication) (a replica's link to its master, a master's replicas and lag),
    C(redis.latency) (C(LATENCY LATEST), events inside the window rated by their worst spike; a monitor that is off
    is said, with how to turn it on) and C(redis.log) (the warnings of the server's own log file of the window,
    grouped by message; it is read on the host the module runs on, the Redis host).
  - A server that cannot be reached or refuses the credentials gives a C(crit) C(redis.connectivity) finding with
    the error in one line and C(unknown) for the other checks; the module itself does not fail.
  - Read-only (PING, INFO, SLOWLOG GET/LEN, CLIENT LIST; LATENCY LATEST and CONFIG GET latency-monitor-threshold,
    logfile, dir and syslog-enabled in one pipeline; LATENCY HISTORY of the events inside the window; SCAN and
    MEMORY USAGE of a sample of keys when memory is not ok; the tail of the log file, at most 4 MiB).
author: sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.redis_connection
  - sre.incident_response.attributes
  - sre.incident_response.attributes.actiongroup_redis
options:
  report_host:
    description: Inventory host the findings are reported for.
    type: str
    required: true
  service:
    description: Service name (C(incident_services[].name)) the findings are about.
    type: str
    required: true
  slowlog_count:
    description: Slowlog entries fetched (C(SLOWLOG GET n)).
    type: int
    default: 10
  window:
    description: The incident window (C(15m)); only slowlog entries inside it are rated.
    type: str
    default: 15m
  evictable_patterns:
    description: Patterns of keys that may be evicted (the service's C(redis.evictable_patterns)); the top key
      prefixes of a C(redis.memory) that is not ok say whether a pattern marks them C(evictable).
    type: list
    elements: str
    default: []
  protected_patterns:
    description: Patterns of keys never evicted (C(redis.protected_patterns)), marked C(protected) in the top prefixes.
    type: list
    elements: str
    default: []
  prefix_sample_keys:
    description: When C(redis.memory) is not ok, at most this many keys are sampled (C(SCAN) + C(MEMORY USAGE))
      to show which key prefixes fill Redis; 0 disables the sample.
    type: int
    default: 1000
  client:
    description:
      - How the commands reach the server. C(library) is redis-py in the module's Python; C(cli) runs the same
        commands through C(redis-cli) (package C(redis-tools)), the password in the child's C(REDISCLI_AUTH) only,
        never C(-a); C(auto) uses the library when it imports, else C(redis-cli).
      - Every finding says which in C(evidence.client). With neither on the host the area gives one C(unknown)
        C(redis.connectivity) finding naming both packages instead of one per check.
    type: str
    choices: [auto, library, cli]
    default: auto
  thresholds:
    description: Thresholds of the findings.
    type: dict
    default: {}
    suboptions:
      memory_warn_pct:
        description: Used memory (percent of maxmemory) that makes C(redis.memory) C(warn).
        type: float
        default: 90
      latency_crit_ms:
        description: A latency event (C(LATENCY LATEST)) inside the window at least this long (ms) makes C(redis.latency) C(crit).
        type: float
        default: 1000
      latency_warn_ms:
        description: A latency event inside the window at least this long (ms) makes C(redis.latency) C(warn).
        type: float
        default: 100
      memory_crit_pct:
        description: Used memory that makes C(redis.memory) C(crit).
        type: float
        default: 98
      fragmentation_warn:
        description: C(mem_fragmentation_ratio) that makes C(redis.memory) C(warn).
        type: float
        default: 3.0
      fragmentation_min_bytes:
        description: Fragmentation is rated only above this used memory (small instances always look fragmented).
        type: int
        default: 104857600
      evicted_keys_warn:
        description: Evicted keys since start that make C(redis.memory) C(warn).
        type: int
        default: 1
      clients_warn_pct:
        description: Connected clients (percent of maxclients) that make C(redis.clients) C(warn).
        type: float
        default: 80
      clients_crit_pct:
        description: Connected clients that make C(redis.clients) C(crit).
        type: float
        default: 95
      blocked_clients_warn:
        description: Blocked clients that make C(redis.clients) C(warn).
        type: int
        default: 10
      rejected_connections_warn:
        description: Rejected connections since start that make C(redis.clients) C(warn).
        type: int
        default: 1
      slowlog_warn_ms:
        description: Commands inside the window at least this slow make C(redis.slowlog) C(warn).
        type: float
        default: 20
      slowlog_crit_count:
        description: This many such commands make it C(crit).
        type: int
        default: 10
      replication_lag_warn_s:
        description: Seconds a replica may lag (or hear nothing from its master) before C(redis.replication) warns.
        type: int
        default: 30
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
'''

EXAMPLES = r'''
- name: Diagnose Redis
  sre.incident_response.redis_probe:
    report_host: "{{ inventory_hostname }}"
    service: redis
    login_host: 127.0.0.1
    login_port: 6379
    login_password: "{{ vault_redis_password }}"
    tls: false
  register: __redis_probe
'''

RETURN = r'''
findings:
  description: The findings redis.connectivity, redis.memory, redis.clients, redis.keyspace, redis.persistence,
    redis.replication, redis.latency, redis.log and redis.slowlog.
  returned: always
  type: list
  elements: dict
  sample:
    - check: redis.memory
      host: app-redis
      service: redis
      status: crit
      summary: "63.9 MiB of maxmemory 64.0 MiB used (99.8%), policy noeviction: writes fail with OOM when full"
      evidence: {used_memory: 67000000, maxmemory: 67108864}
evidence_files:
  description: File name to data for C(evidence/<host>/) (INFO sections and the slowlog).
  returned: always
  type: dict
  sample: {redis-info-redis.json: {memory: {used_memory: 1024}}}
executed_commands:
  description: The commands the module ran (read-only).
  returned: always
  type: list
  elements: str
  sample: [PING, INFO everything, SLOWLOG GET 10]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.incident_response.plugins.module_utils.areas import redis as area


def main():
    module = AnsibleModule(argument_spec=area.SPEC, supports_check_mode=True)
    module.exit_json(**area.run(module))


if __name__ == '__main__':
    main()
