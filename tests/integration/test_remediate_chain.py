"""Finish the job, against the real lab: a lock chain ended by one approved kill_query, and two faults at once.

db_lock_chain: A holds orders; B holds products in an open transaction and waits for orders; C waits for
products. Triage pins kill_query to the root (A). Ending A alone lets B take orders and keep products: C stays
blocked. The plan must end A and B (the whole chain, shown as a tree) and leave C to proceed.

Two faults: Redis down and db_lock. kill_query ends the lock (its own symptom, pg.locks, is gone: VERIFIED),
health stays bad because of Redis, and the console names the next action: restart redis.
"""
import json
import os
import shlex

import psycopg2
from conftest import docker
from test_remediate import assert_applied, events, recap_changed

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files

CHAIN = ('chain-holder-a', 'chain-holder-b', 'chain-waiter-c')
APPROVAL = {'apply': True, 'approved_by': 'alice', 'approval_reason': 'integration test'}


def pg(lab_env, sql):
    conn = psycopg2.connect(host='127.0.0.1', port=lab_env.db_port, dbname='app', user='app',
                            password=lab_env.pg_password, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def chain_sessions(lab_env):
    rows = pg(lab_env, "SELECT application_name, pid, state, pg_blocking_pids(pid) FROM pg_stat_activity "
                       "WHERE application_name IN ('chain-holder-a', 'chain-holder-b', 'chain-waiter-c')")
    return dict((r[0], {'pid': r[1], 'state': r[2], 'blocked_by': list(r[3])}) for r in rows)


def printed_vars(command):
    """The -e k=v pairs of the printed first action."""
    argv = shlex.split(command)
    assert argv[1] == 'playbooks/remediate.yml', command
    return dict(argv[i + 1].split('=', 1) for i, arg in enumerate(argv) if arg == '-e')


def triage(run_playbook, incident):
    res = run_playbook('playbooks/triage.yml', incident['vars'], timeout=400)
    assert res.rc == 0, res
    return files.read_json(os.path.join(incident['path'], 'diagnosis.json'))


def test_one_kill_query_ends_the_whole_lock_chain(fault, run_playbook, incident, lab_env):
    with fault('db_lock_chain'):
        before = chain_sessions(lab_env)
        assert before['chain-waiter-c']['blocked_by'] == [before['chain-holder-b']['pid']]
        assert before['chain-holder-b']['blocked_by'] == [before['chain-holder-a']['pid']]
        a, b = before['chain-holder-a']['pid'], before['chain-holder-b']['pid']

        diag = triage(run_playbook, incident)
        top = diag['hypotheses'][0]
        assert top['action'] == 'kill_query', top
        ev = printed_vars(top['first_action'])
        assert ev['pg_terminate_pids'] == str(a), 'triage pins the root of the chain'
        ev.update(incident['vars'], pg_terminate_grace_period='2')

        plan = run_playbook('playbooks/remediate.yml', ev)
        assert plan.rc == 0, plan
        planned = events(incident, 'plan')[-1]['data']
        assert sorted(t['pid'] for t in planned['plan']['targets']) == sorted([a, b]), planned
        assert 'lock tree' in plan.stdout and '* pid %d ' % a in plan.stdout and '* pid %d ' % b in plan.stdout, plan
        assert '- pid %d ' % before['chain-waiter-c']['pid'] in plan.stdout, 'the tree shows the waiter'
        assert chain_sessions(lab_env) == before, 'the plan changed sessions'

        applied = run_playbook('playbooks/remediate.yml', dict(ev, **APPROVAL))
        act = assert_applied(applied, incident, 'kill_query', ['pg.locks'])
        assert sorted(t['pid'] for t in act['data']['result']['targets']) == sorted([a, b])
        after = chain_sessions(lab_env)
        assert 'chain-holder-a' not in after and 'chain-holder-b' not in after, after
        assert after.get('chain-waiter-c', {}).get('blocked_by', []) == [], 'C is still blocked: %s' % after
        # products and orders are free again: an update with a short lock timeout goes through
        pg(lab_env, "SET lock_timeout = '2s'; UPDATE products SET price = price WHERE id = 1; "
                    "UPDATE orders SET note = note WHERE id = 1")

        again = run_playbook('playbooks/remediate.yml', dict(ev, **APPROVAL))
        assert again.rc == 0, again
        assert recap_changed(again, 'app-db') == 0
        assert events(incident, 'action')[-1]['data']['changed'] is False


def test_two_faults_the_lock_then_the_next_action(fault, run_playbook, incident, lab_env):
    with fault('db_lock'):
        docker('stop', '-t', '2', lab_env.redis)
        try:
            diag = triage(run_playbook, incident)
            actions = [(h['action'], h['service']) for h in diag['hypotheses'] if h.get('action')]
            assert ('kill_query', 'db') in actions and ('restart', 'redis') in actions, actions
            ev = dict(incident['vars'], remediation_action='kill_query', service='db', pg_terminate_min_age='1',
                      pg_terminate_grace_period='2', **APPROVAL)
            applied = run_playbook('playbooks/remediate.yml', ev)
            # the lock is the action's own symptom: it is gone, so the kill is VERIFIED although health is still bad
            assert_applied(applied, incident, 'kill_query', ['pg.locks'])
            assert pg(lab_env, "SELECT count(*) FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0") == [(0,)]
            verify = [e for e in events(incident, 'verify') if e['data']['action'] == 'kill_query'][-1]
            assert verify['data']['status'] == 'ok'
            assert verify['data']['next'] and 'remediation_action=restart' in verify['data']['next'], verify
            assert 'service=redis' in verify['data']['next'], verify
            out = applied.stdout
            assert 'NEXT' in out and 'remediation_action=restart' in out and 'service=redis' in out, out
            assert json.dumps(verify).count('remediation_action=kill_query') == 0, 'the next action is not the same one'
        finally:
            docker('start', lab_env.redis)
