"""The run that loses a delivery claim says so (issue 18): not "deliveries: none configured".

Exactly once (test_comms_exactly_once.py): each message is claimed in the incident store before it is sent, and a
run that finds it claimed by another run, or already sent, sends nothing. That run used to print
`Channel #incidents; deliveries: none configured (files only)` - false, with Slack, the webhook and PagerDuty
configured. Here the other run's claim is put in the real store (IncidentStore.claim_deliveries, as a concurrent run
does), then the real playbook runs with the real receiver; its output is read through the default callback and
through the on-call console (the collection's stdout callback, which shows only the `Channel` line).
"""
import os
import re

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files
from test_comms_delivery import comms_vars, declare

ANNOUNCE = '''---
- name: Declare and announce
  hosts: all
  gather_facts: false
  roles:
    - role: sre.incident_response.incident
  tasks:
    - name: Announce
      ansible.builtin.include_role:
        name: sre.incident_response.comms
      vars:
        comms_kinds: [declared]
'''
CONSOLES = {'default': {}, 'oncall': {'ANSIBLE_STDOUT_CALLBACK': 'sre.incident_response.oncall'}}


def channel_lines(stdout):
    return [line.strip().strip('",') for line in stdout.splitlines() if 'Channel #' in line]


@pytest.mark.parametrize('console', sorted(CONSOLES))
def test_a_run_that_loses_the_claim_says_who_sends_it(run_playbook, incident, receiver, tmp_path, console):
    declare(incident, 'SEV1')
    playbook = tmp_path / 'announce.yml'
    playbook.write_text(ANNOUNCE)
    extra = comms_vars(incident, receiver)

    # another run holds the claim of INCIDENT DECLARED (it is sending it right now)
    claimed = IncidentStore.of_path(incident['path']).claim_deliveries(['declared'], 'the-other-run', files.utcnow())
    assert claimed['declared'][0] == 'claimed'
    busy = run_playbook(str(playbook), extra, timeout=120, env=CONSOLES[console])
    assert busy.rc == 0, busy
    assert receiver.requests == [], 'the losing run sends nothing'
    lines = channel_lines(busy.stdout)
    assert lines, busy
    assert 'none configured' not in busy.stdout, lines
    assert any('deliveries: none by this run: declared claimed by a concurrent run at '
               in line and 'which sends it' in line for line in lines), lines

    # the other run has sent it: a later run says so
    IncidentStore.of_path(incident['path']).settle_deliveries(
        {'declared': {'slack': True, 'webhook': True}}, 'the-other-run', files.utcnow())
    sent = run_playbook(str(playbook), extra, timeout=120, env=CONSOLES[console])
    assert sent.rc == 0, sent
    assert receiver.requests == []
    lines = channel_lines(sent.stdout)
    assert 'none configured' not in sent.stdout, lines
    assert any('deliveries: none by this run: declared already sent at ' in line for line in lines), lines
    assert not os.listdir(os.path.join(incident['path'], 'messages')), 'a message another run owns is not filed twice'


def test_a_run_that_loses_one_claim_reports_both_what_it_sent_and_what_it_left(
        run_playbook, incident, receiver, tmp_path):
    declare(incident, 'SEV1')
    playbook = tmp_path / 'announce.yml'
    playbook.write_text(ANNOUNCE.replace('comms_kinds: [declared]', 'comms_kinds: [declared, ticket]'))
    IncidentStore.of_path(incident['path']).claim_deliveries(['declared'], 'the-other-run', files.utcnow())
    res = run_playbook(str(playbook), comms_vars(incident, receiver), timeout=120)
    assert res.rc == 0, res
    assert [r['json']['event'] for r in receiver.by_path('/hook/')] == ['incident.ticket']
    lines = channel_lines(res.stdout)
    assert any(re.search(r'deliveries: slack ok; webhook ok; not sent again: declared claimed by a concurrent run at '
                         r'\S+, which sends it', line) for line in lines), lines


def test_files_only_still_says_none_configured(run_playbook, incident, tmp_path):
    """Nothing configured and nothing lost to another run: the old line stays true."""
    declare(incident, 'SEV3')
    playbook = tmp_path / 'announce.yml'
    playbook.write_text(ANNOUNCE)
    res = run_playbook(str(playbook), dict(incident['vars']), timeout=120)
    assert res.rc == 0, res
    assert any('deliveries: none configured (files only)' in line for line in channel_lines(res.stdout)), res
