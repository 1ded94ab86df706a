# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The redis area of the probes: its argument spec (SPEC) and run(module).

Shared by the module sre.incident_response.redis_probe (one area) and the module probe (every area of a host,
concurrently). run() takes an AnsibleModule or the probe's per-area view of one
(params, run_command, get_bin_path, fail_json) and returns the module result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.sre.incident_response.plugins.module_utils import redis_common, probe_redis
from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import thresholds_of, window_seconds
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor

THRESHOLD_SPEC = dict(
    memory_warn_pct=dict(type='float', default=90),
    memory_crit_pct=dict(type='float', default=98),
    fragmentation_warn=dict(type='float', default=3.0),
    fragmentation_min_bytes=dict(type='int', default=104857600),
    # a count of evicted keys, not a key: nothing secret (no_log=False answers validate-modules' name check)
    evicted_keys_warn=dict(type='int', default=1, no_log=False),
    clients_warn_pct=dict(type='float', default=80),
    clients_crit_pct=dict(type='float', default=95),
    blocked_clients_warn=dict(type='int', default=10),
    rejected_connections_warn=dict(type='int', default=1),
    slowlog_warn_ms=dict(type='float', default=20),
    slowlog_crit_count=dict(type='int', default=10),
)
INFO_KEYS = ('redis_version', 'role', 'uptime_in_seconds', 'used_memory', 'used_memory_human', 'used_memory_rss',
             'used_memory_peak', 'maxmemory', 'maxmemory_policy', 'mem_fragmentation_ratio', 'evicted_keys',
             'expired_keys', 'connected_clients', 'blocked_clients', 'rejected_connections', 'maxclients',
             'keyspace_hits', 'keyspace_misses', 'total_commands_processed', 'instantaneous_ops_per_sec',
             'total_error_replies')


SPEC = redis_common.redis_argument_spec()
SPEC.update(
    report_host=dict(type='str', required=True),
    service=dict(type='str', required=True),
    slowlog_count=dict(type='int', default=10),
    window=dict(type='str', default='15m'),
    thresholds=dict(type='dict', default={}, options=THRESHOLD_SPEC),
    evictable_patterns=dict(type='list', elements='str', default=[]),
    protected_patterns=dict(type='list', elements='str', default=[]),
    prefix_sample_keys=dict(type='int', default=1000, no_log=False),  # how many keys to sample: a count, not a secret
)


def run(module):
    """The area's result, scrubbed of the login password as keys and values (AnsibleModule's no_log scrubs values
    only, and key names and slow-log arguments are the clients' own text)."""
    return Redactor(literals=[module.params.get('login_password')]).data(_run(module))


def _run(module):
    p = module.params
    if not redis_common.HAS_REDIS:  # a missing tool is a finding, not a failed play
        reason = '%s; install %s, e.g. with playbooks/prepare.yml' % (
            missing_required_lib('redis').split('.')[0], redis_common.REDIS_PACKAGES)
        return dict(changed=False, executed_commands=[], evidence_files={}, findings=[
            probe_redis.not_checked(c, p['report_host'], p['service'], reason)
            for c in ('redis.connectivity', 'redis.memory', 'redis.clients', 'redis.slowlog', 'redis.keyspace')])
    t = thresholds_of(module, THRESHOLD_SPEC, (('memory_warn_pct', 'memory_crit_pct'), ('clients_warn_pct', 'clients_crit_pct')))
    t['window_seconds'] = window_seconds(module)
    host, service = p['report_host'], p['service']
    secrets = [p['login_password']]
    others = ('redis.memory', 'redis.clients', 'redis.slowlog', 'redis.keyspace')
    client = None
    try:
        client = redis_common.redis_connect(p)
        client.ping()
    except Exception as exc:  # pylint: disable=broad-except
        error = redis_common.describe_error(exc, secrets)
        findings = [probe_redis.evaluate_connectivity(host, service, {}, error=error)]
        findings += [probe_redis.not_checked(c, host, service, 'no connection to %s:%s' % (p['login_host'], p['login_port']))
                     for c in others]
        if client is not None:
            client.close()
        return dict(changed=False, findings=findings, evidence_files={}, executed_commands=['PING'])
    try:
        data = probe_redis.collect(client, p['slowlog_count'])
        info = data.get('info') or {}
        findings = _evaluate(client, host, service, data, info, t, p)
    finally:
        client.close()
    files = {'redis-info-%s.json' % service: {k: info.get(k) for k in INFO_KEYS if k in info},
             'redis-slowlog-%s.json' % service: findings[-1]['evidence'].get('entries', [])}
    if data['errors']:
        files['redis-errors-%s.json' % service] = data['errors']
    return dict(changed=False, findings=findings, evidence_files=files, executed_commands=data['executed_commands'])


def _evaluate(client, host, service, data, info, t, p):
    findings = [probe_redis.evaluate_connectivity(host, service, data)]
    if info:
        findings.append(probe_redis.evaluate_memory(host, service, info, t))
        findings.append(probe_redis.evaluate_clients(host, service, info, t))
        findings.append(probe_redis.evaluate_keyspace(host, service, info))
        mem = findings[1]
        if mem['status'] != 'ok' and p['prefix_sample_keys'] > 0:
            describe_prefixes(client, mem, info, p)
    else:
        findings += [probe_redis.not_checked(c, host, service, 'INFO: %s' % data['errors'].get('INFO', 'empty'))
                     for c in ('redis.memory', 'redis.clients', 'redis.keyspace')]
    if 'SLOWLOG GET' in data['errors']:
        findings.append(probe_redis.not_checked('redis.slowlog', host, service, data['errors']['SLOWLOG GET']))
    else:
        findings.append(probe_redis.evaluate_slowlog(host, service, data['slowlog'], data.get('slowlog_len'), t))
    return findings


def describe_prefixes(client, mem, info, p):
    """What fills Redis: the top key prefixes by memory (bounded sample) on a redis.memory that is not ok."""
    try:
        sizes, sampled = probe_redis.sample_prefixes(client, p['prefix_sample_keys'])
        total = sum(int((v or {}).get('keys', 0)) for k, v in info.items() if str(k).startswith('db') and isinstance(v, dict))
        rows, evictable = probe_redis.top_prefixes(sizes, sampled, total, p['evictable_patterns'], p['protected_patterns'])
    except Exception as exc:  # pylint: disable=broad-except
        mem['evidence']['top_prefixes_error'] = str(exc)[:200]
        return
    mem['evidence'].update(top_prefixes=rows, sampled_keys=sampled, total_keys=total,
                           evictable_est_bytes=evictable, memory_warn_pct=p['thresholds'].get('memory_warn_pct') or 90,
                           evictable_patterns=p['evictable_patterns'])
    if rows:
        mem['summary'] += '; top prefixes: %s' % ', '.join(
            '%s %s (%s)' % (r['prefix'], probe_redis.human_bytes(r['est_bytes']), r['marked']) for r in rows[:3])
