#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pg_probe
short_description: Diagnose a PostgreSQL server in one connection and return findings
version_added: 0.1.0
description:
  - Connects once (with timeouts) and returns the findings C(pg.connectivity) (the C(pg_isready) equivalent),
    C(pg.connections) (client connections by state against C(max_connections), idle in transaction),
    C(pg.long_queries) (not idle, running longer than the threshold), C(pg.locks) (blocked pid, blocking pid,
    both queries, wait time and the whole blocking chain from C(pg_blocking_pids)) and C(pg.disk)
    (database sizes and the data directory's filesystem usage, read in the container or on the host).
  - A server that cannot be reached gives a C(crit) C(pg.connectivity) finding with the error in one line and
    C(unknown) for the other checks; the module itself does not fail.
  - Read-only (autocommit, no writes). Connect as a role with C(pg_monitor) to see other sessions' queries.
author: sre.incident_response contributors
extends_documentation_fragment:
  - sre.incident_response.pg_connection
options:
  report_host:
    description: Inventory host the findings are reported for.
    type: str
    required: true
  service:
    description: Service name (C(incident_services[].name)) the findings are about.
    type: str
    required: true
  container:
    description: Docker container running the server; the data directory's usage is read inside it with C(df).
    type: str
  data_directory:
    description: Data directory to measure when the server does not tell (no C(pg_read_all_settings)).
    type: path
  thresholds:
    description: Thresholds of the findings.
    type: dict
    default: {}
    suboptions:
      connections_warn_pct:
        description: Connections used (percent of C(max_connections)) that make C(pg.connections) C(warn).
        type: float
        default: 80
      connections_crit_pct:
        description: Connections used that make C(pg.connections) C(crit).
        type: float
        default: 95
      idle_in_transaction_warn_seconds:
        description: Sessions idle in transaction at least this long make C(pg.connections) C(warn).
        type: float
        default: 30
      idle_in_transaction_crit_count:
        description: This many such sessions make it C(crit).
        type: int
        default: 5
      long_query_seconds:
        description: Queries (not idle) running at least this long are reported and make C(pg.long_queries) C(warn).
        type: float
        default: 30
      long_query_crit_seconds:
        description: The longest query at least this long makes C(pg.long_queries) C(crit).
        type: float
        default: 300
      lock_wait_warn_seconds:
        description: A session waiting on a lock this long makes C(pg.locks) C(warn).
        type: float
        default: 5
      lock_wait_crit_seconds:
        description: A session waiting on a lock this long makes C(pg.locks) C(crit).
        type: float
        default: 30
      blocked_sessions_warn:
        description: This many blocked sessions make C(pg.locks) C(warn) whatever their wait.
        type: int
        default: 3
      disk_warn_pct:
        description: Data directory filesystem usage (space or inodes, percent) that makes C(pg.disk) C(warn).
        type: float
        default: 90
      disk_crit_pct:
        description: Usage that makes C(pg.disk) C(crit).
        type: float
        default: 95
  query_chars:
    description: Characters of each query kept in the evidence.
    type: int
    default: 500
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
- name: Diagnose PostgreSQL
  sre.incident_response.pg_probe:
    report_host: "{{ inventory_hostname }}"
    service: db
    login_host: 127.0.0.1
    login_port: 5432
    login_db: app
    login_user: app
    login_password: "{{ vault_pg_password }}"
    container: app-db
    thresholds:
      long_query_seconds: 30
  register: __postgres_probe
'''

RETURN = r'''
findings:
  description: The findings pg.connectivity, pg.connections, pg.long_queries, pg.locks and pg.disk.
  returned: always
  type: list
  elements: dict
  sample:
    - check: pg.locks
      host: app-db
      service: db
      status: crit
      summary: "2 sessions blocked by pid 4242 (app report-job, active 45 s: SELECT pg_sleep(3600)); longest wait 44 s pid 4250 ..."
      evidence: {blocked_pids: [4250, 4251], blocking_pids: [4242], chains: [[4242, 4250], [4242, 4251]]}
evidence_files:
  description: File name to data for C(evidence/<host>/) (the raw pg_stat_activity and lock rows).
  returned: always
  type: dict
  sample: {pg-activity-db.json: [{pid: 4242, state: active}]}
executed_queries:
  description: The SQL the module ran (read-only).
  returned: always
  type: list
  elements: str
  sample: ["SELECT version() AS version, ..."]
'''

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.sre.incident_response.plugins.module_utils import pg_common, probe_pg
from ansible_collections.sre.incident_response.plugins.module_utils.docker_api import DockerClient, DockerError
from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import one_line

THRESHOLD_SPEC = dict(
    connections_warn_pct=dict(type='float', default=80),
    connections_crit_pct=dict(type='float', default=95),
    idle_in_transaction_warn_seconds=dict(type='float', default=30),
    idle_in_transaction_crit_count=dict(type='int', default=5),
    long_query_seconds=dict(type='float', default=30),
    long_query_crit_seconds=dict(type='float', default=300),
    lock_wait_warn_seconds=dict(type='float', default=5),
    lock_wait_crit_seconds=dict(type='float', default=30),
    blocked_sessions_warn=dict(type='int', default=3),
    disk_warn_pct=dict(type='float', default=90),
    disk_crit_pct=dict(type='float', default=95),
)
PAIRS = (('connections_warn_pct', 'connections_crit_pct'), ('long_query_seconds', 'long_query_crit_seconds'),
         ('lock_wait_warn_seconds', 'lock_wait_crit_seconds'), ('disk_warn_pct', 'disk_crit_pct'))


def thresholds_of(module):
    t = dict(module.params['thresholds'] or {})
    for key, spec in THRESHOLD_SPEC.items():
        if t.get(key) is None:
            t[key] = spec['default']
    for warn, crit in PAIRS:
        if t[warn] > t[crit]:
            module.fail_json(msg='thresholds.%s (%s) must not exceed thresholds.%s (%s)' % (warn, t[warn], crit, t[crit]))
    return t


def data_dir_usage(module, path):
    """(usage dict, error) of the data directory: in the container when given, else on this host."""
    container = module.params['container']
    if not path:
        return None, 'data directory unknown (grant pg_read_all_settings or set data_directory)'
    if container:
        try:
            client = DockerClient(module.params['docker_host'])
            rc, out, err = client.exec_run(container, ['df', '-P', '-k', path], timeout=10)
            if rc != 0:
                return None, 'df in %s: %s' % (container, one_line(err or out))
            rc2, out2, err2 = client.exec_run(container, ['df', '-P', '-i', path], timeout=10)
            usage = probe_pg.parse_df(out, out2 if rc2 == 0 else None)
            if usage:
                usage['path'] = path
                usage['read_in'] = container
            return usage, None if usage else 'cannot parse df output'
        except DockerError as exc:
            return None, 'container %s: %s' % (container, one_line(str(exc)))
    try:
        return probe_pg.statvfs_usage(path), None
    except OSError as exc:
        return None, '%s: %s' % (path, exc.strerror or exc)


def main():
    argument_spec = pg_common.pg_argument_spec()
    argument_spec.update(
        report_host=dict(type='str', required=True),
        service=dict(type='str', required=True),
        container=dict(type='str'),
        data_directory=dict(type='path'),
        thresholds=dict(type='dict', default={}, options=THRESHOLD_SPEC),
        query_chars=dict(type='int', default=500),
        docker_host=dict(type='str'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    t = thresholds_of(module)
    host, service = p['report_host'], p['service']
    if not pg_common.HAS_PSYCOPG2:  # a missing tool is a finding, not a failed play
        reason = '%s; install %s, e.g. with playbooks/prepare.yml' % (
            missing_required_lib('psycopg2').split('.')[0], pg_common.PSYCOPG2_PACKAGES)
        module.exit_json(changed=False, executed_queries=[], evidence_files={}, findings=[
            probe_pg.not_checked(c, host, service, reason)
            for c in ('pg.connectivity', 'pg.connections', 'pg.long_queries', 'pg.locks', 'pg.disk')])
    secrets = [p['login_password']]
    started = time.monotonic()
    try:
        conn = pg_common.pg_connect(p, autocommit=True, application_name='sre.incident_response pg_probe')
    except Exception as exc:  # pylint: disable=broad-except
        error = pg_common.describe_error(exc, secrets)
        findings = [probe_pg.evaluate_connectivity(host, service, None, None, error=error)]
        findings += [probe_pg.not_checked(c, host, service, 'no connection to %s:%s' % (p['login_host'], p['login_port']))
                     for c in ('pg.connections', 'pg.long_queries', 'pg.locks', 'pg.disk')]
        module.exit_json(changed=False, findings=findings, evidence_files={}, executed_queries=[])
    latency_ms = round((time.monotonic() - started) * 1000, 1)
    try:
        data = probe_pg.collect(conn, p['query_chars'])
    finally:
        conn.close()
    errors = data['errors']
    findings = [probe_pg.evaluate_connectivity(host, service, data.get('server'), latency_ms)]
    if data.get('activity') is None:
        reason = 'pg_stat_activity: %s' % errors.get('activity')
        findings += [probe_pg.not_checked(c, host, service, reason) for c in ('pg.connections', 'pg.long_queries', 'pg.locks')]
    else:
        findings.append(probe_pg.evaluate_connections(host, service, data.get('server'), data['activity'], t))
        findings.append(probe_pg.evaluate_long_queries(host, service, data['activity'], t))
        findings.append(probe_pg.evaluate_locks(host, service, data['activity'], data.get('lock_waits'), t))
    datadir = (data.get('data_directory') or {}).get('data_directory') or p['data_directory']
    fs, fs_error = data_dir_usage(module, datadir)
    findings.append(probe_pg.evaluate_disk(host, service, data.get('db_sizes'), datadir, fs, t, fs_error))
    files = {'pg-activity-%s.json' % service: data.get('activity') or [],
             'pg-locks-%s.json' % service: data.get('lock_waits') or []}
    if errors:
        files['pg-errors-%s.json' % service] = errors
    module.exit_json(changed=False, findings=findings, evidence_files=files, executed_queries=data['executed_queries'])


if __name__ == '__main__':
    main()
