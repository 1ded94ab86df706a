# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Event source: receive Alertmanager webhooks, put one event per alert on the rulebook's queue.

Event (one per alert):

    {"alert": {"status": "firing", "labels": {...}, "annotations": {...}, "startsAt": "...",
               "endsAt": "...", "fingerprint": "c0ffee...", "generatorURL": "..."},
     "group_key": "{}:{alertname=\"BackendDown\"}", "group_status": "firing",
     "group_labels": {...}, "common_labels": {...}, "common_annotations": {...},
     "receiver": "incident-response", "external_url": "http://...", "alerts_in_group": 1,
     "truncated_alerts": 0}
"""

from __future__ import absolute_import, division, print_function

import asyncio
import hmac
import json
import logging
import os

__metaclass__ = type

DOCUMENTATION = r'''
---
short_description: Receive Alertmanager webhooks (one event per alert)
description:
  - An HTTP server for Alertmanager's webhook receiver (payload version 4). Every alert of a valid
    notification becomes one event with its group key, fingerprint, status, labels and annotations.
  - A payload that is not valid JSON, not an Alertmanager notification, or has an invalid alert gets
    HTTP 400 with the reasons and puts NO event on the queue (all or nothing).
  - With a token, requests without C(Authorization: Bearer <token>) get HTTP 401.
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
    description: Largest accepted request body.
    type: int
    default: 1048576
'''

EXAMPLES = r'''
sources:
  - sre.incident_response.alertmanager:
      host: 127.0.0.1
      port: 5000
'''

ALERT_STATUSES = ('firing', 'resolved')
LOG = logging.getLogger('sre.incident_response.alertmanager')


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
        problems.append('version %r is not supported (Alertmanager webhook version 4)' % (version,))
    if not isinstance(payload.get('groupKey'), str) or not payload.get('groupKey'):
        problems.append('groupKey is missing')
    if payload.get('status') not in ALERT_STATUSES:
        problems.append('status %r is not firing or resolved' % (payload.get('status'),))
    for name in ('groupLabels', 'commonLabels', 'commonAnnotations'):
        _str_map(payload.get(name), name, problems)
    alerts = payload.get('alerts')
    if not isinstance(alerts, list) or not alerts:
        problems.append('alerts must be a non-empty list')
        return problems
    for index, alert in enumerate(alerts):
        where = 'alerts[%d]' % index
        if not isinstance(alert, dict):
            problems.append('%s must be an object' % where)
            continue
        if alert.get('status') not in ALERT_STATUSES:
            problems.append('%s.status %r is not firing or resolved' % (where, alert.get('status')))
        if not isinstance(alert.get('fingerprint'), str) or not alert.get('fingerprint'):
            problems.append('%s.fingerprint is missing' % where)
        labels = _str_map(alert.get('labels'), where + '.labels', problems)
        if not labels.get('alertname'):
            problems.append('%s.labels.alertname is missing' % where)
        _str_map(alert.get('annotations'), where + '.annotations', problems)
    return problems


def events_from_payload(payload):
    """One event per alert of a valid payload."""
    alerts = payload['alerts']
    common = {
        'group_key': payload['groupKey'],
        'group_status': payload['status'],
        'group_labels': payload.get('groupLabels') or {},
        'common_labels': payload.get('commonLabels') or {},
        'common_annotations': payload.get('commonAnnotations') or {},
        'receiver': payload.get('receiver', ''),
        'external_url': payload.get('externalURL', ''),
        'alerts_in_group': len(alerts),
        'truncated_alerts': int(payload.get('truncatedAlerts') or 0),
    }
    events = []
    for alert in alerts:
        event = dict(common)
        event['alert'] = {
            'status': alert['status'],
            'labels': alert.get('labels') or {},
            'annotations': alert.get('annotations') or {},
            'startsAt': alert.get('startsAt', ''),
            'endsAt': alert.get('endsAt', ''),
            'fingerprint': alert['fingerprint'],
            'generatorURL': alert.get('generatorURL', ''),
        }
        events.append(event)
    return events


def authorized(header, token):
    """True when no token is configured or the Authorization header carries it (constant-time compare)."""
    if not token:
        return True
    expected = 'Bearer ' + token
    return hmac.compare_digest((header or '').encode('utf-8'), expected.encode('utf-8'))


def handle_request(body, auth_header, token):
    """(HTTP status, response dict, events) for one request body; pure, for the server and unit tests."""
    if not authorized(auth_header, token):
        return 401, {'error': 'missing or wrong bearer token'}, []
    try:
        payload = json.loads(body.decode('utf-8') if isinstance(body, bytes) else body)
    except (ValueError, UnicodeDecodeError) as exc:
        return 400, {'error': 'the body is not JSON: %s' % exc}, []
    problems = validate_payload(payload)
    if problems:
        return 400, {'error': 'not a valid Alertmanager notification, nothing was queued', 'problems': problems}, []
    events = events_from_payload(payload)
    return 200, {'queued': len(events)}, events


def settings(args):
    args = args or {}
    token = args.get('token') or os.environ.get('EDA_ALERTMANAGER_TOKEN', '')
    return {
        'host': str(args.get('host') or '127.0.0.1'),
        'port': int(args.get('port') or 5000),
        'path': '/' + str(args.get('path') or '/alerts').lstrip('/'),
        'token': str(token),
        'max_bytes': int(args.get('max_bytes') or 1048576),
    }


async def main(queue, args):
    """Entry point called by ansible-rulebook."""
    from aiohttp import web  # ansible-rulebook depends on aiohttp

    conf = settings(args)

    async def receive(request):
        body = await request.read()
        status, answer, events = handle_request(body, request.headers.get('Authorization'), conf['token'])
        if status != 200:
            LOG.warning('alertmanager webhook from %s rejected (%d): %s', request.remote, status, answer.get('error'))
        for event in events:
            await queue.put(event)
        return web.json_response(answer, status=status)

    async def health(request):
        return web.json_response({'status': 'ok'})

    app = web.Application(client_max_size=conf['max_bytes'])
    app.router.add_post(conf['path'], receive)
    if conf['path'] != '/':
        app.router.add_post('/', receive)
    app.router.add_get('/health', health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, conf['host'], conf['port'])
    await site.start()
    LOG.info('alertmanager event source listening on %s:%d%s', conf['host'], conf['port'], conf['path'])
    try:
        await asyncio.Future()
    finally:
        await runner.cleanup()


if __name__ == '__main__':
    # Manual run: python alertmanager.py, then POST a payload; events are printed.
    class _PrintQueue(object):
        async def put(self, event):
            print(json.dumps(event, sort_keys=True))

    asyncio.run(main(_PrintQueue(), {}))
