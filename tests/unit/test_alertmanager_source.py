"""Unit tests of the Alertmanager event source (extensions/eda/plugins/event_source/alertmanager.py):
payload validation, one event per alert, bearer token, and the real HTTP server on 127.0.0.1."""
import asyncio
import importlib.util
import json
import os
import socket
import urllib.error
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = importlib.util.spec_from_file_location(
    'alertmanager_source', os.path.join(ROOT, 'extensions/eda/plugins/event_source/alertmanager.py'))
src = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(src)


def payload(**over):
    body = {
        'version': '4', 'groupKey': '{}:{service="backend"}', 'status': 'firing', 'receiver': 'incident-response',
        'groupLabels': {'service': 'backend'}, 'commonLabels': {'service': 'backend', 'severity': 'critical'},
        'commonAnnotations': {}, 'externalURL': 'http://127.0.0.1:9093', 'truncatedAlerts': 0,
        'alerts': [
            {'status': 'firing', 'fingerprint': 'aaa', 'labels': {'alertname': 'BackendDown', 'service': 'backend'},
             'annotations': {'summary': 'down'}, 'startsAt': '2026-12-01T03:11:40Z', 'endsAt': '0001-01-01T00:00:00Z',
             'generatorURL': 'http://127.0.0.1:9090/graph'},
            {'status': 'resolved', 'fingerprint': 'bbb',
             'labels': {'alertname': 'BackendHighErrorRate', 'service': 'backend', 'path': '/api/orders'},
             'annotations': {}, 'startsAt': '2026-12-01T03:10:00Z', 'endsAt': '2026-12-01T03:12:00Z'},
        ],
    }
    body.update(over)
    return body


def test_one_event_per_alert_with_group_key_fingerprint_status_labels():
    status, answer, events = src.handle_request(json.dumps(payload()), None, '')
    assert status == 200 and answer == {'queued': 2}
    assert [e['alert']['fingerprint'] for e in events] == ['aaa', 'bbb']
    assert [e['alert']['status'] for e in events] == ['firing', 'resolved']
    assert all(e['group_key'] == '{}:{service="backend"}' for e in events)
    assert events[1]['alert']['labels']['path'] == '/api/orders'
    assert events[0]['alerts_in_group'] == 2 and events[0]['group_labels'] == {'service': 'backend'}


@pytest.mark.parametrize('body, word', [
    ('not json', 'not JSON'),
    (json.dumps([1, 2]), 'JSON object'),
    (json.dumps(payload(groupKey='')), 'groupKey'),
    (json.dumps(payload(status='pending')), 'status'),
    (json.dumps(payload(alerts=[])), 'non-empty'),
    (json.dumps(payload(version='3')), 'version'),
    (json.dumps(payload(alerts=[{'status': 'firing', 'labels': {'alertname': 'X'}}])), 'fingerprint'),
    (json.dumps(payload(alerts=[{'status': 'firing', 'fingerprint': 'x', 'labels': {'service': 'b'}}])), 'alertname'),
    (json.dumps(payload(alerts=[{'status': 'firing', 'fingerprint': 'x', 'labels': {'alertname': 1}}])), 'strings'),
])
def test_bad_payload_is_400_and_queues_nothing(body, word):
    status, answer, events = src.handle_request(body, None, '')
    assert status == 400 and events == []
    assert word in json.dumps(answer)


def test_one_bad_alert_rejects_the_whole_notification():
    body = payload()
    body['alerts'].append({'status': 'firing', 'labels': {'alertname': 'X'}})
    status, dummy, events = src.handle_request(json.dumps(body), None, '')
    assert status == 400 and events == []


def test_bearer_token():
    body = json.dumps(payload())
    assert src.handle_request(body, None, 's3cret')[0] == 401
    assert src.handle_request(body, 'Bearer wrong', 's3cret')[0] == 401
    assert src.handle_request(body, 'Bearer s3cret', 's3cret')[0] == 200


def test_settings_default_to_loopback(monkeypatch):
    monkeypatch.delenv('EDA_ALERTMANAGER_TOKEN', raising=False)
    conf = src.settings({})
    assert conf['host'] == '127.0.0.1' and conf['port'] == 5000 and conf['path'] == '/alerts' and conf['token'] == ''
    monkeypatch.setenv('EDA_ALERTMANAGER_TOKEN', 'from-env')
    assert src.settings({'port': '5400'})['token'] == 'from-env' and src.settings({'port': '5400'})['port'] == 5400


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _post(url, body, token=None):
    req = urllib.request.Request(url, data=body.encode(), method='POST', headers={'Content-Type': 'application/json'})
    if token:
        req.add_header('Authorization', 'Bearer ' + token)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_server_binds_loopback_and_queues_only_valid_notifications():
    pytest.importorskip('aiohttp')
    port = _free_port()

    async def scenario():
        queue = asyncio.Queue()
        task = asyncio.ensure_future(src.main(queue, {'port': port, 'token': 'tok'}))
        url = 'http://127.0.0.1:%d/alerts' % port
        loop = asyncio.get_running_loop()
        for _ in range(100):
            await asyncio.sleep(0.05)
            try:
                with socket.create_connection(('127.0.0.1', port), timeout=1):
                    break
            except OSError:
                continue
        codes = []
        codes.append(await loop.run_in_executor(None, _post, url, json.dumps(payload()), None))
        codes.append(await loop.run_in_executor(None, _post, url, '{"alerts": "x"}', 'tok'))
        codes.append(await loop.run_in_executor(None, _post, url, json.dumps(payload()), 'tok'))
        events = []
        while not queue.empty():
            events.append(queue.get_nowait())
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        return codes, events

    codes, events = asyncio.run(scenario())
    assert codes == [401, 400, 200]
    assert [e['alert']['fingerprint'] for e in events] == ['aaa', 'bbb']
