"""Every external message is sent exactly once (issue 10): two truly concurrent triage runs with the same incident
id (an AWX retry, a second responder) post INCIDENT DECLARED, create the status page incident and page once.

Two ansible-playbook processes run at the same time against the lab and the 127.0.0.1 receiver of
test_comms_delivery.py; each message kind is claimed in the incident store under its lock before it is sent.
"""
import threading

from test_comms_delivery import comms_vars

PD_KEYS = 2  # SEV1 pages on-call and the engineering manager


def test_two_concurrent_triage_runs_send_one_of_each_message(lab, run_playbook, incident, receiver):
    extra = comms_vars(incident, receiver, severity='SEV1', title='Orders API returns 500')
    results = [None, None]

    def triage(index):
        results[index] = run_playbook('playbooks/triage.yml', extra, timeout=600)

    threads = [threading.Thread(target=triage, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for res in results:
        assert res.rc == 0, res

    slack = [r['json']['text'] for r in receiver.by_path('/services/')]
    declared = [t for t in slack if 'INCIDENT DECLARED' in t]
    updates = [t for t in slack if 'INCIDENT UPDATE' in t]
    assert len(declared) == 1, slack
    assert len(updates) <= 1, slack  # a run that started after the declaration may update once, never twice
    sp = receiver.by_path('/sp/')
    assert [r['method'] for r in sp] == ['POST'], sp
    events = sorted(r['json']['event'] for r in receiver.by_path('/hook/'))
    assert events.count('incident.declared') == 1 and events.count('incident.statuspage') == 1, events
    assert events.count('incident.update') <= 1, events
    pd = receiver.by_path('/pd/')
    assert len(pd) == PD_KEYS and all(p['json']['event_action'] == 'trigger' for p in pd), pd
    assert len({p['json']['routing_key'] for p in pd}) == PD_KEYS
    assert any('not sent again' in res.stdout for res in results) or len(updates) == 1
