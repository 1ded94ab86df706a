"""End to end: a lab fault -> Prometheus -> Alertmanager -> ansible-rulebook (the collection's rulebook and event
source) -> playbooks/alert.yml -> an incident with the right top pattern and the DECLARED message, with no other
command. Injecting again (the alert re-sent) opens no second incident; healing drafts the Resolved update.

Stopping the backend, PostgreSQL or Redis opens an incident from that service's *Down rule, whichever way the dead
target shows in Prometheus (the PostgreSQL exporter fails its scrape while PostgreSQL is stopped: pg_up is never 0).

Runs the alerts lab of this LAB_INSTANCE (tests/lab/playbooks/alerts.yml) with a fresh incident directory.
Prints the time from the fault (the container stopping) to the diagnosis or the incident; nothing is asserted on time.
"""
import datetime
import glob
import json
import os
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from conftest import INSTANCE, ROOT, heal, inject, lab_lock, run

OFFSET = INSTANCE * 100
PROMETHEUS = 'http://127.0.0.1:%d' % (19090 + OFFSET)
GROUP = '{}:{service="backend"}'
WAIT = 240  # seconds, an upper bound on each wait (lab intervals are seconds)


def _get_json(url):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _firing(alertname):
    alerts = _get_json(PROMETHEUS + '/api/v1/alerts')['data']['alerts']
    return [a for a in alerts if a['labels'].get('alertname') == alertname and a['state'] == 'firing']


ALERTS_DIR = os.path.join(ROOT, 'tests/lab/build/state%s/alerts' % (INSTANCE or ''))
WATCHED = []  # the incident directories of this module's tests: what they hold is shown when a wait times out


def _what_happened():
    """The end of the rulebook's log and the events of each watched incident: why a wait timed out, in CI's output."""
    out = []
    try:
        with open(os.path.join(ALERTS_DIR, 'rulebook.log'), errors='replace') as handle:
            tail = handle.read().splitlines()[-80:]
        out.append('--- rulebook.log (last %d lines)\n%s' % (len(tail), '\n'.join(tail)))
    except OSError as exc:
        out.append('--- rulebook.log: %s' % exc)
    for incident_dir in WATCHED:
        out.append('--- %s: groups %s' % (incident_dir, json.dumps(_registry(incident_dir), sort_keys=True)[:1500]))
        for name in sorted(n for n in os.listdir(incident_dir) if n.startswith('INC-')):
            events = _events(os.path.join(incident_dir, name))
            out.append('%s: %s' % (name, '; '.join('%s %s %s' % (e.get('ts'), e.get('kind'), str(e.get('summary'))[:160])
                                                   for e in events[-40:])))
    return '\n'.join(out)


def _wait(what, predicate, timeout=WAIT, every=1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('waited %d s for %s\n%s' % (timeout, what, _what_happened()))
        time.sleep(every)


def _registry(incident_dir):
    path = os.path.join(incident_dir, '.alert-groups.json')
    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        return json.load(handle).get('groups', {})


def _events(path):
    out = []
    if os.path.exists(os.path.join(path, 'timeline.jsonl')):
        with open(os.path.join(path, 'timeline.jsonl')) as handle:
            for line in handle:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


def _opened(incident_dir):
    """Every incident of the directory -> the group key and alert names of its alert notes."""
    out = {}
    for name in sorted(n for n in os.listdir(incident_dir) if n.startswith('INC-')):
        notes = [e['data'] for e in _events(os.path.join(incident_dir, name)) if e['kind'] == 'note'
                 and isinstance(e.get('data'), dict) and 'group_key' in e['data']]
        out[name] = (notes[0]['group_key'] if notes else None,
                     sorted(set((n.get('labels') or {}).get('alertname', '?') for n in notes)))
    return out


def _incidents_of(incident_dir, group):
    """The incidents an alert group opened: exactly one per group, however often its alerts are re-sent (another
    group's incident, e.g. of an alert that another service's exporter raises meanwhile, is not this group's)."""
    return [name for name, (key, _names) in _opened(incident_dir).items() if key == group]


@pytest.fixture(scope='module')
def alerts_lab(lab, tmp_path_factory):
    incident_dir = str(tmp_path_factory.mktemp('alert-incidents'))
    WATCHED[:] = [incident_dir]
    with lab_lock():
        res = run('tests/lab/playbooks/alerts.yml', {'lab_alerts_state': 'present', 'lab_alerts_incident_dir': incident_dir})
        assert res.rc == 0, res
        # start from a quiet backend group: no BackendDown firing from an earlier run
        _wait('BackendDown to be inactive', lambda: not _firing('BackendDown'))
        yield {'incident_dir': incident_dir}
        res = run('tests/lab/playbooks/alerts.yml', {'lab_alerts_state': 'absent'})
        assert res.rc == 0, res


def test_fault_to_incident_without_a_command_one_incident_per_group_resolved_draft(alerts_lab, lab_env):
    incident_dir = alerts_lab['incident_dir']
    with lab_lock():
        try:
            inject('backend_down')
            stopped = subprocess.run(['docker', 'inspect', '-f', '{{.State.FinishedAt}}', lab_env.backend],
                                     capture_output=True, text=True, check=True).stdout.strip()

            # 1. an incident appears, diagnosed backend_down, with the INCIDENT DECLARED message
            incident_id = _wait('the backend group to open an incident', lambda: _registry(incident_dir).get(GROUP, {}).get('incident_id'))
            path = os.path.join(incident_dir, incident_id)
            diagnosis = _wait('a diagnosis with a hypothesis', lambda: [
                e for e in _events(path) if e['kind'] == 'diagnosis' and e['data'].get('hypotheses')])
            assert diagnosis[0]['data']['hypotheses'][0]['pattern'] == 'backend_down', diagnosis[0]
            top = json.load(open(os.path.join(path, 'diagnosis.json')))['hypotheses'][0]
            assert top['pattern'] == 'backend_down', top
            declared = _wait('the DECLARED message', lambda: glob.glob(os.path.join(path, 'messages', '*-declared.md')))
            text = open(declared[0]).read()
            assert text.startswith('INCIDENT DECLARED: BackendDown'), text
            incident = json.load(open(os.path.join(path, 'incident.json')))
            assert incident['severity'] in ('SEV1', 'SEV2')
            first_note = [e for e in _events(path) if e['kind'] == 'note'][0]
            assert first_note['data']['labels']['alertname'] == 'BackendDown'
            assert first_note['data']['group_key'] == GROUP and first_note['data']['fingerprint']
            started = datetime.datetime.fromisoformat(stopped.replace('Z', '')[:26]).replace(tzinfo=datetime.timezone.utc)
            diagnosed = datetime.datetime.fromisoformat(diagnosis[0]['ts'].replace('Z', '+00:00'))
            print('\nfault -> diagnosis: %.1f s (backend stopped %s, first diagnosis %s)'
                  % ((diagnosed - started).total_seconds(), stopped, diagnosis[0]['ts']))

            # 2. inject again: the alert keeps firing and is re-sent; it appends, no second incident
            inject('backend_down')
            _wait('a re-sent alert in the timeline', lambda: len([e for e in _events(path) if e['kind'] == 'note'
                                                                 and e['data']['status'] == 'firing']) >= 2)
            notes = [e for e in _events(path) if e['kind'] == 'note' and e['data']['status'] == 'firing']
            # the same alert re-sent, or (when the backend's scrape came back between two injections and the alert
            # resolved) fired again within the throttle window: either way appended, no second triage
            assert notes[1]['data']['triage'] is False, notes[1]
            assert 're-sent' in notes[1]['summary'] or 'throttled' in notes[1]['summary'], notes[1]
            assert _incidents_of(incident_dir, GROUP) == [incident_id], _opened(incident_dir)
        finally:
            heal('backend_down')

        # 3. healed: the resolved alert records an event and drafts the Resolved update; the incident stays open
        resolved = _wait('the Resolved draft', lambda: glob.glob(os.path.join(path, 'messages', '*-update-resolved.md')))
        assert 'Status: Resolved' in open(resolved[0]).read()
        assert [e for e in _events(path) if e['kind'] == 'note' and e['data']['status'] == 'resolved']
        assert json.load(open(os.path.join(path, 'incident.json')))['status'] != 'Resolved'
        assert 'resolved' not in [e['kind'] for e in _events(path)]
        assert _incidents_of(incident_dir, GROUP) == [incident_id], _opened(incident_dir)

        # secrets (lab credentials, the webhook token) never reach the incident's files
        token = open(os.path.join(ROOT, 'tests/lab/build/state%s/alerts/webhook.token' % (INSTANCE or ''))).read().strip()
        for name in glob.glob(os.path.join(incident_dir, '**', '*'), recursive=True) + [os.path.join(incident_dir, '.alert-groups.json')]:
            if os.path.isfile(name):
                content = open(name, errors='replace').read()
                for secret in lab_env.secrets + (token,):
                    assert secret not in content, name


# (what is stopped, LabEnv attribute of its container, the rule that must open its incident, its service label)
DOWN_CASES = [
    ('backend', 'backend', 'BackendDown', 'backend'),
    ('PostgreSQL', 'db', 'PostgresDown', 'db'),
    ('Redis', 'redis', 'RedisDown', 'redis'),
]
# Prometheus sees each target healthy again (the exporter's metric at 1 and its scrape working)
HEALTHY = {'backend': 'up{job="backend"} == 1',
           'db': 'pg_up{job="postgres"} == 1 and on (instance) up{job="postgres"} == 1',
           'redis': 'redis_up{job="redis"} == 1 and on (instance) up{job="redis"} == 1'}


def _docker(*args):
    return subprocess.run(['docker'] + list(args), capture_output=True, text=True, check=True).stdout.strip()


def test_stopping_backend_postgres_redis_each_opens_an_incident_from_its_down_rule(alerts_lab, lab_env, tmp_path):
    """Each container stopped alone opens the incident of its service's alert group, declared by the service's
    *Down rule (backend first: a backend error-rate alert while the database is down then joins the backend's
    open incident instead of taking its place)."""
    incident_dir = str(tmp_path / 'down-incidents')
    WATCHED[:] = [incident_dir]
    with lab_lock():
        # a fresh incident directory: the rulebook restarts with it (the backend group of the test above is open)
        res = run('tests/lab/playbooks/alerts.yml', {'lab_alerts_state': 'present', 'lab_alerts_incident_dir': incident_dir})
        assert res.rc == 0, res
        for dummy, dummy, alertname, service in DOWN_CASES:
            _wait('%s to be healthy and %s inactive' % (service, alertname),
                  lambda q=HEALTHY[service], n=alertname: _prom_value(q) and not _firing(n))
        opened = {}
        for what, attr, alertname, service in DOWN_CASES:
            container = getattr(lab_env, attr)
            group = '{}:{service="%s"}' % service
            started = time.monotonic()
            try:
                _docker('stop', '-t', '5', container)
                incident_id = _wait('%s stopped to open an incident' % what,
                                    lambda g=group: _registry(incident_dir).get(g, {}).get('incident_id'))
                elapsed = time.monotonic() - started
            finally:
                _docker('start', container)
            path = os.path.join(incident_dir, incident_id)
            first = _wait('the first note of %s' % incident_id, lambda p=path: [e for e in _events(p) if e['kind'] == 'note'])[0]
            labels = first['data']['labels']
            assert labels['alertname'] == alertname and labels['service'] == service, labels
            # the rule says how the dead target showed: a stopped container is a failed scrape or the exporter's 0
            assert labels['down_signal'] in ('scrape_failed', 'reported_down'), labels
            assert first['data']['group_key'] == group, first
            incident = json.load(open(os.path.join(path, 'incident.json')))
            assert incident['title'].startswith(alertname + ': '), incident['title']
            assert incident['severity'] in ('SEV1', 'SEV2'), incident
            opened[service] = incident_id
            print('\n%s stopped -> incident %s by %s (down_signal %s): %.1f s'
                  % (what, incident_id, alertname, labels['down_signal'], elapsed))
            _wait('%s healthy again' % what, lambda q=HEALTHY[service]: _prom_value(q))
            if service == 'backend':
                heal('backend_down')  # waits for the backend's /health/ready
        # one incident per stopped service, each its own
        assert len(set(opened.values())) == 3, opened
        assert sorted(n for n in os.listdir(incident_dir) if n.startswith('INC-')) == sorted(opened.values())
        # the lab is healthy again for the next test: no *Down alert firing, the backend ready
        for dummy, dummy, alertname, service in DOWN_CASES:
            _wait('%s to be inactive' % alertname, lambda n=alertname: not _firing(n))


def _prom_value(query):
    result = _get_json(PROMETHEUS + '/api/v1/query?' + urllib.parse.urlencode({'query': query}))['data']['result']
    return float(result[0]['value'][1]) if result else None


def test_memory_trend_from_prometheus_is_a_finding_and_memory_growth(alerts_lab, lab_env, run_playbook, incident):
    """A Prometheus URL configured for the service: the triage reads the memory trend (range query) as a
    finding with the query in its evidence, and the diagnosis calls it memory_growth."""
    query = 'max(process_resident_memory_bytes{service="backend"})'
    with lab_lock():
        baseline = _wait('a memory sample of the backend', lambda: _prom_value(query))
        try:
            inject('memory_growth')
            _wait('Prometheus to see the leak', lambda: (_prom_value(query) or 0) > baseline * 1.6)
            # The lab's Prometheus started a minute ago: a 2-minute window (2 s steps) holds the whole leak; the
            # default 30 minutes would step 16 s and could hold a single sample of a backend recreated just before.
            res = run_playbook('playbooks/triage.yml', dict(incident['vars'], trends_window_minutes=2),
                               env={'LAB_PROMETHEUS_URL': PROMETHEUS})
            assert res.rc == 0, res
        finally:
            heal('memory_growth')
    findings = json.load(open(os.path.join(incident['path'], 'findings.json')))
    trend = [f for f in findings if f['check'] == 'trend.memory' and f['host'] == 'app-backend']
    assert trend and trend[0]['status'] == 'crit', findings
    assert trend[0]['evidence']['query'] == query
    assert trend[0]['summary'].startswith('backend memory grew ')
    hypotheses = json.load(open(os.path.join(incident['path'], 'diagnosis.json')))['hypotheses']
    memory = [h for h in hypotheses if h['pattern'] == 'memory_growth']
    assert memory and 'app-backend/trend.memory' in memory[0]['evidence'], hypotheses
