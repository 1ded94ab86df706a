"""Four eyes cannot be talked around (issue 10): the launcher is who runs the playbook, never an extra var.

`-e remediation_launcher=mallory -e approved_by=<the OS user>` is refused for the destructive actions
(flush_keys, kill_query) before anything changes; the refusal names the ignored variable.
"""
import json
import os
import uuid

import pytest
import redis

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.incident_approval import os_identity

LAUNCHER = os_identity()['launcher']


def _events(incident, kind):
    path = os.path.join(incident['path'], 'timeline.jsonl')
    out = [json.loads(line) for line in open(path) if line.strip()] if os.path.exists(path) else []
    return [e for e in out if e['kind'] == kind]


@pytest.mark.parametrize('action', ['flush_keys', 'kill_query'])
def test_extra_var_launcher_cannot_approve_own_destructive_action(exclusive_lab, run_playbook, incident, action):
    client = redis.Redis(host='127.0.0.1', port=exclusive_lab.redis_port, password=exclusive_lab.redis_password,
                         decode_responses=True)
    marker = 'cache:four-eyes:%s' % uuid.uuid4().hex[:8]
    client.set(marker, 'x' * 1024)
    try:
        res = run_playbook('playbooks/remediate.yml', dict(
            incident['vars'], remediation_action=action, apply=True, approved_by=LAUNCHER, approval_reason='self-approval attempt',
            remediation_launcher='mallory'), timeout=300)
        assert res.rc != 0, res
        assert 'four-eyes rule' in res.stdout, res
        assert '-e remediation_launcher=mallory ignored: the launcher is %s' % LAUNCHER in res.stdout, res
        refused = [e for e in _events(incident, 'approval') if e['data'].get('decision') == 'refused']
        assert refused and refused[-1]['data']['launcher'] == LAUNCHER, refused
        assert _events(incident, 'action') == [], 'something was applied'
        assert client.exists(marker) == 1, 'an evictable key was removed by a refused run'
    finally:
        client.delete(marker)


def test_self_approval_from_the_command_line_is_ignored(exclusive_lab, run_playbook, incident):
    res = run_playbook('playbooks/remediate.yml', dict(
        incident['vars'], remediation_action='flush_keys', apply=True, approved_by=LAUNCHER, approval_reason='policy by -e',
        remediation_allow_self_approval=True), timeout=300)
    assert res.rc != 0, res
    assert 'four-eyes rule' in res.stdout and 'remediation_allow_self_approval ignored' in res.stdout, res
    assert _events(incident, 'action') == []
