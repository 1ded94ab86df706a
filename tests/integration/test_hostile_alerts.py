"""Alert text is data, never code (issue 18, row 1): an attacker who can shape an alert label must not run a
command on the rulebook host, and the incident must show what the alert said, verbatim.

The payload of the report: label team: "{{ lookup('pipe','id > FILE') }}", annotation summary: "sum {{ 7*7 }}",
plus {% %} and {# #} variants, a template in the alertname (it reaches the title, the comms_actions of the
Resolved draft and the messages) and in the group key.

1. through the real event source and playbooks/alert.yml, with the extra vars file ansible-rulebook writes
   (ansible_eda.event); the EDA Controller variant hands the job the same ansible_eda.event;
2. through ansible-rulebook itself with the collection's rulebook (Java), as in production;
3. an event that did not come from the source (plain alert text in ansible_eda.event, e.g. a job launched by
   hand) is refused without templating it.

Every run must end (rc checked, subprocess timeouts), the files must not exist, the title reads
"HostileAlert: sum {{ 7*7 }}".
"""
import asyncio
import glob
import importlib.util
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
import yaml

from conftest import ROOT, VENV_BIN, _env, run

SPEC = importlib.util.spec_from_file_location(
    'alertmanager_source', os.path.join(ROOT, 'extensions/eda/plugins/event_source/alertmanager.py'))
src = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(src)

JAVA_HOME = '/usr/lib/jvm/java-17-openjdk-amd64'


def hostile_notification(proof_dir, group, status='firing'):
    """The attacker's notification: every string a template, two alerts of one group."""
    return {
        'version': '4', 'groupKey': group, 'status': status, 'receiver': 'incident-response',
        'groupLabels': {'service': 'backend'}, 'commonLabels': {'service': 'backend'},
        'commonAnnotations': {'summary': "{{ lookup('pipe','id > %s/common') }}" % proof_dir},
        'externalURL': 'http://127.0.0.1:9093', 'truncatedAlerts': 0,
        'alerts': [
            {'status': status, 'fingerprint': 'hostile-1',
             'labels': {'alertname': 'HostileAlert', 'service': 'backend', 'severity': 'critical',
                        'triage_hosts': 'app-backend',
                        'team': "{{ lookup('pipe','id > %s/FILE') }}" % proof_dir},
             'annotations': {'summary': 'sum {{ 7*7 }}'},
             'startsAt': '2026-12-01T03:11:40Z', 'endsAt': '0001-01-01T00:00:00Z', 'generatorURL': ''},
            {'status': status, 'fingerprint': 'hostile-2',
             'labels': {'alertname': 'HostileJinja{{ 6*7 }}', 'service': 'backend', 'severity': 'warning',
                        'triage_hosts': 'app-backend',
                        'owner': "{%% set x = lookup('pipe','id > %s/FILE2') %%}x{# c #}" % proof_dir},
             'annotations': {'summary': "{% for i in range(3) %}<{{ i }}>{% endfor %}",
                             'description': "{{ lookup('ansible.builtin.pipe', 'id > %s/FILE3') }}" % proof_dir},
             'startsAt': '2026-12-01T03:11:41Z', 'endsAt': '0001-01-01T00:00:00Z', 'generatorURL': ''},
        ],
    }


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def source_events(notification):
    """The events the real event source puts on the rulebook's queue for one POSTed notification."""
    aiohttp = pytest.importorskip('aiohttp')

    async def scenario():
        port = _free_port()
        queue = asyncio.Queue()
        task = asyncio.ensure_future(src.main(queue, {'port': port, 'token': 'tok'}))
        try:
            for dummy in range(200):
                await asyncio.sleep(0.05)
                try:
                    reader, writer = await asyncio.open_connection('127.0.0.1', port)
                    writer.close()
                    break
                except OSError:
                    continue
            async with aiohttp.ClientSession() as session:
                async with session.post('http://127.0.0.1:%d/alerts' % port, data=json.dumps(notification),
                                        headers={'Authorization': 'Bearer tok'},
                                        timeout=aiohttp.ClientTimeout(total=30)) as resp:
                    assert resp.status == 200, await resp.text()
            events = []
            for dummy in range(100):
                await asyncio.sleep(0.05)
                while not queue.empty():
                    events.append(queue.get_nowait())
                if events and queue.empty():
                    await asyncio.sleep(0.2)
                    if queue.empty():
                        break
            return events
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    events = asyncio.run(scenario())
    assert events, 'the source produced no event'
    return events


def rulebook_extravars(tmp_path, event, incident_dir, name):
    """The extra vars file ansible-rulebook's run_playbook writes (helper.collect_extra_vars + yaml.dump)."""
    event = dict(event, meta={'source': {'name': 'alertmanager', 'type': 'sre.incident_response.alertmanager'},
                              'received_at': '2026-12-01T03:12:00.000000Z', 'uuid': str(uuid.uuid4())})
    path = tmp_path / name
    path.write_text(yaml.dump({
        'incident_dir': incident_dir, 'alert_throttle_minutes': 10, 'diagnose_inventory': 'inventory/lab',
        'ansible_eda': {'ruleset': 'Alerts start the triage (sre.incident_response)', 'rule': 'r', 'event': event}}))
    return str(path)


def incident_files(incident_dir):
    out = {}
    for name in glob.glob(os.path.join(incident_dir, '**', '*'), recursive=True):
        if os.path.isfile(name):
            with open(name, errors='replace') as handle:
                out[name] = handle.read()
    return out


def assert_verbatim(incident_dir, proof_dir):
    assert sorted(os.listdir(proof_dir)) == [], 'a label ran a command: %s' % os.listdir(proof_dir)
    incidents = [n for n in os.listdir(incident_dir) if n.startswith('INC-')]
    assert len(incidents) == 1, incidents
    path = os.path.join(incident_dir, incidents[0])
    incident = json.load(open(os.path.join(path, 'incident.json')))
    assert incident['title'] == 'HostileAlert: sum {{ 7*7 }}', incident['title']
    notes = [json.loads(line) for line in open(os.path.join(path, 'timeline.jsonl')) if '"kind": "note"' in line]
    labels = dict((n['data']['fingerprint'], n['data']['labels']) for n in notes)
    assert labels['hostile-1']['team'] == "{{ lookup('pipe','id > %s/FILE') }}" % proof_dir
    assert labels['hostile-2']['owner'] == "{%% set x = lookup('pipe','id > %s/FILE2') %%}x{# c #}" % proof_dir
    assert labels['hostile-2']['alertname'] == 'HostileJinja{{ 6*7 }}'
    for name, text in incident_files(incident_dir).items():
        for rendered in ('sum 49', 'HostileJinja42', 'uid=0', '<0><1><2>'):
            assert rendered not in text, '%s holds %r: alert text was templated' % (name, rendered)
    return path


@pytest.mark.usefixtures('lab')
def test_alert_playbook_with_the_sources_event_never_templates_alert_text(tmp_path):
    proof_dir = tmp_path / 'proof'
    proof_dir.mkdir()
    incident_dir = str(tmp_path / 'incidents')
    group = '{}:{service="backend",x="{{ 7*7 }}"}'

    # firing: declare and triage (app-backend only), then the Resolved draft from the resolved notification
    for step, status in enumerate(('firing', 'resolved')):
        for k, event in enumerate(source_events(hostile_notification(proof_dir, group, status))):
            res = run('playbooks/alert.yml', args=['-e', '@' + rulebook_extravars(
                tmp_path, event, incident_dir, 'extravars-%d-%d.yml' % (step, k))], timeout=600)
            assert res.rc == 0, res
    path = assert_verbatim(incident_dir, str(proof_dir))
    declared = glob.glob(os.path.join(path, 'messages', '*-declared.md'))
    assert declared and 'HostileAlert' in open(declared[0]).read()
    resolved = glob.glob(os.path.join(path, 'messages', '*-update-resolved.md'))
    assert resolved, os.listdir(os.path.join(path, 'messages'))
    text = open(resolved[0]).read()
    assert 'HostileJinja' in text and 'HostileJinja42' not in text


@pytest.mark.usefixtures('lab')
def test_an_event_with_plain_alert_text_is_refused_not_templated(tmp_path):
    """ansible_eda.event with the alert as plain strings (not from the source: e.g. an AWX job launched by hand
    with the old event shape) is refused by alert_intake, which reads it as it is: nothing runs."""
    proof_dir = tmp_path / 'proof'
    proof_dir.mkdir()
    incident_dir = str(tmp_path / 'incidents')
    notification = hostile_notification(proof_dir, '{}:{service="backend"}')
    plain = {'group_key': notification['groupKey'], 'group_status': 'firing', 'alert': notification['alerts'][0]}
    res = run('playbooks/alert.yml', args=['-e', '@' + rulebook_extravars(tmp_path, plain, incident_dir, 'plain.yml')],
              timeout=600)
    assert res.rc != 0 and 'not one of the sre.incident_response.alertmanager event source' in res.stdout, res
    assert os.listdir(str(proof_dir)) == []
    assert not glob.glob(os.path.join(incident_dir, 'INC-*')), 'a refused event opened an incident'


@pytest.mark.usefixtures('lab')
def test_a_hostile_notification_file_by_hand_is_data(tmp_path):
    proof_dir = tmp_path / 'proof'
    proof_dir.mkdir()
    incident_dir = str(tmp_path / 'incidents')
    notification = tmp_path / 'notification.json'
    notification.write_text(json.dumps(hostile_notification(proof_dir, '{}:{service="backend"}')))
    res = run('playbooks/alert.yml', {'incident_dir': incident_dir, 'alert_notification_file': str(notification)},
              timeout=600)
    assert res.rc == 0, res
    assert_verbatim(incident_dir, str(proof_dir))


@pytest.fixture
def rulebook(tmp_path):
    """ansible-rulebook with the collection's rulebook on a free loopback port; stopped (its process group) after."""
    if not os.path.exists(os.path.join(VENV_BIN, 'ansible-rulebook')) or not os.path.isdir(JAVA_HOME):
        pytest.skip('ansible-rulebook or Java 17 missing (make setup)')
    port = _free_port()
    token = uuid.uuid4().hex
    incident_dir = str(tmp_path / 'incidents')
    variables = tmp_path / 'rulebook-vars.yml'
    variables.write_text(yaml.dump({'incident_dir': incident_dir, 'alert_listen_host': '127.0.0.1',
                                    'alert_listen_port': port, 'alert_token': token, 'alert_throttle_minutes': 10,
                                    'alert_inventory': 'inventory/lab'}))
    log = open(str(tmp_path / 'rulebook.log'), 'w')
    env = _env({'JAVA_HOME': JAVA_HOME, 'ANSIBLE_COLLECTIONS_PATH': os.path.join(ROOT, '.collections')})
    proc = subprocess.Popen(
        [os.path.join(VENV_BIN, 'ansible-rulebook'), '--rulebook', 'sre.incident_response.incident_response',
         '--inventory', os.path.join(ROOT, 'inventory/lab'), '--vars', str(variables)],
        cwd=str(tmp_path), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = 'http://127.0.0.1:%d' % port
    try:
        for dummy in range(120):
            if proc.poll() is not None:
                raise AssertionError('ansible-rulebook exited: %s' % open(str(tmp_path / 'rulebook.log')).read()[-3000:])
            try:
                with urllib.request.urlopen(url + '/health', timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        yield {'url': url, 'token': token, 'incident_dir': incident_dir, 'log': str(tmp_path / 'rulebook.log')}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()


def _post(rulebook, body):
    req = urllib.request.Request(rulebook['url'] + '/alerts', data=json.dumps(body).encode(), method='POST',
                                 headers={'Content-Type': 'application/json',
                                          'Authorization': 'Bearer ' + rulebook['token']})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status


def _wait(what, predicate, log, timeout=400):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError('waited %d s for %s; rulebook log:\n%s' % (timeout, what, open(log).read()[-4000:]))


@pytest.mark.usefixtures('lab')
def test_hostile_alert_through_ansible_rulebook_is_data(tmp_path, rulebook):
    proof_dir = tmp_path / 'proof'
    proof_dir.mkdir()
    incident_dir = rulebook['incident_dir']
    group = '{}:{service="backend"}'
    assert _post(rulebook, hostile_notification(proof_dir, group)) == 200

    def messages(pattern):
        return glob.glob(os.path.join(incident_dir, 'INC-*', 'messages', pattern))

    # the run ends: the triage got to its message; then the resolved notification drafts the Resolved update
    _wait('the DECLARED message', lambda: messages('*-declared.md'), rulebook['log'])
    assert _post(rulebook, hostile_notification(proof_dir, group, 'resolved')) == 200
    _wait('the Resolved draft', lambda: messages('*-update-resolved.md'), rulebook['log'])
    assert_verbatim(incident_dir, str(proof_dir))
    log = open(rulebook['log']).read()
    assert 'uid=0' not in log
