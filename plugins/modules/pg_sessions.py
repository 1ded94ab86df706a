#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: pg_sessions
short_description: List, cancel or terminate PostgreSQL sessions that match strict filters
version_added: 0.1.0
description:
  - Lists the sessions of C(pg_stat_activity) that match the filters (the plan), and with O(state=cancel)
    cancels their queries, with O(state=terminate) cancels them, waits O(grace_period) seconds and terminates
    the ones still in the same transaction or query. Re-lists afterwards.
  - Never a target, whatever the filters say - the module's own session, non-client backends (autovacuum,
    walsender/replication, logical replication and other background workers), superusers unless
    O(allow_superuser), and sessions that only wait for a lock (they proceed once the blocker is gone).
  - Check mode is honest - it lists the targets and executes nothing (unlike C(postgresql_query), which runs
    its query even in check mode).
  - The connecting role needs C(pg_signal_backend) (or superuser) to signal other roles' sessions and
    C(pg_monitor) to see their queries.
author: sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.pg_connection
  - sre.incident_response.attributes
  - sre.incident_response.attributes.idempotent
  - sre.incident_response.attributes.actiongroup_postgresql
options:
  state:
    description:
      - C(plan) lists the targets only, C(cancel) cancels their queries, C(terminate) terminates them (cancel first,
        then terminate).
      - C(list) is the former name of C(plan); the action still accepts it, with a deprecation warning.
    type: str
    default: plan
    choices: [plan, cancel, terminate]
  roles:
    description: Only sessions of these roles (the application roles). Required for O(state=cancel) and O(state=terminate).
    type: list
    elements: str
    default: []
  databases:
    description: Only sessions connected to these databases (all when empty).
    type: list
    elements: str
    default: []
  states:
    description: Session states to select.
    type: list
    elements: str
    default: [active, idle in transaction, idle in transaction (aborted)]
  min_age:
    description: Seconds a transaction (or, outside one, the query) must have lasted.
    type: float
    default: 30
  application_names:
    description: Shell patterns of C(application_name) to select (all when empty).
    type: list
    elements: str
    default: []
  exclude_application_names:
    description: Shell patterns of C(application_name) never to touch.
    type: list
    elements: str
    default: []
  pids:
    description:
      - Restrict to these PIDs (e.g. the PIDs of an approved plan, or the lock holders triage named).
      - A pinned PID stands for its lock chain. Every session of the same blocking tree (C(pg_blocking_pids)) that
        blocks another session is selected too, up to the root. That covers a holder in an open transaction that
        itself waits. The other filters still apply (roles, superusers, age).
    type: list
    elements: int
    default: []
  include_blockers:
    description: Select a session that blocks others even when its state is not in O(states) (never when C(idle)).
    type: bool
    default: true
  include_waiting:
    description: Also select sessions that only wait for a lock.
    type: bool
    default: false
  allow_superuser:
    description: Allow superuser sessions to be targets.
    type: bool
    default: false
  cancel_first:
    description: With O(state=terminate), cancel the query first and terminate only what is still there after O(grace_period).
    type: bool
    default: true
  grace_period:
    description: Seconds between cancel and terminate.
    type: float
    default: 5
attributes:
  check_mode:
    support: full
    details: Lists the targets; no cancel or terminate is executed.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A second run finds no targets and reports no change.
requirements:
  - psycopg2
'''

EXAMPLES = r'''
- name: Plan - which app sessions would be terminated
  sre.incident_response.pg_sessions:
    login_port: 5432
    login_user: app
    login_password: "{{ lookup('ansible.builtin.vars', 'vault_pg_password') }}"
    login_db: app
    roles: [app]
    min_age: 60
  register: plan

- name: Terminate exactly the approved sessions
  sre.incident_response.pg_sessions:
    login_user: app
    login_password: "{{ lookup('ansible.builtin.vars', 'vault_pg_password') }}"
    login_db: app
    state: terminate
    roles: [app]
    pids: "{{ plan.targets | map(attribute='pid') | list }}"
'''

RETURN = r'''
targets:
  description: The sessions that matched (before anything was done).
  returned: always
  type: list
  elements: dict
  sample: [{pid: 4242, usename: app, datname: app, application_name: report-job, state: active, age: 95.2,
            blocking: [4250, 4251], blocked_by: [], query: SELECT pg_sleep(3600)}]
excluded:
  description: Sessions not selected, each with a C(reason) (other role, background worker, own session, ...).
  returned: always
  type: list
  elements: dict
  sample: [{pid: 4300, usename: analyst, reason: role analyst not in app}]
cancelled:
  description: PIDs whose query was cancelled.
  returned: always
  type: list
  elements: int
  sample: [4242]
terminated:
  description: PIDs terminated after the grace period.
  returned: always
  type: list
  elements: int
  sample: [4242]
remaining:
  description: Targets still present after the action (should be empty).
  returned: always
  type: list
  elements: dict
  sample: []
after:
  description: Sessions matching the filters after the action (the re-list).
  returned: always
  type: list
  elements: dict
  sample: []
plan:
  description:
    - One line per target, for people.
    - With targets in a lock chain, the whole blocking tree follows. A V(*) marks a session the plan ends; the
      sessions that only wait proceed once their blockers are gone.
    - With no target, V(nothing to do) and the sessions that look like the cause but were left out (blockers, sessions
      younger than O(min_age)) with the reason, so the plan says before apply that it will change nothing.
  returned: always
  type: list
  elements: str
  sample: ["pid 4242 user=app db=app app=report-job state=active age=95s blocking=[4250] query=SELECT pg_sleep(3600)"]
executed_queries:
  description: The signalling statements run (none in check mode or with O(state=plan)).
  returned: always
  type: list
  elements: str
  sample: ["SELECT pg_cancel_backend(4242)"]
'''

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.sre.incident_response.plugins.module_utils import pg_common
from ansible_collections.sre.incident_response.plugins.module_utils import remediation_pg as logic


def fetch(conn):
    cur = conn.cursor(cursor_factory=pg_common.psycopg2.extras.RealDictCursor)
    cur.execute(logic.SESSIONS_SQL)
    rows = [dict(r) for r in cur.fetchall()]
    cur.close()
    return logic.annotate(rows)


def main():
    spec = pg_common.pg_argument_spec()
    spec.update(
        state=dict(type='str', default='plan', choices=['plan', 'cancel', 'terminate']),
        roles=dict(type='list', elements='str', default=[]),
        databases=dict(type='list', elements='str', default=[]),
        states=dict(type='list', elements='str', default=list(logic.DEFAULT_STATES)),
        min_age=dict(type='float', default=30.0),
        application_names=dict(type='list', elements='str', default=[]),
        exclude_application_names=dict(type='list', elements='str', default=[]),
        pids=dict(type='list', elements='int', default=[]),
        include_blockers=dict(type='bool', default=True),
        include_waiting=dict(type='bool', default=False),
        allow_superuser=dict(type='bool', default=False),
        cancel_first=dict(type='bool', default=True),
        grace_period=dict(type='float', default=5.0),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    if not pg_common.HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib('psycopg2'), exception=pg_common.PSYCOPG2_IMPORT_ERROR)
    if p['state'] != 'plan' and not p['roles']:
        module.fail_json(msg='roles is required to cancel or terminate sessions (the application roles, e.g. [app])')
    secrets = [p.get('login_password')]
    filters = dict(roles=p['roles'], databases=p['databases'], states=p['states'], min_age=p['min_age'],
                   application_names=p['application_names'], exclude_application_names=p['exclude_application_names'],
                   pids=p['pids'], include_blockers=p['include_blockers'], allow_superuser=p['allow_superuser'],
                   include_waiting=p['include_waiting'])
    result = dict(changed=False, targets=[], excluded=[], cancelled=[], terminated=[], remaining=[], after=[],
                  plan=[], executed_queries=[], filters=filters)
    try:
        conn = pg_common.pg_connect(p, autocommit=True, application_name='sre.incident_response.pg_sessions')
    except Exception as exc:
        module.fail_json(msg='cannot connect to PostgreSQL: %s' % pg_common.describe_error(exc, secrets), **result)
    try:
        targets, skipped = logic.select_sessions(fetch(conn), **filters)
        result['targets'] = [logic.public(r) for r in targets]
        result['excluded'] = [logic.public(r) for r in skipped]
        result['plan'] = ([logic.plan_line(r) for r in result['targets']]
                          + logic.tree_lines(result['targets'] + result['excluded'], result['targets']) if targets
                          else logic.no_target_lines(result['excluded']))
        if p['state'] == 'plan' or not targets:
            module.exit_json(**result)
        result['changed'] = True
        if module.check_mode:
            module.exit_json(**result)
        cur = conn.cursor()
        wanted = dict((logic.identity(r), r['pid']) for r in targets)

        def still_there():
            rows = fetch(conn)
            return [r for r in rows if logic.identity(r) in wanted]

        if p['state'] == 'cancel' or p['cancel_first']:
            for r in targets:
                sql = 'SELECT pg_cancel_backend(%d)' % int(r['pid'])
                cur.execute(sql)
                result['executed_queries'].append(sql)
                result['cancelled'].append(r['pid'])
            if p['state'] == 'terminate':
                deadline = time.time() + max(0.0, p['grace_period'])
                while time.time() < deadline and still_there():
                    time.sleep(0.5)
        if p['state'] == 'terminate':
            for r in still_there():
                sql = 'SELECT pg_terminate_backend(%d)' % int(r['pid'])
                cur.execute(sql)
                result['executed_queries'].append(sql)
                result['terminated'].append(r['pid'])
        deadline = time.time() + 5.0
        remaining = still_there()
        while remaining and time.time() < deadline and p['state'] == 'terminate':
            time.sleep(0.3)
            remaining = still_there()
        result['remaining'] = [logic.public(r) for r in remaining]
        relist = dict(filters)
        relist['pids'] = []
        after, dummy = logic.select_sessions(fetch(conn), **relist)
        result['after'] = [logic.public(r) for r in after]
        cur.close()
    except Exception as exc:
        module.fail_json(msg='pg_sessions failed: %s' % pg_common.describe_error(exc, secrets), **result)
    finally:
        conn.close()
    module.exit_json(**result)


if __name__ == '__main__':
    main()
