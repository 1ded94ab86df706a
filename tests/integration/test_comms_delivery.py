"""Communications delivered to a real HTTP receiver on 127.0.0.1: Slack, generic webhook, PagerDuty Events v2,
Statuspage-style API. Asserts on the payloads, on delivery failures being recorded without failing the play,
and that webhook URLs and keys never reach messages, the timeline or the output.

Needs no lab service: the incident is declared directly and playbooks/communicate.yml runs against the lab
inventory (controller-side only).
"""
import glob
import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import incident as incident_logic
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files

SLACK_PATH = '/services/T0TEST00/B0TEST00/sl4ckS3cretT0kenXYZ'
HOOK_TOKEN = 'hook-T0ken-5ecret-abc123'
PD_ONCALL = 'pdRoutingKeyOnCall0123456789abcd'
PD_MANAGER = 'pdRoutingKeyManager0123456789xyz'
SP_KEY = 'statuspage-Api-K3y-0987'


class Receiver(object):
    def __init__(self):
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length).decode('utf-8') if length else ''
                receiver.requests.append({'method': self.command, 'path': self.path, 'headers': dict(self.headers),
                                          'json': json.loads(body) if body else None})
                if self.path.startswith('/fail'):
                    self.send_response(500)
                    self.end_headers()
                    return
                payload = b'{}'
                status = 200
                if self.path.startswith('/pd'):
                    status, payload = 202, b'{"status": "success", "message": "Event processed"}'
                elif self.path.startswith('/sp/') and self.command == 'POST':
                    status, payload = 201, b'{"id": "sp-incident-42", "status": "investigating"}'
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = _handle
            do_PATCH = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def by_path(self, prefix):
        return [r for r in self.requests if r['path'].startswith(prefix)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _free_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def declare(incident, severity):
    return incident_logic.declare_or_load(
        incident_id=incident['id'], incident_dir=incident['dir'], title='Orders API returns 500', severity=severity,
        impact='Customers cannot place orders', services=['backend'],
        contacts={'incident_commander': {'name': 'IC', 'handle': '@ic'}})


def comms_vars(incident, receiver, **extra):
    out = dict(incident['vars'])
    out.update({
        'test_slack_url': receiver.url(SLACK_PATH),
        'test_hook_url': receiver.url('/hook/incidents'),
        'test_hook_token': HOOK_TOKEN,
        'test_pd_oncall': PD_ONCALL,
        'test_pd_manager': PD_MANAGER,
        'test_sp_key': SP_KEY,
        'comms_slack_webhook_url_var': 'test_slack_url',
        'comms_webhook_url_var': 'test_hook_url',
        'comms_webhook_token_var': 'test_hook_token',
        'comms_pagerduty_url': receiver.url('/pd/v2/enqueue'),
        'comms_statuspage_url': receiver.url('/sp/v1/pages/page1'),
        'comms_statuspage_api_key_var': 'test_sp_key',
        'incident_contacts': {
            'incident_commander': {'name': 'IC', 'handle': '@ic'},
            'oncall': {'name': 'On-call', 'handle': '@backend-oncall', 'pagerduty_routing_key_var': 'test_pd_oncall'},
            'engineering_manager': {'name': 'EM', 'handle': '@eng-manager', 'pagerduty_routing_key_var': 'test_pd_manager'},
        },
    })
    out.update(extra)
    return out


SECRETS = (SLACK_PATH, 'sl4ckS3cretT0kenXYZ', HOOK_TOKEN, PD_ONCALL, PD_MANAGER, SP_KEY)


def assert_no_secrets(incident, result):
    texts = {'stdout': result.stdout, 'stderr': result.stderr}
    for path in glob.glob(os.path.join(incident['path'], '**', '*'), recursive=True):
        if os.path.isfile(path):
            texts[path] = open(path, encoding='utf-8', errors='replace').read()
    for name, text in texts.items():
        for secret in SECRETS:
            assert secret not in text, '%s leaked into %s' % (secret, name)


def communicate(run_playbook, extra_vars, status, **kwargs):
    return run_playbook('playbooks/communicate.yml', dict(extra_vars, status=status), timeout=120, **kwargs)


def test_sev1_update_and_resolve_deliver_everywhere(run_playbook, incident, receiver):
    declare(incident, 'SEV1')
    res = communicate(run_playbook, comms_vars(incident, receiver), 'Identified')
    assert res.rc == 0, res

    slack = receiver.by_path('/services/')
    assert len(slack) == 1
    body = slack[0]['json']
    assert body['channel'] == '#incidents'
    assert body['text'].startswith('@backend-oncall @eng-manager\n```\nINCIDENT UPDATE: Orders API returns 500\n')
    assert 'Status: Identified' in body['text'] and 'in 15 minutes' in body['text']

    hooks = receiver.by_path('/hook/')
    assert {h['json']['event'] for h in hooks} == {'incident.update', 'incident.statuspage'}
    assert all(h['headers'].get('Authorization') == 'Bearer %s' % HOOK_TOKEN for h in hooks)
    assert all(h['json']['incident_id'] == incident['id'] and h['json']['severity'] == 'SEV1' for h in hooks)

    sp = receiver.by_path('/sp/')
    assert len(sp) == 1 and sp[0]['method'] == 'POST' and sp[0]['path'] == '/sp/v1/pages/page1/incidents'
    assert sp[0]['headers']['Authorization'] == 'OAuth %s' % SP_KEY
    assert sp[0]['json']['incident']['status'] == 'identified'
    assert sp[0]['json']['incident']['body'].startswith('[Identified] The issue has been identified as ')
    assert receiver.by_path('/pd/') == []  # an update does not page again

    receiver.requests.clear()
    res = communicate(run_playbook, comms_vars(incident, receiver), 'Resolved')
    assert res.rc == 0, res
    pd = receiver.by_path('/pd/')
    assert sorted(p['json']['routing_key'] for p in pd) == sorted([PD_ONCALL, PD_MANAGER])
    assert all(p['json'] == {'routing_key': p['json']['routing_key'], 'event_action': 'resolve',
                             'dedup_key': incident['id']} for p in pd)
    sp = receiver.by_path('/sp/')
    assert len(sp) == 1 and sp[0]['method'] == 'PATCH' and sp[0]['path'] == '/sp/v1/pages/page1/incidents/sp-incident-42'
    assert sp[0]['json']['incident']['status'] == 'resolved'

    events = files.read_jsonl(os.path.join(incident['path'], 'timeline.jsonl'))
    comms_events = [e for e in events if e['kind'] == 'comms']
    assert len(comms_events) == 4
    resolved = [e for e in comms_events if e['data']['message'] == 'update' and e['data']['status'] == 'Resolved'][0]
    targets = {d['target']: d['ok'] for d in resolved['data']['deliveries']}
    assert targets == {'slack': True, 'webhook': True, 'pagerduty:oncall': True, 'pagerduty:engineering_manager': True}
    names = sorted(os.listdir(os.path.join(incident['path'], 'messages')))
    assert sorted(n.split('-', 1)[1] for n in names) == ['statuspage-identified.md', 'statuspage-resolved.md',
                                                         'update-identified.md', 'update-resolved.md']
    assert files.read_json(os.path.join(incident['path'], 'incident.json'))['status'] == 'Resolved'
    assert_no_secrets(incident, res)


def test_declared_sev2_pages_oncall_only_and_sev3_goes_to_low_channel(run_playbook, incident, receiver, tmp_path):
    playbook = tmp_path / 'declare.yml'
    playbook.write_text('''---
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
''')
    res = run_playbook(str(playbook), comms_vars(incident, receiver, severity='SEV2'), timeout=120)
    assert res.rc == 0, res
    pd = receiver.by_path('/pd/')
    assert len(pd) == 1
    event = pd[0]['json']
    assert event['routing_key'] == PD_ONCALL and event['event_action'] == 'trigger' and event['dedup_key'] == incident['id']
    assert event['payload']['severity'] == 'error' and event['payload']['summary'].startswith('[SEV2] ')
    slack = receiver.by_path('/services/')[0]['json']
    assert slack['channel'] == '#incidents'
    lines = slack['text'].split('```\n', 1)[1].rstrip('`').splitlines()
    assert [line.split(':', 1)[0] for line in lines] == ['INCIDENT DECLARED', 'Severity', 'Commander', 'Start time',
                                                         'Impact', 'Status', 'Next update']
    assert_no_secrets(incident, res)

    other = dict(incident, id=incident['id'] + '-3', path=incident['path'] + '-3')
    other['vars'] = dict(incident['vars'], incident_id=other['id'])
    receiver.requests.clear()
    res = run_playbook(str(playbook), comms_vars(other, receiver, severity='SEV3'), timeout=120)
    assert res.rc == 0, res
    assert receiver.by_path('/pd/') == []
    assert receiver.by_path('/services/')[0]['json']['channel'] == '#incidents-low'


def test_delivery_failure_is_recorded_and_does_not_fail(run_playbook, incident, receiver):
    declare(incident, 'SEV2')
    dead = 'http://127.0.0.1:%d/services/T0DEAD00/B0DEAD00/deadS3cretT0ken' % _free_port()
    extra = comms_vars(incident, receiver, test_slack_url=dead, test_hook_url=receiver.url('/fail/hook'),
                       comms_statuspage_api_key_var='no_such_variable')
    res = communicate(run_playbook, extra, 'Mitigating')
    assert res.rc == 0, res
    assert 'FAILED' in res.stdout
    events = [e for e in files.read_jsonl(os.path.join(incident['path'], 'timeline.jsonl')) if e['kind'] == 'comms']
    deliveries = [d for e in events for d in e['data']['deliveries']]
    by_target = {d['target']: d for d in deliveries}
    assert by_target['slack']['ok'] is False and 'refused' in by_target['slack']['error'].lower()
    assert by_target['webhook']['ok'] is False and by_target['webhook']['http_status'] == 500
    assert by_target['statuspage.api_key_var']['ok'] is False
    assert 'no_such_variable' in by_target['statuspage.api_key_var']['error']
    assert len(os.listdir(os.path.join(incident['path'], 'messages'))) == 2  # the files are written regardless
    for text in (res.stdout, json.dumps(events)):
        assert 'deadS3cretT0ken' not in text


def test_check_mode_writes_files_but_delivers_nothing(run_playbook, incident, receiver):
    declare(incident, 'SEV1')
    res = communicate(run_playbook, comms_vars(incident, receiver), 'Investigating', check=True)
    assert res.rc == 0, res
    assert receiver.requests == []
    assert len(os.listdir(os.path.join(incident['path'], 'messages'))) == 2


def test_unknown_status_fails_before_anything(run_playbook, incident):
    declare(incident, 'SEV3')
    res = run_playbook('playbooks/communicate.yml', dict(incident['vars'], status='Fixed'), timeout=60)
    assert res.rc != 0
    assert 'status' in res.stdout
    assert os.listdir(os.path.join(incident['path'], 'messages')) == []
