# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The postgres area of the probes: its argument spec (SPEC) and run(module).

Shared by the module sre.incident_response.pg_probe (one area) and the module probe (every area of a host,
concurrently). run() takes an AnsibleModule or the probe's per-area view of one
(params, run_command, get_bin_path, fail_json) and returns the module result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.sre.incident_response.plugins.module_utils import pg_common, probe_pg
from ansible_collections.sre.incident_response.plugins.module_utils.docker_api import DockerClient, DockerError
from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import one_line, thresholds_of
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor

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


SPEC = pg_common.pg_argument_spec()
SPEC.update(
    report_host=dict(type='str', required=True),
    service=dict(type='str', required=True),
    container=dict(type='str'),
    data_directory=dict(type='path'),
    thresholds=dict(type='dict', default={}, options=THRESHOLD_SPEC),
    query_chars=dict(type='int', default=500),
    docker_host=dict(type='str'),
)


def run(module):
    """The area's result, scrubbed of the login password as keys and values (AnsibleModule's no_log scrubs values
    only, and application names and queries are the sessions' own text)."""
    return Redactor(literals=[module.params.get('login_password')]).data(_run(module))


def _run(module):
    p = module.params
    t = thresholds_of(module, THRESHOLD_SPEC, PAIRS)
    host, service = p['report_host'], p['service']
    if not pg_common.HAS_PSYCOPG2:  # a missing tool is a finding, not a failed play
        reason = '%s; install %s, e.g. with playbooks/prepare.yml' % (
            missing_required_lib('psycopg2').split('.')[0], pg_common.PSYCOPG2_PACKAGES)
        return dict(changed=False, executed_queries=[], evidence_files={}, findings=[
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
        return dict(changed=False, findings=findings, evidence_files={}, executed_queries=[])
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
    return dict(changed=False, findings=findings, evidence_files=files, executed_queries=data['executed_queries'])
