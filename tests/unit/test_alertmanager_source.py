"""Unit tests of the Alertmanager event source (extensions/eda/plugins/event_source/alertmanager.py):
payload validation, limits (depth, size, alerts), coalescing per alert group, the template-free event, the
bearer token, and the real HTTP server on 127.0.0.1 in front of a rulebook-like queue (asyncio.Queue(1), as
ansible-rulebook gives its sources) that is busy: the server answers every request anyway.

Every request has a client timeout and every wait loop a bound: nothing here can hang, and no assertion is on
wall time."""
import asyncio
import base64
import importlib.util
import json
import os
import socket

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = importlib.util.spec_from_file_location(
    'alertmanager_source', os.path.join(ROOT, 'extensions/eda/plugins/event_source/alertmanager.py'))
src = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(src)

CONF = src.settings({})
HOSTILE_LABEL = "{{ lookup('pipe','id > /tmp/should-not-exist') }}"


def alert(fingerprint, status='firing', alertname='BackendDown', **labels):
    lab = {'alertname': alertname, 'service': 'backend'}
    lab.update(labels)
    return {'status': status, 'fingerprint': fingerprint, 'labels': lab, 'annotations': {'summary': 'down'},
            'startsAt': '2026-12-01T03:11:40Z', 'endsAt': '0001-01-01T00:00:00Z',
            'generatorURL': 'http://127.0.0.1:9090/graph'}


def payload(group='{}:{service="backend"}', alerts=None, **over):
    body = {
        'version': '4', 'groupKey': group, 'status': 'firing', 'receiver': 'incident-response',
        'groupLabels': {'service': 'backend'}, 'commonLabels': {'service': 'backend', 'severity': 'critical'},
        'commonAnnotations': {}, 'externalURL': 'http://127.0.0.1:9093', 'truncatedAlerts': 0,
        'alerts': alerts if alerts is not None else [
            alert('aaa'),
            alert('bbb', status='resolved', alertname='BackendHighErrorRate', path='/api/orders')],
    }
    body.update(over)
    return body


def decode(event):
    return json.loads(base64.b64decode(event['payload']))


def drain(coalescer):
    events = []
    for dummy in range(1000):
        key, event = coalescer.peek()
        if key is None:
            break
        coalescer.take(key)
        events.append(event)
    return events


# --- parsing and validation -----------------------------------------------------------------------------


def test_valid_notification_parses():
    status, dummy, body = src.parse_body(json.dumps(payload()).encode(), CONF)
    assert status == 200 and [a['fingerprint'] for a in body['alerts']] == ['aaa', 'bbb']


@pytest.mark.parametrize('body, word', [
    ('not json', 'not JSON'),
    ('\xff', 'UTF-8'),
    (json.dumps([1, 2]), 'JSON object'),
    (json.dumps(payload(groupKey='')), 'groupKey'),
    (json.dumps(payload(status='pending')), 'status'),
    (json.dumps(payload(alerts=[])), 'non-empty'),
    (json.dumps(payload(version='3')), 'version'),
    (json.dumps(payload(alerts=[{'status': 'firing', 'labels': {'alertname': 'X'}}])), 'fingerprint'),
    (json.dumps(payload(alerts=[{'status': 'firing', 'fingerprint': 'x', 'labels': {'service': 'b'}}])), 'alertname'),
    (json.dumps(payload(alerts=[{'status': 'firing', 'fingerprint': 'x', 'labels': {'alertname': 1}}])), 'strings'),
    (json.dumps(payload(alerts=[{'status': 'firing', 'fingerprint': 'x', 'labels': {'alertname': 'A', 'x': {'y': 'z'}}}])), 'strings'),
])
def test_bad_payload_is_400(body, word):
    status, answer, parsed = src.parse_body(body.encode('latin-1') if body == '\xff' else body, CONF)
    assert status == 400 and parsed is None
    assert word in json.dumps(answer)


def test_one_bad_alert_rejects_the_whole_notification():
    body = payload()
    body['alerts'].append({'status': 'firing', 'labels': {'alertname': 'X'}})
    assert src.parse_body(json.dumps(body), CONF)[0] == 400


def test_the_list_of_problems_is_bounded():
    body = payload(alerts=[{'status': 'x'}] * 500)
    status, answer, dummy = src.parse_body(json.dumps(body), CONF)
    assert status == 400 and len(answer['problems']) <= 22


@pytest.mark.parametrize('depth, deep', [(1, False), (4, False), (10, False), (11, True), (200000, True)])
def test_depth_is_measured_before_json_recurses(depth, deep):
    text = '[' * depth + ']' * depth
    assert src.too_deep(text, 10) is deep


def test_brackets_inside_strings_do_not_count():
    text = json.dumps({'a': '[[[[[[[[[[[[[[[[{{{{{{{{{{{', 'b': 'x\\"[[[[[[[[[[[[[[[[[[[[[[[['})
    assert src.too_deep(text, 2) is False
    assert src.too_deep('{"a": {"b": "}}}}}}"}}', 2) is False
    assert src.too_deep('{"a": {"b": {"c": 1}}}', 2) is True


def test_deep_json_is_400_not_a_recursion_error():
    status, answer, parsed = src.parse_body(('[' * 100000 + ']' * 100000).encode(), CONF)
    assert status == 400 and 'deeper than 10' in answer['error'] and parsed is None
    deep_labels = payload()
    deep_labels['alerts'][0]['labels'] = {'alertname': 'A', 'x': json.loads('[' * 20 + ']' * 20)}
    assert src.parse_body(json.dumps(deep_labels), CONF)[0] == 400


def test_too_large_and_too_many_alerts_are_413():
    conf = dict(CONF, max_bytes=1000, max_alerts=3)
    assert src.parse_body(b' ' * 1001, conf)[0] == 413
    many = payload(alerts=[alert('f%d' % k) for k in range(4)])
    status, answer, dummy = src.parse_body(json.dumps(many), dict(CONF, max_alerts=3))
    assert status == 413 and 'max_alerts' in answer['error']


def test_bearer_token():
    assert src.authorized(None, '') is True
    assert src.authorized(None, 's3cret') is False
    assert src.authorized('Bearer wrong', 's3cret') is False
    assert src.authorized('Bearer s3cret', 's3cret') is True


def test_settings_default_to_loopback_and_refuse_bad_limits(monkeypatch):
    monkeypatch.delenv('EDA_ALERTMANAGER_TOKEN', raising=False)
    conf = src.settings({})
    assert conf['host'] == '127.0.0.1' and conf['port'] == 5000 and conf['path'] == '/alerts' and conf['token'] == ''
    monkeypatch.setenv('EDA_ALERTMANAGER_TOKEN', 'from-env')
    assert src.settings({'port': '5400'})['token'] == 'from-env' and src.settings({'port': '5400'})['port'] == 5400
    with pytest.raises(ValueError, match='max_depth must be a whole number.*max_groups must be 1 or more'):
        src.settings({'max_groups': 0, 'max_depth': 'deep'})


# --- coalescing -----------------------------------------------------------------------------------------


def test_one_event_per_group_holding_every_alert_latest_state_wins():
    c = src.Coalescer()
    assert c.offer(payload(alerts=[alert('aaa'), alert('bbb')]))[0] == 200
    assert c.offer(payload(alerts=[alert('aaa', status='resolved'), alert('ccc')]))[0] == 200
    events = drain(c)
    assert len(events) == 1
    event = events[0]
    assert event['alerts'] == 3 and event['firing'] == 2 and event['notifications'] == 2 and event['status'] == 'firing'
    batch = decode(event)
    assert batch['group_key'] == '{}:{service="backend"}' and batch['notifications'] == 2
    by_fp = dict((a['fingerprint'], a) for a in batch['alerts'])
    assert sorted(by_fp) == ['aaa', 'bbb', 'ccc']
    assert by_fp['aaa']['status'] == 'resolved' and by_fp['aaa']['fired'] is True, 'a flap in the batch is kept'
    assert by_fp['bbb']['fired'] is True and by_fp['ccc']['status'] == 'firing'
    assert c.stats() == {'pending_groups': 0, 'pending_bytes': 0, 'pending_alerts': 0}


def test_groups_are_handed_over_oldest_first():
    c = src.Coalescer()
    for group in ('A', 'B', 'A', 'C', 'B'):
        assert c.offer(payload(group=group))[0] == 200
    assert [decode(e)['group_key'] for e in drain(c)] == ['A', 'B', 'C']


def test_limits_answer_503_and_keep_what_is_pending():
    c = src.Coalescer(max_groups=2, max_alerts=3, max_pending_bytes=100000)
    assert c.offer(payload(group='A', alerts=[alert('1'), alert('2')]))[0] == 200
    assert c.offer(payload(group='B'))[0] == 200
    status, answer = c.offer(payload(group='C'))
    assert status == 503 and '2 alert groups' in answer['error']
    # a group already pending still merges (re-sends of its alerts do not grow it) ...
    assert c.offer(payload(group='A', alerts=[alert('1', status='resolved')]))[0] == 200
    # ... up to max_alerts
    assert c.offer(payload(group='A', alerts=[alert('3'), alert('4')]))[0] == 503
    small = src.Coalescer()
    small.offer(payload(group='A', alerts=[alert('1'), alert('2')]))
    small.max_pending_bytes = small.pending_bytes
    status, answer = small.offer(payload(group='Z', alerts=[alert('9')]))
    assert status == 503 and 'bytes' in answer['error']
    events = drain(c)
    assert [decode(e)['group_key'] for e in events] == ['A', 'B']
    assert sorted(a['fingerprint'] for a in decode(events[0])['alerts']) == ['1', '2']
    assert c.offer(payload(group='C'))[0] == 200, 'room again once the rulebook took the batches'


def test_pending_bytes_follow_merges_and_hand_overs():
    c = src.Coalescer()
    c.offer(payload(alerts=[alert('a')]))
    one = c.pending_bytes
    c.offer(payload(alerts=[alert('a')]))
    assert c.pending_bytes == one, 'a re-sent alert replaces itself'
    c.offer(payload(alerts=[alert('b')]))
    assert c.pending_bytes > one
    drain(c)
    assert c.pending_bytes == 0


def test_the_event_holds_no_template_syntax_and_the_payload_is_verbatim():
    hostile = alert('f1', alertname='Pwn{{ 6*7 }}', team=HOSTILE_LABEL, owner="{% set x = lookup('pipe','id') %}")
    hostile['annotations'] = {'summary': 'sum {{ 7*7 }}', 'note': '{# c #} ${x} `id`'}
    c = src.Coalescer()
    assert c.offer(payload(group='{}:{team="{{ x }}"}', alerts=[hostile]))[0] == 200
    dummy, event = c.peek()
    text = json.dumps(event)
    for marker in ('{{', '{%', '{#', 'lookup', 'pipe'):
        assert marker not in text
    assert set(event) == {'format', 'group_id', 'status', 'alerts', 'firing', 'notifications', 'payload'}
    batch = decode(event)
    assert batch['group_key'] == '{}:{team="{{ x }}"}'
    assert batch['alerts'][0]['labels']['team'] == HOSTILE_LABEL
    assert batch['alerts'][0]['annotations']['summary'] == 'sum {{ 7*7 }}'


def test_format_matches_the_intake():
    from ansible_collections.sre.incident_response.plugins.plugin_utils.comms import alerts
    assert src.EVENT_FORMAT == alerts.EVENT_FORMAT


# --- the real HTTP server ---------------------------------------------------------------------------------


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


async def _started(queue, args):
    port = _free_port()
    task = asyncio.ensure_future(src.main(queue, dict(args, port=port)))
    for dummy in range(200):
        await asyncio.sleep(0.05)
        if task.done():
            task.result()
        try:
            reader, writer = await asyncio.open_connection('127.0.0.1', port)
            writer.close()
            break
        except OSError:
            continue
    return task, 'http://127.0.0.1:%d' % port


async def _stopped(task):
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


async def _post(session, url, body, token='tok', timeout=30, **kwargs):
    import aiohttp
    headers = {'Content-Type': 'application/json'}
    if token:
        headers['Authorization'] = 'Bearer ' + token
    data = body if isinstance(body, (bytes, str)) or body is None or hasattr(body, '__aiter__') else json.dumps(body)
    async with session.post(url + '/alerts', data=data, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout),
                            **kwargs) as resp:
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


def _take_all(queue):
    events = []
    for dummy in range(10000):
        if queue.empty():
            break
        events.append(queue.get_nowait())
    return events


async def _until(predicate, tries=200, pause=0.05):
    for dummy in range(tries):
        if predicate():
            return True
        await asyncio.sleep(pause)
    return predicate()


def test_server_binds_loopback_answers_401_400_200():
    aiohttp = pytest.importorskip('aiohttp')

    async def scenario():
        queue = asyncio.Queue(1)
        task, url = await _started(queue, {'token': 'tok'})
        try:
            async with aiohttp.ClientSession() as session:
                codes = [(await _post(session, url, payload(), token=None))[0],
                         (await _post(session, url, '{"alerts": "x"}'))[0],
                         (await _post(session, url, payload()))[0]]
            await _until(lambda: not queue.empty())
            return codes, _take_all(queue)
        finally:
            await _stopped(task)

    codes, events = asyncio.run(scenario())
    assert codes == [401, 400, 200]
    assert len(events) == 1 and [a['fingerprint'] for a in decode(events[0])['alerts']] == ['aaa', 'bbb']


def test_busy_rulebook_200_alerts_and_50_concurrent_posts_all_answered_coalesced_nothing_lost():
    """The rulebook is busy (its queue of one is full and nobody takes from it): one POST of 200 alerts and 50
    concurrent POSTs of that group are all answered 200; once the rulebook takes events again the group is ONE
    event holding every alert (nothing lost), and another group comes right after it, not behind 50 runs."""
    aiohttp = pytest.importorskip('aiohttp')
    group = '{}:{service="backend"}'
    base = [alert('big%03d' % k) for k in range(200)]

    async def scenario():
        queue = asyncio.Queue(1)
        queue.put_nowait({'busy': 'an event the rulebook has not taken yet'})
        task, url = await _started(queue, {'token': 'tok'})
        try:
            async with aiohttp.ClientSession() as session:
                big = await _post(session, url, payload(group, alerts=base))
                # Alertmanager sends the whole group every time: the 200 alerts (some resolved by now) and a new one
                posts = [_post(session, url, payload(group, alerts=[
                    alert(a['fingerprint'], status='resolved' if (n + k) % 7 == 0 else 'firing')
                    for k, a in enumerate(base)] + [alert('new%02d' % n)])) for n in range(50)]
                answers = await asyncio.gather(*posts, return_exceptions=True)
                other = await _post(session, url, payload('{}:{service="db"}', alerts=[alert('db1')]))
                async with session.get(url + '/health', timeout=aiohttp.ClientTimeout(total=30)) as resp:
                    health = await resp.json()
            before = _take_all(queue)  # the rulebook is free again: take what the source hands over
            events = []
            for dummy in range(200):
                await asyncio.sleep(0.05)
                events.extend(_take_all(queue))
                if len(events) >= 2:
                    break
            return big, answers, other, health, before, events
        finally:
            await _stopped(task)

    big, answers, other, health, before, events = asyncio.run(scenario())
    assert big[0] == 200 and big[2]['accepted'] == 200
    assert [a if isinstance(a, Exception) else a[0] for a in answers] == [200] * 50
    assert other[0] == 200
    assert health['pending_groups'] == 2 and health['pending_alerts'] == 200 + 50 + 1
    assert before == [{'busy': 'an event the rulebook has not taken yet'}]
    assert [decode(e)['group_key'] for e in events] == [group, '{}:{service="db"}']
    batch = decode(events[0])
    assert events[0]['notifications'] == 51 and events[0]['alerts'] == 250
    expected = set(['big%03d' % k for k in range(200)] + ['new%02d' % n for n in range(50)])
    assert set(a['fingerprint'] for a in batch['alerts']) == expected
    assert all(a['fired'] for a in batch['alerts'])


def test_full_source_answers_503_with_retry_after_then_accepts_the_retry():
    aiohttp = pytest.importorskip('aiohttp')

    async def scenario():
        queue = asyncio.Queue(1)
        queue.put_nowait({'busy': True})
        task, url = await _started(queue, {'token': 'tok', 'max_groups': 2, 'retry_after': 7})
        try:
            async with aiohttp.ClientSession() as session:
                first = [(await _post(session, url, payload(group=g)))[0] for g in ('A', 'B')]
                full = await _post(session, url, payload(group='C'))
                queue.get_nowait()  # the rulebook takes its event: the source hands over A
                await _until(queue.full)
                retry = await _post(session, url, payload(group='C'))
            return first, full, retry
        finally:
            await _stopped(task)

    first, full, retry = asyncio.run(scenario())
    assert first == [200, 200]
    assert full[0] == 503 and full[1]['Retry-After'] == '7' and 'retry later' in full[2]['error']
    assert retry[0] == 200


def test_deep_and_oversized_bodies_are_400_and_413_and_the_server_keeps_serving():
    aiohttp = pytest.importorskip('aiohttp')

    async def chunks():
        for dummy in range(40):
            yield b' ' * 1024

    async def scenario():
        queue = asyncio.Queue(1)
        task, url = await _started(queue, {'token': 'tok', 'max_bytes': 32768})
        try:
            async with aiohttp.ClientSession() as session:
                deep = await _post(session, url, '[' * 15000 + ']' * 15000)
                deep_object = await _post(session, url, '{"a":' * 5000 + '1' + '}' * 5000)
                large = await _post(session, url, b' ' * 40000)
                chunked = await _post(session, url, chunks())
                fine = await _post(session, url, payload())
            return deep, deep_object, large, chunked, fine
        finally:
            await _stopped(task)

    deep, deep_object, large, chunked, fine = asyncio.run(scenario())
    assert deep[0] == 400 and 'deeper' in deep[2]['error']
    assert deep_object[0] == 400
    assert large[0] == 413 and chunked[0] == 413
    assert fine[0] == 200


def test_works_with_ansible_rulebooks_filtered_queue():
    engine = pytest.importorskip('ansible_rulebook.engine')

    async def scenario():
        inner = asyncio.Queue(1)
        queue = engine.FilteredQueue([], inner)
        c = src.Coalescer()
        wake = asyncio.Event()
        feeder = asyncio.ensure_future(src.feed(queue, c, wake, poll=0.01))
        try:
            for group in ('A', 'B', 'A'):
                c.offer(payload(group=group))
                wake.set()
                await asyncio.sleep(0.05)
            got = [inner.get_nowait()]
            await _until(lambda: not inner.empty())
            got.append(inner.get_nowait())
            return got, len(c)
        finally:
            feeder.cancel()

    got, left = asyncio.run(scenario())
    assert [decode(e)['group_key'] for e in got] == ['A', 'B'] and left == 1, 'A again waits behind B'
    assert got[1]['notifications'] == 1
