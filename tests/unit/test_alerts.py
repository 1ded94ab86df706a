"""Unit tests of the alert -> incident mapping (plugin_utils/comms/alerts.py): one incident per alert group,
re-sends append, throttling, the Resolved draft, label mapping, batches of several alerts, decoding the event
of the event source and notification files (alert text verbatim, never templated), and concurrent runs."""
import base64
import datetime
import importlib.util
import json
import multiprocessing
import os

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.comms import alerts as a
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files as f
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore

NOW = datetime.datetime(2026, 12, 1, 3, 12, tzinfo=datetime.timezone.utc)
HOSTS = {
    'app-backend': [{'name': 'backend', 'depends_on': ['db', 'redis', 'payments']},
                    {'name': 'proxy', 'depends_on': ['backend']}],
    'app-db': [{'name': 'db'}],
    'app-redis': [{'name': 'redis'}],
    'other': [{'name': 'batch'}],
}


INVENTORY = set(HOSTS) | {'all', 'ungrouped', 'backends'}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = importlib.util.spec_from_file_location(
    'alertmanager_source', os.path.join(ROOT, 'extensions/eda/plugins/event_source/alertmanager.py'))
src = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(src)


def one(status='firing', fingerprint='f1', alertname='BackendDown', service='backend', severity='critical',
        fired=None, summary='backend app-backend is down', **labels):
    lab = {'alertname': alertname, 'severity': severity}
    if service:
        lab['service'] = service
    lab.update(labels)
    return {'status': status, 'fingerprint': fingerprint, 'labels': lab,
            'annotations': {'summary': summary, 'runbook_url': 'docs/runbooks/backend-runbook.md'},
            'startsAt': '2026-12-01T03:11:40Z', 'endsAt': '', 'generatorURL': '',
            'fired': status == 'firing' if fired is None else fired}


def batch(*alerts, **kwargs):
    return {'group_key': kwargs.get('group', '{}:{service="backend"}'), 'group_status': 'firing',
            'notifications': 1, 'alerts': list(alerts)}


def event(status='firing', fingerprint='f1', group='{}:{service="backend"}', **kwargs):
    """A batch of one alert (what one notification of one alert becomes)."""
    return batch(one(status=status, fingerprint=fingerprint, **kwargs), group=group)


def source_event(notification):
    """The event the real event source hands to ansible-rulebook for one notification."""
    coalescer = src.Coalescer()
    assert coalescer.offer(notification)[0] == 200
    dummy, ev = coalescer.peek()
    return ev


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


def diagnosed(out):
    """The triage the intake decided ran and wrote its diagnosis."""
    IncidentStore.of_path(out['incident_path'], out['incident_id']).write_diagnosis(
        {'incident_id': out['incident_id'], 'hypotheses': [{'pattern': 'backend_down'}]})
    return out


def test_throttle_one_triage_per_group_per_window(tmp_path):
    d = str(tmp_path)
    assert diagnosed(a.intake(event(), incident_dir=d, throttle_minutes=10, now=NOW))['triage'] is True
    flap = a.intake(event(), incident_dir=d, throttle_minutes=10, now=later(3))
    assert flap['triage'] is False and flap['triage_reason'].startswith('throttled')
    assert a.intake(event(fingerprint='f2'), incident_dir=d, throttle_minutes=10, now=later(9))['triage'] is False
    refreshed = a.intake(event(), incident_dir=d, throttle_minutes=10, now=later(10))
    assert refreshed['triage'] is True and 'findings refreshed' in refreshed['triage_reason']
    # the window restarts at the last triage
    assert a.intake(event(), incident_dir=d, throttle_minutes=10, now=later(15))['triage'] is False
    # throttle 0: every firing alert triages
    assert a.intake(event(), incident_dir=d, throttle_minutes=0, now=later(15))['triage'] is True


def test_a_triage_that_left_no_diagnosis_is_not_a_reason_to_throttle(tmp_path):
    d = str(tmp_path)
    first = a.intake(event(), incident_dir=d, throttle_minutes=10, now=NOW)
    assert first['triage'] is True
    # a re-send while the first triage may still run: throttled (no second triage at once)
    soon = a.intake(event(), incident_dir=d, throttle_minutes=10, now=later(1))
    assert soon['triage'] is False and soon['triage_reason'].startswith('throttled')
    # the first triage failed or was cut off: the next alert triages again, once
    retry = a.intake(event(), incident_dir=d, throttle_minutes=10, now=later(3))
    assert retry['triage'] is True and 'left no diagnosis' in retry['triage_reason'], retry
    assert a.intake(event(), incident_dir=d, throttle_minutes=10, now=later(4))['triage'] is False
    diagnosed(retry)
    assert a.intake(event(), incident_dir=d, throttle_minutes=10, now=later(7))['triage'] is False


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
    ({'group_key': 'g', 'alerts': [{'status': 'pending', 'fingerprint': 'x', 'labels': {'alertname': 'A'}}]}, 'status'),
    ({'group_key': 'g', 'alerts': [{'status': 'firing', 'labels': {'alertname': 'A'}}]}, 'fingerprint'),
    ({'group_key': 'g', 'alerts': [{'status': 'firing', 'fingerprint': 'x', 'labels': {}}]}, 'alertname'),
    ({'group_key': 'g', 'alerts': [{'status': 'firing', 'fingerprint': 'x', 'labels': {'alertname': 'A', 'n': 1}}]},
     'strings'),
    ({'group_key': 'g', 'alerts': []}, 'non-empty'),
    ('text', 'JSON object'),
])
def test_invalid_event_is_refused_before_anything_is_written(tmp_path, bad, word):
    with pytest.raises(ValueError, match=word):
        a.intake(bad, incident_dir=str(tmp_path / 'inc'), now=NOW)
    assert not (tmp_path / 'inc').exists()


def test_triage_hosts_from_labels():
    assert a.triage_hosts({'triage_hosts': 'app-db:backends'}, HOSTS, INVENTORY) == ('app-db:backends', 'label triage_hosts')
    assert a.triage_hosts({'triage_hosts': 'app-db,app-redis'}, HOSTS, INVENTORY)[0] == 'app-db:app-redis'
    # a label names hosts, it never writes a pattern: wildcards, regexes, exclusions and unknown names are ignored
    for pattern in ('web*', '~.*', 'all:!app-db', 'app-db:&backends', 'app-db[0:9]', "{{ lookup('pipe','id') }}"):
        hosts, reason = a.triage_hosts({'triage_hosts': pattern, 'service': 'db'}, HOSTS, INVENTORY)
        assert hosts == 'app-backend:app-db' and reason.startswith('label triage_hosts ignored'), (pattern, hosts)
    assert a.triage_hosts({'triage_hosts': 'app-db'}, HOSTS)[0] == 'all', 'no inventory names given: ignored'
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


def test_a_batch_is_one_run_one_note_per_alert_union_scope_most_severe(tmp_path):
    out = a.intake(batch(one(fingerprint='f1', severity='warning'),
                         one(fingerprint='f2', alertname='PostgresDown', service='db', severity='critical'),
                         one(fingerprint='f3', alertname='BackendHighErrorRate', status='resolved', fired=False)),
                   incident_dir=str(tmp_path), hosts_services=HOSTS, inventory_names=INVENTORY, now=NOW)
    assert out['created'] and out['triage'] and out['alerts'] == 3 and out['status'] == 'firing'
    assert out['severity'] == 'SEV2' and out['title'] == 'BackendDown: backend app-backend is down'
    assert out['triage_hosts'] == 'app-backend:app-db:app-redis'
    assert out['alertnames'] == ['BackendDown', 'BackendHighErrorRate', 'PostgresDown']
    incident = f.read_json(os.path.join(out['incident_path'], 'incident.json'))
    assert incident['services'] == ['backend', 'db']
    notes = [e for e in timeline(out['incident_path']) if e['kind'] == 'note']
    assert [n['data']['fingerprint'] for n in notes] == ['f1', 'f2', 'f3']
    assert all(n['data']['batch_alerts'] == 3 for n in notes)
    assert out['draft_resolved'] is False, 'f1 and f2 still fire'


def test_an_alert_that_fired_and_resolved_inside_one_batch_still_declares(tmp_path):
    out = a.intake(batch(one(status='resolved', fired=True)), incident_dir=str(tmp_path), now=NOW)
    assert out['created'] and out['triage'] is False and out['draft_resolved'] is True
    notes = [e for e in timeline(out['incident_path']) if e['kind'] == 'note']
    assert 'fired and resolved' in notes[0]['summary'] and 'Resolved update drafted' in notes[0]['summary']


def test_the_event_of_the_source_decodes_and_hostile_text_is_stored_verbatim(tmp_path):
    hostile = {'status': 'firing', 'fingerprint': 'f1', 'startsAt': 'not a time',
               'labels': {'alertname': 'Pwn{{ 6*7 }}', 'severity': 'critical',
                          'team': "{{ lookup('pipe','id > %s') }}" % (tmp_path / 'PWNED'),
                          'owner': "{% set x = lookup('pipe','id') %}{# c #}"},
               'annotations': {'summary': 'sum {{ 7*7 }}'}}
    ev = source_event({'groupKey': '{}:{team="{{ 1 }}"}', 'status': 'firing', 'alerts': [hostile]})
    out = a.intake(a.decode_event(ev), incident_dir=str(tmp_path / 'inc'), now=NOW)
    assert out['title'] == 'Pwn{{ 6*7 }}: sum {{ 7*7 }}'
    assert out['resolved_actions'].startswith('All alerts of the group resolved (Pwn{{ 6*7 }})')
    incident = f.read_json(os.path.join(out['incident_path'], 'incident.json'))
    assert incident['title'] == 'Pwn{{ 6*7 }}: sum {{ 7*7 }}'
    note = [e for e in timeline(out['incident_path']) if e['kind'] == 'note'][0]
    assert note['data']['labels']['team'] == hostile['labels']['team']
    assert note['data']['labels']['owner'] == hostile['labels']['owner']
    assert note['data']['group_key'] == '{}:{team="{{ 1 }}"}'
    assert not (tmp_path / 'PWNED').exists()


@pytest.mark.parametrize('bad, word', [
    ({'group_key': 'g', 'alert': {'status': 'firing', 'fingerprint': 'x', 'labels': {'alertname': 'A'}}}, 'format'),
    ({'format': a.EVENT_FORMAT}, 'payload'),
    ({'format': a.EVENT_FORMAT, 'payload': 'not base64!'}, 'base64'),
    ({'format': a.EVENT_FORMAT, 'payload': base64.b64encode(b'{"a": ').decode()}, 'not JSON'),
    ({'format': a.EVENT_FORMAT, 'payload': base64.b64encode(b'[' * 100000 + b']' * 100000).decode()}, 'not JSON'),
    ('text', 'dict'),
])
def test_an_event_that_is_not_the_sources_is_refused(bad, word):
    with pytest.raises(ValueError, match=word):
        a.decode_event(bad)


def test_a_notification_file_is_parsed_not_templated(tmp_path):
    notification = {'version': '4', 'groupKey': 'g1', 'status': 'firing', 'alerts': [
        {'status': 'firing', 'fingerprint': 'f1', 'labels': {'alertname': 'A', 'x': '{{ 7*7 }}'},
         'annotations': {'summary': 'sum {{ 7*7 }}'}}]}
    path = tmp_path / 'notification.json'
    path.write_text(json.dumps(notification))
    got = a.read_notification_file(str(path))
    assert got['group_key'] == 'g1' and got['alerts'][0]['fired'] is True and a.validate_batch(got) == []
    out = a.intake(got, incident_dir=str(tmp_path / 'inc'), now=NOW)
    assert out['title'] == 'A: sum {{ 7*7 }}'
    path.write_text('[' * 100000)
    with pytest.raises(ValueError, match='not JSON'):
        a.read_notification_file(str(path))
    with pytest.raises(ValueError, match='cannot be read'):
        a.read_notification_file(str(tmp_path / 'missing.json'))


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
    results = [queue.get() for dummy in procs]
    assert len({r[0] for r in results}) == 1
    assert sum(1 for r in results if r[1]) == 1, 'exactly one run declares'
    assert sum(1 for r in results if r[2]) == 1, 'exactly one run triages within the throttle window'
    assert len([n for n in os.listdir(d) if n.startswith('INC-')]) == 1
    notes = [e for e in timeline(os.path.join(d, results[0][0])) if e['kind'] == 'note']
    assert sorted(n['data']['fingerprint'] for n in notes) == ['f%d' % k for k in range(8)]
    registry = json.load(open(os.path.join(d, '.alert-groups.json')))
    assert len(registry['groups']['{}:{service="backend"}']['alerts']) == 8
