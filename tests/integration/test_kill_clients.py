"""kill_clients (issue 21) on the lab's redis_maxclients fault: the plan, and --check with apply=true, change nothing.

The first action triage prints (-e remediation_action=kill_clients with the holder's pid) run without an approval and
again in check mode with one: both print the plan (the batch-report connections, selected by pid) and leave every
connection of the holder in place, the server still refusing new connections. The apply itself is
test_resolution.py (RESOLUTION_FAULTS=redis_maxclients)."""
import os

import pytest
import redis

from ansible_collections.sre.incident_response.plugins.module_utils import host_sockets
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files

from conftest import LabEnv as L, heal, inject, lab_lock  # noqa: E402
from test_resolution import first_action_vars  # noqa: E402


def held():
    """The holder's connections to Redis, from this host's sockets: {pid: connections}."""
    out = host_sockets.holders_of_port(L.redis_port)
    return dict((h['pid'], h['connections']) for h in out['holders'] if 'batch-report' in (h.get('process') or ''))


def refused():
    with pytest.raises(redis.ConnectionError, match='max number of clients reached'):
        redis.Redis(host='127.0.0.1', port=L.redis_port, password=L.redis_password, socket_timeout=5).ping()
    return True


def test_the_plan_of_kill_clients_changes_nothing(lab, run_playbook, incident):
    with lab_lock():
        inject('redis_maxclients')
        try:
            res = run_playbook('playbooks/triage.yml', dict(incident['vars']), timeout=400)
            assert res.rc == 0, res
            top = files.read_json(os.path.join(incident['path'], 'diagnosis.json'))['hypotheses'][0]
            assert top['action'] == 'kill_clients', top
            playbook, ev = first_action_vars(top['first_action'])
            before = held()
            assert before and sum(before.values()) >= 20 and refused(), before
            assert sorted(before) == [int(p) for p in ev['redis_kill_clients_pids'].split(',')], (before, ev)
            plan = run_playbook(playbook, dict(ev, **incident['vars']), timeout=400)
            assert plan.rc == 0, plan
            assert 'PLAN kill_clients on redis' in plan.stdout and 'mode: plan only' in plan.stdout, plan
            assert 'ss -K' in plan.stdout and 'batch-report' in plan.stdout, plan
            assert held() == before and refused()
            checked = run_playbook(playbook, dict(ev, apply=True, approved_by='second-approver',
                                                  approval_reason='check mode only', **incident['vars']),
                                   check=True, timeout=400)
            assert checked.rc == 0 and 'mode: plan only' in checked.stdout, checked
            assert held() == before and refused()
            kinds = [e['kind'] for e in files.read_jsonl(os.path.join(incident['path'], 'timeline.jsonl'))]
            assert 'plan' in kinds and 'action' not in kinds and 'verify' not in kinds, kinds
        finally:
            heal('redis_maxclients')
