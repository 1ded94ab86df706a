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
  - From the database's own catalog views, in the same connection, C(pg.replication) (replication slots with
    their retained WAL, C(pg_stat_replication) replay lag, C(pg_stat_archiver) failures in O(window)),
    C(pg.vacuum) (transaction ID age per database against 2^31, the tables with the most dead tuples and their
    last autovacuum), C(pg.temp) (temporary files and bytes since the statistics reset) and C(pg.statements)
    (the top statements by total time when C(pg_stat_statements) is installed in the probed database; not
    installed is C(ok) with a hint). Each view query has a LIMIT and reads no table.
  - A server that cannot be reached gives a C(crit) C(pg.connectivity) finding with the error in one line and
    C(unknown) for the other checks; the module itself does not fail.
  - Read-only (autocommit, no writes). Connect as a role with C(pg_monitor) to see other sessions' queries.
author: sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.pg_connection
  - sre.incident_response.attributes
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
      slot_retained_warn_bytes:
        description: WAL (bytes) an inactive replication slot retains that makes C(pg.replication) C(warn).
        type: int
        default: 1073741824
      slot_retained_crit_bytes:
        description: WAL (bytes) an inactive replication slot retains that makes C(pg.replication) C(crit).
        type: int
        default: 10737418240
      replica_lag_warn_seconds:
        description: A replica's replay lag (C(pg_stat_replication)) that makes C(pg.replication) C(warn).
        type: float
        default: 60
      replica_lag_crit_seconds:
        description: A replica's replay lag that makes C(pg.replication) C(crit).
        type: float
        default: 300
      xid_age_warn_pct:
        description: Transaction ID age of the oldest database (percent of 2^31, wraparound) that makes C(pg.vacuum) C(warn).
        type: float
        default: 50
      xid_age_crit_pct:
        description: Transaction ID age of the oldest database (percent of 2^31) that makes C(pg.vacuum) C(crit).
        type: float
        default: 75
      temp_bytes_warn:
        description: Temporary file bytes of a database since its statistics reset that make C(pg.temp) C(warn).
        type: int
        default: 107374182400
      vacuum_dead_tuples_warn:
        description: Dead tuples of a table that, with an xmin horizon holder past C(vacuum_xmin_holder_warn_seconds),
          make C(pg.vacuum) C(warn) (vacuum held back).
        type: int
        default: 100000
      vacuum_xmin_holder_warn_seconds:
        description: Age of the session or prepared transaction holding the xmin horizon (an inactive slot always counts)
          that, with a table past C(vacuum_dead_tuples_warn), makes C(pg.vacuum) C(warn).
        type: float
        default: 300
  query_chars:
    description: Characters of each query kept in the evidence.
    type: int
    default: 500
  docker_host:
    description: Docker engine socket (C(unix://...)); defaults to C(DOCKER_HOST) or C(/var/run/docker.sock).
    type: str
  log_check:
    description:
      - Check C(pg.log) - the server's FATAL, ERROR and PANIC lines of O(window) grouped by kind (authentication
        failures by role and client, too many connections, deadlocks, out of memory, disk full, checkpoints too
        frequent). Needs no connection.
      - Read from the container's log through the engine when O(container) is set, else from O(log_file), else
        from the newest C(*.log) of C(/var/log/postgresql) (Debian). An unreadable log is an C(unknown) finding.
    type: bool
    default: true
  window:
    description: The incident window (C(15m)) of C(pg.log).
    type: str
    default: 15m
  log_file:
    description: The server's log file on the host (relative paths are relative to O(data_directory)).
    type: path
  log_max_bytes:
    description: At most this many bytes of the end of the log file are read.
    type: int
    default: 8388608
  client:
    description:
      - How the queries reach the server. C(library) is psycopg2 in the module's Python; C(cli) runs the same
        queries through C(psql) (package C(postgresql-client)), the password in the child's C(PGPASSWORD) only,
        never on its command line; C(auto) uses the library when it imports, else C(psql).
      - Every finding says which in C(evidence.client). With neither on the host the area gives one C(unknown)
        C(pg.connectivity) finding naming both packages instead of one per check.
    type: str
    choices: [auto, library, cli]
    default: auto
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
  action_group:
    description: Set its connection options with C(module_defaults) and C(group/sre.incident_response.postgresql),
      and C(docker_host) with C(group/sre.incident_response.docker).
    support: full
    membership:
      - sre.incident_response.postgresql
      - sre.incident_response.docker
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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.incident_response.plugins.module_utils.areas import postgres as area


def main():
    module = AnsibleModule(argument_spec=area.SPEC, supports_check_mode=True)
    module.exit_json(**area.run(module))


if __name__ == '__main__':
    main()
