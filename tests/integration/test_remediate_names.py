"""remediate.yml takes `-e remediation_action=...`; the old `-e action=...`, a reserved name in Ansible ("Found
variable using reserved name 'action'"), still works for one release, says once that it is deprecated and
records that in the incident's timeline (issue 19).

Real playbook, real lab, plans only: nothing changes on the lab, so no fault and no lab lock.
tests/unit/test_reserved_names.py checks every command the collection prints or documents.
"""
import json
import os
import subprocess

import pytest

PLAYBOOK = 'playbooks/remediate.yml'
ONCALL = {'ANSIBLE_STDOUT_CALLBACK': 'sre.incident_response.oncall'}
DEFAULT = {'ANSIBLE_STDOUT_CALLBACK': 'ansible.builtin.default'}


def events(incident, kind):
    path = os.path.join(incident['path'], 'timeline.jsonl')
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [e for e in (json.loads(line) for line in handle if line.strip()) if e['kind'] == kind]


def started_at(container):
    return subprocess.run(['docker', 'inspect', '-f', '{{.State.StartedAt}}', container],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize('env', [DEFAULT, ONCALL], ids=['default', 'oncall'])
def test_the_new_name_plans_without_a_reserved_name_warning(lab, run_playbook, incident, lab_env, env):
    before = started_at(lab_env.backend)
    res = run_playbook(PLAYBOOK, dict(incident['vars'], remediation_action='restart', service='backend'), env=env)
    assert res.rc == 0, res
    assert 'PLAN restart on backend' in res.stdout, res
    output = res.stdout + res.stderr
    assert 'reserved name' not in output and 'DEPRECATED' not in output, res
    plans = events(incident, 'plan')
    assert len(plans) == 1 and plans[0]['data']['action'] == 'restart', plans
    assert [e for e in events(incident, 'note') if e['data'].get('deprecated')] == []
    assert started_at(lab_env.backend) == before, 'a plan restarted the backend'


@pytest.mark.parametrize('env', [DEFAULT, ONCALL], ids=['default', 'oncall'])
def test_the_old_name_still_plans_and_says_once_that_it_is_deprecated(lab, run_playbook, incident, lab_env, env):
    before = started_at(lab_env.backend)
    res = run_playbook(PLAYBOOK, dict(incident['vars'], action='restart', service='backend'), env=env)
    assert res.rc == 0, res
    assert 'PLAN restart on backend' in res.stdout, res
    said = [line for line in res.stdout.splitlines() if 'DEPRECATED: -e action=restart' in line]
    assert len(said) == 1 and '-e remediation_action=restart' in said[0], res
    notes = [e for e in events(incident, 'note') if e['data'].get('deprecated') == 'action']
    assert len(notes) == 1, notes
    assert notes[0]['data']['use'] == 'remediation_action' and '-e remediation_action=restart' in notes[0]['summary']
    plans = events(incident, 'plan')
    assert len(plans) == 1 and plans[0]['data']['action'] == 'restart', plans
    assert started_at(lab_env.backend) == before, 'a plan restarted the backend'


def test_the_two_names_disagreeing_are_refused_before_anything(lab, run_playbook, incident):
    res = run_playbook(PLAYBOOK, dict(incident['vars'], remediation_action='restart', action='kill_query'))
    assert res.rc != 0, res
    assert 'the deprecated -e action disagree; give only -e remediation_action' in res.stdout, res
    assert events(incident, 'plan') == [] and events(incident, 'approval') == []
