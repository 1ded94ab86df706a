# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Event source: receive Alertmanager webhooks; hand ansible-rulebook one event per alert group, coalesced.

A receiver that never blocks: the HTTP handler validates the notification and merges it into the
pending batch of its alert group (in memory, bounded); it never waits for ansible-rulebook. One
feeder task hands the oldest pending batch to the rulebook's queue when the queue has room; until
then, later notifications of the same group merge into that batch. Full: 503 with Retry-After
(Alertmanager retries 5xx); too large: 413; not JSON, nested too deep or not a notification: 400.

The event (what rulebooks and playbooks see) holds NO alert text: labels and annotations are
outside input and Ansible templates every string of its extra vars. The batch travels as
base64-encoded JSON that only the alert_intake action decodes, in Python:

    {"format": "sre.incident_response.alertmanager/2", "group_id": "9f86d081884c7d65",
     "status": "firing", "alerts": 3, "firing": 2, "notifications": 5, "payload": "eyJhbGVydHMiOi..."}

payload, decoded: {"group_key", "group_status", "group_labels", "common_labels", "common_annotations",
"receiver", "external_url", "truncated_alerts", "alerts_in_group", "notifications", "first_received",
"last_received", "alerts": [{"status", "labels", "annotations", "startsAt", "endsAt", "fingerprint",
"generatorURL", "fired"}]} -- one entry per fingerprint, the latest state wins; "fired" says the alert
was firing in at least one merged notification.
"""

from __future__ import absolute_import, division, print_function

import asyncio
import base64
import collections
import datetime
import hashlib
import hmac
import json
import logging
import os
import re

__metaclass__ = type

DOCUMENTATION = r'''
---
short_description: Receive Alertmanager webhooks (one coalesced event per alert group)
description:
  - An HTTP server for Alertmanager's webhook receiver (payload version 4). It answers at once and
    never waits for ansible-rulebook; each alert group has at most one pending batch, into which later
    notifications of the group are merged (latest state per fingerprint) until the rulebook takes it.
  - The event carries the batch as base64-encoded JSON (C(payload)); the alert_intake action decodes
    it. No alert label or annotation appears as a string in the event, so nothing can template it.
  - HTTP 400 for a body that is not JSON, nested deeper than O(max_depth), or not a valid Alertmanager
    notification (nothing is kept); 413 for a body over O(max_bytes) or more than O(max_alerts) alerts;
    503 with C(Retry-After) when O(max_groups) groups or O(max_pending_bytes) are waiting; 401 without
    the bearer token.
  - Depends only on aiohttp (a dependency of ansible-rulebook); not on ansible.eda.
options:
  host:
    description: Address to bind.
    type: str
    default: 127.0.0.1
  port:
    description: TCP port to bind.
    type: int
    default: 5000
  path:
    description: URL path of the webhook (POST). C(/) is accepted too.
    type: str
    default: /alerts
  token:
    description: Bearer token the sender must present; empty reads the environment variable
      C(EDA_ALERTMANAGER_TOKEN); empty there too accepts every request (bind to 127.0.0.1 then).
    type: str
    default: ''
  max_bytes:
    description: Largest accepted request body (413 above).
    type: int
    default: 1048576
  max_depth:
    description: Deepest accepted JSON nesting (400 above; an Alertmanager notification is 4 deep).
    type: int
    default: 10
  max_alerts:
    description: Most alerts in one notification (413 above) and in one pending batch (503 above).
    type: int
    default: 2000
  max_groups:
    description: Most alert groups with a pending batch (503 for a new group above).
    type: int
    default: 500
  max_pending_bytes:
    description: Most bytes of alerts pending over all groups (503 above).
    type: int
    default: 67108864
  retry_after:
    description: Seconds in the C(Retry-After) header of a 503.
    type: int
    default: 10
'''

EXAMPLES = r'''
sources:
  - sre.incident_response.alertmanager:
      host: 127.0.0.1
      port: 5000
'''

EVENT_FORMAT = 'sre.incident_response.alertmanager/2'
ALERT_STATUSES = ('firing', 'resolved')
DEFAULTS = {
    'host': '127.0.0.1', 'port': 5000, 'path': '/alerts', 'token': '', 'max_bytes': 1048576, 'max_depth': 10,
    'max_alerts': 2000, 'max_groups': 500, 'max_pending_bytes': 64 * 1048576, 'retry_after': 10,
}
INT_OPTIONS = ('port', 'max_bytes', 'max_depth', 'max_alerts', 'max_groups', 'max_pending_bytes', 'retry_after')
POLL_SECONDS = 0.2  # how often the feeder looks again while the rulebook's queue is full
LOG = logging.getLogger('sre.incident_response.alertmanager')

# JSON strings (escapes included), then innermost bracket pairs: both regexes are linear and run in C.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_INNERMOST = re.compile(r'[\[{][^\[\]{}]*[\]}]')
_BRACKETS = re.compile(r'[\[\]{}]')


def too_deep(text, limit):
    """True when the JSON text nests arrays/objects deeper than `limit` (checked before json.loads recurses).

    Each pass removes the innermost bracket pairs, i.e. one level; `limit` passes must leave no bracket.
    """
    rest = _JSON_STRING.sub('', text)
    for dummy in range(limit):
        rest, count = _INNERMOST.subn('', rest)
        if not count:
            break
    return bool(_BRACKETS.search(rest))


def _str_map(value, name, problems):
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        problems.append('%s must be a map of strings to strings' % name)
        return {}
    return value


def validate_payload(payload):
    """Problems of an Alertmanager webhook payload (empty list: valid)."""
    problems = []
    if not isinstance(payload, dict):
        return ['the body must be a JSON object (an Alertmanager webhook notification)']
    version = payload.get('version')
    if version is not None and str(version) != '4':
        problems.append('version %r is not supported (Alertmanager webhook version 4)' % (str(version)[:20],))
    if not isinstance(payload.get('groupKey'), str) or not payload.get('groupKey'):
        problems.append('groupKey is missing')
    if payload.get('status') not in ALERT_STATUSES:
        problems.append('status is not firing or resolved')
    for name in ('groupLabels', 'commonLabels', 'commonAnnotations'):
        _str_map(payload.get(name), name, problems)
    for name in ('receiver', 'externalURL'):
        if not isinstance(payload.get(name, ''), str):
            problems.append('%s must be a string' % name)
    if not isinstance(payload.get('truncatedAlerts', 0), int):
        problems.append('truncatedAlerts must be a number')
    alerts = payload.get('alerts')
    if not isinstance(alerts, list) or not alerts:
        problems.append('alerts must be a non-empty list')
        return problems
    for index, alert in enumerate(alerts):
        if len(problems) >= 20:
            problems.append('(more problems not listed)')
            break
        where = 'alerts[%d]' % index
        if not isinstance(alert, dict):
            problems.append('%s must be an object' % where)
            continue
        if alert.get('status') not in ALERT_STATUSES:
            problems.append('%s.status is not firing or resolved' % where)
        if not isinstance(alert.get('fingerprint'), str) or not alert.get('fingerprint'):
            problems.append('%s.fingerprint is missing' % where)
        labels = _str_map(alert.get('labels'), where + '.labels', problems)
        if not labels.get('alertname'):
            problems.append('%s.labels.alertname is missing' % where)
        _str_map(alert.get('annotations'), where + '.annotations', problems)
        for name in ('startsAt', 'endsAt', 'generatorURL'):
            if not isinstance(alert.get(name, ''), str):
                problems.append('%s.%s must be a string' % (where, name))
    return problems


def authorized(header, token):
    """True when no token is configured or the Authorization header carries it (constant-time compare)."""
    if not token:
        return True
    expected = 'Bearer ' + token
    return hmac.compare_digest((header or '').encode('utf-8'), expected.encode('utf-8'))


def parse_body(body, conf):
    """(HTTP status, answer, payload) for a request body: 200 with the notification, or 400/413 and None."""
    if len(body) > conf['max_bytes']:
        return 413, {'error': 'the body is larger than %d bytes' % conf['max_bytes']}, None
    try:
        text = body.decode('utf-8') if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        return 400, {'error': 'the body is not UTF-8 JSON'}, None
    if too_deep(text, conf['max_depth']):
        msg = 'the JSON is nested deeper than %d levels (or its brackets do not match), nothing was kept' % conf['max_depth']
        return 400, {'error': msg}, None
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return 400, {'error': 'the body is not JSON: %s' % str(exc)[:200]}, None
    problems = validate_payload(payload)
    if problems:
        return 400, {'error': 'not a valid Alertmanager notification, nothing was kept', 'problems': problems}, None
    if len(payload['alerts']) > conf['max_alerts']:
        return 413, {'error': 'the notification holds %d alerts, more than %d: set max_alerts in Alertmanager\'s '
                              'webhook_config' % (len(payload['alerts']), conf['max_alerts'])}, None
    return 200, {}, payload


def group_id(group_key):
    """A short, template-free name of an alert group (sha256 of its group key)."""
    return hashlib.sha256(group_key.encode('utf-8')).hexdigest()[:16]


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def _size(alert):
    return len(json.dumps(alert, sort_keys=True, ensure_ascii=False))


class Coalescer(object):
    """Pending alert batches, one per alert group, oldest group first; every limit is checked before a merge.

    offer() merges a valid notification (latest state per fingerprint), or refuses it whole (503) when a
    limit would be crossed; take() removes the oldest batch and returns its event. Pure, no I/O, no await.
    """

    def __init__(self, max_groups=500, max_alerts=2000, max_pending_bytes=64 * 1048576, clock=_now):
        self.max_groups = max_groups
        self.max_alerts = max_alerts
        self.max_pending_bytes = max_pending_bytes
        self.clock = clock
        self.pending = collections.OrderedDict()  # group_key -> batch
        self.pending_bytes = 0

    def __len__(self):
        return len(self.pending)

    def stats(self):
        return {'pending_groups': len(self.pending), 'pending_bytes': self.pending_bytes,
                'pending_alerts': sum(len(b['alerts']) for b in self.pending.values())}

    def offer(self, payload):
        """(HTTP status, answer) for a validated notification."""
        key = payload['groupKey']
        batch = self.pending.get(key)
        if batch is None and len(self.pending) >= self.max_groups:
            return 503, {'error': '%d alert groups are waiting for the rulebook: retry later' % len(self.pending)}
        known = batch['alerts'] if batch else {}
        incoming = collections.OrderedDict()
        for alert in payload['alerts']:
            incoming[alert['fingerprint']] = alert  # a fingerprint twice in one notification: the last one wins
        sizes = dict((fp, _size(alert)) for fp, alert in incoming.items())
        count = len(known) + sum(1 for fp in incoming if fp not in known)
        if count > self.max_alerts:
            return 503, {'error': 'the batch of this alert group would hold %d alerts (more than %d) until the '
                                  'rulebook takes it: retry later' % (count, self.max_alerts)}
        total = self.pending_bytes + sum(sizes.values()) - sum(known[fp]['size'] for fp in incoming if fp in known)
        if total > self.max_pending_bytes:
            return 503, {'error': 'alerts pending for the rulebook would exceed %d bytes: retry later'
                                  % self.max_pending_bytes}
        now = self.clock()
        if batch is None:
            batch = {'alerts': collections.OrderedDict(), 'notifications': 0, 'first_received': now}
            self.pending[key] = batch
        batch.update(group_status=payload['status'], group_labels=payload.get('groupLabels') or {},
                     common_labels=payload.get('commonLabels') or {},
                     common_annotations=payload.get('commonAnnotations') or {},
                     receiver=payload.get('receiver') or '', external_url=payload.get('externalURL') or '',
                     truncated_alerts=int(payload.get('truncatedAlerts') or 0),
                     alerts_in_group=len(payload['alerts']), last_received=now)
        batch['notifications'] += 1
        for fp, alert in incoming.items():
            before = batch['alerts'].get(fp)
            entry = {
                'status': alert['status'], 'labels': alert.get('labels') or {},
                'annotations': alert.get('annotations') or {}, 'startsAt': alert.get('startsAt') or '',
                'endsAt': alert.get('endsAt') or '', 'fingerprint': fp, 'generatorURL': alert.get('generatorURL') or '',
                'fired': alert['status'] == 'firing' or bool(before and before['alert']['fired']),
            }
            batch['alerts'][fp] = {'alert': entry, 'size': sizes[fp]}
        self.pending_bytes = total
        return 200, {'accepted': len(incoming), 'group_id': group_id(key), 'pending_groups': len(self.pending)}

    def peek(self):
        """(group_key, event) of the oldest pending batch, or (None, None); take(group_key) removes it."""
        for key, batch in self.pending.items():
            return key, self.event(key, batch)
        return None, None

    def take(self, key):
        batch = self.pending.pop(key)
        self.pending_bytes -= sum(a['size'] for a in batch['alerts'].values())

    @staticmethod
    def event(key, batch):
        alerts = [a['alert'] for a in batch['alerts'].values()]
        payload = dict((k, v) for k, v in batch.items() if k != 'alerts')
        payload.update(group_key=key, alerts=alerts)
        data = json.dumps(payload, sort_keys=True, separators=(',', ':'), ensure_ascii=True).encode('ascii')
        firing = sum(1 for a in alerts if a['status'] == 'firing')
        return {'format': EVENT_FORMAT, 'group_id': group_id(key), 'status': 'firing' if firing else 'resolved',
                'alerts': len(alerts), 'firing': firing, 'notifications': batch['notifications'],
                'payload': base64.b64encode(data).decode('ascii')}


def settings(args):
    """The source's settings from the rulebook's arguments; ValueError naming every bad one."""
    args = args or {}
    conf = dict(DEFAULTS)
    problems = []
    for key in DEFAULTS:
        if args.get(key) not in (None, ''):
            conf[key] = args[key]
    conf['token'] = str(conf['token'] or os.environ.get('EDA_ALERTMANAGER_TOKEN', ''))
    for key in INT_OPTIONS:
        try:
            conf[key] = int(conf[key])
        except (TypeError, ValueError):
            problems.append('%s must be a whole number, got %r' % (key, conf[key]))
            continue
        if conf[key] < 1:
            problems.append('%s must be 1 or more, got %d' % (key, conf[key]))
    if problems:
        raise ValueError('sre.incident_response.alertmanager: ' + '; '.join(problems))
    conf['host'] = str(conf['host'])
    conf['path'] = '/' + str(conf['path']).lstrip('/')
    return conf


def _queue_full(queue):
    """Whether the rulebook's queue is full (ansible-rulebook wraps its asyncio.Queue(1) in a FilteredQueue)."""
    inner = getattr(queue, 'queue', queue)
    full = getattr(inner, 'full', None)
    return bool(full()) if callable(full) else False


async def feed(queue, coalescer, wake, poll=POLL_SECONDS):
    """Hand the oldest pending batch to the rulebook whenever its queue has room; runs until cancelled.

    A batch leaves the coalescer only when the queue accepts it: until then, alerts of its group merge in.
    """
    while True:
        if not len(coalescer):
            wake.clear()
            await wake.wait()
            continue
        if _queue_full(queue):
            await asyncio.sleep(poll)
            continue
        key, event = coalescer.peek()
        put_nowait = getattr(queue, 'put_nowait', None)
        if put_nowait is None:
            coalescer.take(key)
            await queue.put(event)
        else:
            try:
                put_nowait(event)
            except asyncio.QueueFull:
                await asyncio.sleep(poll)
                continue
            coalescer.take(key)
        LOG.info('alert group %s handed to the rulebook: %d alerts (%d firing) from %d notifications',
                 event['group_id'], event['alerts'], event['firing'], event['notifications'])


def make_app(conf, coalescer, wake):
    """The aiohttp application; the handler never awaits the rulebook's queue."""
    from aiohttp import web  # ansible-rulebook depends on aiohttp

    def answer(request, status, body):
        if status != 200:
            LOG.warning('alertmanager webhook from %s answered %d: %s', request.remote, status, body.get('error'))
        headers = {'Retry-After': str(conf['retry_after'])} if status == 503 else None
        return web.json_response(body, status=status, headers=headers)

    async def receive(request):
        if not authorized(request.headers.get('Authorization'), conf['token']):
            return answer(request, 401, {'error': 'missing or wrong bearer token'})
        if request.content_length is not None and request.content_length > conf['max_bytes']:
            return answer(request, 413, {'error': 'the body is larger than %d bytes' % conf['max_bytes']})
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return answer(request, 413, {'error': 'the body is larger than %d bytes' % conf['max_bytes']})
        status, body, payload = parse_body(body, conf)
        if status == 200:
            status, body = coalescer.offer(payload)
            if status == 200:
                wake.set()
        return answer(request, status, body)

    async def health(request):
        return web.json_response(dict(coalescer.stats(), status='ok'))

    app = web.Application(client_max_size=conf['max_bytes'])
    app.router.add_post(conf['path'], receive)
    if conf['path'] != '/':
        app.router.add_post('/', receive)
    app.router.add_get('/health', health)
    return app


async def main(queue, args):
    """Entry point called by ansible-rulebook: serve until cancelled; a feeder task fills `queue`."""
    from aiohttp import web

    conf = settings(args)
    coalescer = Coalescer(conf['max_groups'], conf['max_alerts'], conf['max_pending_bytes'])
    wake = asyncio.Event()
    runner = web.AppRunner(make_app(conf, coalescer, wake), access_log=None)
    await runner.setup()
    feeder = asyncio.ensure_future(feed(queue, coalescer, wake))
    try:
        site = web.TCPSite(runner, conf['host'], conf['port'])
        await site.start()
        LOG.info('alertmanager event source listening on %s:%d%s', conf['host'], conf['port'], conf['path'])
        await feeder
    finally:
        feeder.cancel()
        if coalescer.stats()['pending_groups']:
            LOG.warning('alertmanager event source stopped with %s (Alertmanager re-sends them on its next '
                        'group_interval/repeat_interval)', coalescer.stats())
        await runner.cleanup()


if __name__ == '__main__':
    # Manual run: python alertmanager.py, then POST a payload; events are printed.
    class _PrintQueue(object):
        async def put(self, event):
            print(json.dumps(event, sort_keys=True))

    asyncio.run(main(_PrintQueue(), {}))
