"""Unit tests of the alert -> incident mapping (module_utils/alerts.py): one incident per alert group,
re-sends append, throttling, the Resolved draft, label mapping, and concurrent runs."""
import datetime
import json
import multiprocessing
import os

import pytest

from ansible_collections.sre.incident_response.plugins.module_utils import alerts as a
from ansible_collections.sre.incident_response.plugins.module_utils import incident_files as f

NOW = datetime.datetime(2026, 12, 1, 3, 12, tzinfo=datetime.timezone.utc)
HOSTS = {
    'app-backend': [{'name': 'backend', 'depends_on': ['db', 'redis', 'payments']},
                    {'name': 'proxy', 'depends_on': ['backend']}],
    'app-db': [{'name': 'db'}],
    'app-redis': [{'name': 'redis'}],
    'other': [{'name': 'batch'}],
}


def event(status='firing', fingerprint='f1', group='{}:{service="backend"}', alertname='BackendDown',
          service='backend', severity='critical', **labels):
    lab = {'alertname': alertname, 'severity': severity}
    if service:
        lab['service'] = service
    lab.update(labels)
    return {'group_key': group, 'group_status': status,
            'alert': {'status': status, 'fingerprint': fingerprint, 'labels': lab,
                      'annotations': {'summary': 'backend app-backend is down',
                                      'runbook_url': 'docs/runbooks/backend-runbook.md'},
                      'startsAt': '2026-12-01T03:11:40Z', 'endsAt': '', 'generatorURL': ''}}


def timeline(path):
    return f.read_jsonl(os.path.join(path, 'timeline.jsonl'))


def later(minutes):
    return NOW + datetime.timedelta(minutes=minutes)


def test_first_firing_alert_declares_one_incident_and_triages(tmp_path):
    out = a.intake(event(), incident_dir=str(tmp_path), hosts_services=HOSTS, now=NOW)
    assert out['created'] is True and out['triage'] is True and out['draft_resolved'] is False
    incident = f.read_json(os.path.join(out['incident_path'], 'incident.json'))
    assert incident['title'] == 'BackendDown: backend app-backend is down'
    assert incident['severity'] == 'SEV2'  # critical -> SEV2
    assert incident['services'] == ['backend']
    kinds = [e['kind'] for e in timeline(out['incident_path'])]
    assert kinds == ['declared', 'severity', 'note']
    note = timeline(out['incident_path'])[-1]
    assert note['data']['group_key'] == '{}:{service="backend"}' and note['data']['fingerprint'] == 'f1'
    assert note['data']['labels']['alertname'] == 'BackendDown' and note['data']['status'] == 'firing'
    assert a.group_incidents(str(tmp_path)) == {'{}:{service="backend"}': out['incident_id']}


def test_resend_and_second_alert_of_the_group_append_to_the_same_incident(tmp_path):
    first = a.intake(event(), incident_dir=str(tmp_path), hosts_services=HOSTS, now=NOW)
    resend = a.intake(event(), incident_dir=str(tmp_path), hosts_services=HOSTS, now=later(1))
    other = a.intake(event(fingerprint='f2', alertname='BackendHighErrorRate'), incident_dir=str(tmp_path),
                     hosts_services=HOSTS, now=later(2))
    assert resend['incident_id'] == other['incident_id'] == first['incident_id']
    assert not resend['created'] and not other['created']
    assert len([d for d in os.listdir(str(tmp_path)) if d.startswith('INC-')]) == 1
    notes = [e for e in timeline(first['incident_path']) if e['kind'] == 'note']
    assert [n['data']['fingerprint'] for n in notes] == ['f1', 'f1', 'f2']
    assert 're-sent' in notes[1]['summary'] and 'fired' in notes[2]['summary']


def test_throttle_one_triage_per_group_per_window(tmp_path):
    d = str(tmp_path)
    assert a.intake(event(), incident_dir=d, throttle_minutes=10, now=NOW)['triage'] is True
    flap = a.intake(event(), incident_dir=d, throttle_minutes=10, now=later(3))
    assert flap['triage'] is False and flap['triage_reason'].startswith('throttled')
    assert a.intake(event(fingerprint='f2'), incident_dir=d, throttle_minutes=10, now=later(9))['triage'] is False
    refreshed = a.intake(event(), incident_dir=d, throttle_minutes=10, now=later(10))
    assert refreshed['triage'] is True and 'findings refreshed' in refreshed['triage_reason']
    # the window restarts at the last triage
    assert a.intake(event(), incident_dir=d, throttle_minutes=10, now=later(15))['triage'] is False
    # throttle 0: every firing alert triages
    assert a.intake(event(), incident_dir=d, throttle_minutes=0, now=later(15))['triage'] is True


def test_resolved_alert_records_and_drafts_only_when_the_whole_group_resolved(tmp_path):
    d = str(tmp_path)
    first = a.intake(event(), incident_dir=d, now=NOW)
    a.intake(event(fingerprint='f2', alertname='BackendHighErrorRate'), incident_dir=d, now=later(1))
    one = a.intake(event(status='resolved'), incident_dir=d, now=later(2))
    assert one['incident_id'] == first['incident_id'] and one['triage'] is False and one['draft_resolved'] is False
    both = a.intake(event(status='resolved', fingerprint='f2', alertname='BackendHighErrorRate'), incident_dir=d,
                    now=later(3))
    assert both['draft_resolved'] is True
    incident = f.read_json(os.path.join(first['incident_path'], 'incident.json'))
    assert incident['status'] == 'Investigating', 'a resolved alert never closes the incident'
    assert 'resolved' not in [e['kind'] for e in timeline(first['incident_path'])]
    # flapping back: the same open incident, not a new one
    again = a.intake(event(), incident_dir=d, throttle_minutes=10, now=later(4))
    assert again['incident_id'] == first['incident_id'] and 'fired again' in timeline(first['incident_path'])[-1]['summary']


def test_a_group_whose_incident_a_person_resolved_opens_a_new_one(tmp_path):
    d = str(tmp_path)
    first = a.intake(event(), incident_dir=d, now=NOW)
    meta = os.path.join(first['incident_path'], 'incident.json')
    incident = f.read_json(meta)
    incident['status'] = 'Resolved'
    f.write_json_atomic(meta, incident)
    second = a.intake(event(), incident_dir=d, now=later(60))
    assert second['created'] is True and second['incident_id'] != first['incident_id']


def test_resolved_alert_without_an_open_incident_writes_nothing(tmp_path):
    out = a.intake(event(status='resolved'), incident_dir=str(tmp_path), now=NOW)
    assert out['incident_id'] == '' and out['draft_resolved'] is False
    assert [n for n in os.listdir(str(tmp_path)) if n.startswith('INC-')] == []


@pytest.mark.parametrize('bad, word', [
    ({}, 'group_key'),
    ({'group_key': 'g', 'alert': {'status': 'pending', 'fingerprint': 'x', 'labels': {'alertname': 'A'}}}, 'status'),
    ({'group_key': 'g', 'alert': {'status': 'firing', 'labels': {'alertname': 'A'}}}, 'fingerprint'),
    ({'group_key': 'g', 'alert': {'status': 'firing', 'fingerprint': 'x', 'labels': {}}}, 'alertname'),
    ('text', 'dict'),
])
def test_invalid_event_is_refused_before_anything_is_written(tmp_path, bad, word):
    with pytest.raises(ValueError, match=word):
        a.intake(bad, incident_dir=str(tmp_path / 'inc'), now=NOW)
    assert not (tmp_path / 'inc').exists()


def test_triage_hosts_from_labels():
    assert a.triage_hosts({'triage_hosts': 'web*'}, HOSTS) == ('web*', 'label triage_hosts')
    assert a.triage_hosts({'service': 'backend'}, HOSTS)[0] == 'app-backend:app-db:app-redis'
    # a database alert also looks at the backend that depends on it
    assert a.triage_hosts({'service': 'db'}, HOSTS)[0] == 'app-backend:app-db'
    assert a.triage_hosts({'service': 'batch'}, HOSTS)[0] == 'other'
    assert a.triage_hosts({'service': 'unknown'}, HOSTS)[0] == 'all'
    assert a.triage_hosts({}, HOSTS)[0] == 'all'


def test_severity_and_title_from_labels():
    assert a.alert_severity({'severity': 'critical'}) == 'SEV2'
    assert a.alert_severity({'severity': 'warning'}) == 'SEV3'
    assert a.alert_severity({'severity': 'critical', 'incident_severity': 'P1'}) == 'SEV1'
    assert a.alert_severity({'severity': 'critical'}, {'critical': 'SEV1'}) == 'SEV1'
    assert a.alert_severity({'severity': 'whatever'}) == ''
    assert a.alert_title({'labels': {'alertname': 'RedisDown', 'service': 'redis'}}) == 'RedisDown: service redis'


def _intake_one(directory, fingerprint, queue):
    out = a.intake(event(fingerprint=fingerprint), incident_dir=directory, throttle_minutes=10)
    queue.put((out['incident_id'], out['created'], out['triage']))


def test_concurrent_alerts_of_one_group_open_exactly_one_incident(tmp_path):
    d = str(tmp_path)
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_intake_one, args=(d, 'f%d' % k, queue)) for k in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    results = [queue.get() for _ in procs]
    assert len({r[0] for r in results}) == 1
    assert sum(1 for r in results if r[1]) == 1, 'exactly one run declares'
    assert sum(1 for r in results if r[2]) == 1, 'exactly one run triages within the throttle window'
    assert len([n for n in os.listdir(d) if n.startswith('INC-')]) == 1
    notes = [e for e in timeline(os.path.join(d, results[0][0])) if e['kind'] == 'note']
    assert sorted(n['data']['fingerprint'] for n in notes) == ['f%d' % k for k in range(8)]
    registry = json.load(open(os.path.join(d, '.alert-groups.json')))
    assert len(registry['groups']['{}:{service="backend"}']['alerts']) == 8
