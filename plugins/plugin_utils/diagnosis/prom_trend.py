# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Trends from Prometheus: bounded range queries -> ordinary findings (`trend.memory`, `trend.latency`, ...).

A single probe sees the present ("memory at 85 %"); memory_growth and gradual_degradation are about change
("memory grew 40 % in 30 minutes"). For a service with `prometheus: {url: ...}` in incident_services, each
trend runs one range query over the window (at most `max_points` samples, a timeout per query) and becomes a
finding whose evidence carries the query, the window and the lowest and last values.

Pure Python (standard library): `evaluate_trend` is the decision (unit-tested); `range_query` the I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import math
import time
from concurrent.futures import ThreadPoolExecutor

from urllib.parse import urlencode, urlsplit, urlunsplit

from ansible.module_utils.urls import open_url

from ansible_collections.sre.incident_response.plugins.module_utils.findings import make_finding

# Default trends by service kind; {name} is the service name (the `service` label on its scrape targets).
DEFAULT_TRENDS = {
    'backend': [
        {'name': 'memory', 'unit': 'bytes',
         'query': 'max(process_resident_memory_bytes{{service="{name}"}})'},
        {'name': 'latency', 'unit': 'seconds',
         'query': 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{service="{name}"}}[5m])))'},
    ],
    'postgres': [
        {'name': 'connections', 'unit': 'connections', 'query': 'sum(pg_stat_activity_count{{service="{name}"}})'},
    ],
    'redis': [
        {'name': 'memory', 'unit': 'bytes', 'query': 'max(redis_memory_used_bytes{{service="{name}"}})'},
    ],
}


def trends_for(service):
    """The trends of one incident_services entry: its prometheus.trends, else the defaults of its kind."""
    prom = service.get('prometheus') or {}
    if prom.get('trends'):
        return [dict(t) for t in prom['trends']]
    return [dict(t, query=t['query'].format(name=service.get('name', ''))) for t in DEFAULT_TRENDS.get(service.get('kind'), [])]


def _fmt(value, unit):
    if unit == 'bytes':
        return '%.0f MiB' % (value / 1048576.0)
    if unit == 'seconds':
        return '%.0f ms' % (value * 1000.0)
    return '%g %s' % (round(value, 2), unit or '')


def evaluate_trend(values, warn_pct=25.0, crit_pct=50.0, unit=''):
    """Growth of a series [(ts, value), ...]: from its lowest point inside the window to its last sample.

    The lowest point, not the first sample: a leak that started after a restart inside the window still shows
    as growth, and an old spike that a restart already cleared does not hide it. Returns {status, growth_pct,
    first (the lowest value), last, minutes (since the lowest point), text}. Fewer than 2 samples or a zero
    baseline: unknown. Growth at or above crit_pct: crit; warn_pct: warn; otherwise ok (a fall is ok).
    """
    points = [(float(t), float(v)) for t, v in values if not math.isnan(float(v))]
    if len(points) < 2:
        return {'status': 'unknown', 'growth_pct': None, 'first': None, 'last': None, 'minutes': 0,
                'text': 'not enough samples for a trend (%d)' % len(points)}
    t1, last = points[-1]
    t0, low = min(points[:-1], key=lambda p: p[1])
    if last <= low:
        # falling or flat: report the change over the whole window
        t0, low = points[0]
    minutes = int(round((t1 - t0) / 60.0))
    if low <= 0:
        return {'status': 'unknown', 'growth_pct': None, 'first': low, 'last': last, 'minutes': minutes,
                'text': 'no baseline (starts at %s)' % _fmt(low, unit)}
    growth = (last - low) / low * 100.0
    status = 'crit' if growth >= crit_pct else ('warn' if growth >= warn_pct else 'ok')
    verb = 'grew' if growth >= 0 else 'fell'
    text = '%s %.0f %% in %d minutes (%s -> %s)' % (verb, abs(growth), max(minutes, 1), _fmt(low, unit), _fmt(last, unit))
    return {'status': status, 'growth_pct': round(growth, 1), 'first': low, 'last': last, 'minutes': minutes,
            'text': text}


def public_url(url):
    """The URL without user:password (for evidence)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ''
    if parts.port:
        netloc += ':%d' % parts.port
    return urlunsplit((parts.scheme, netloc, parts.path, '', ''))


def range_query(url, query, window_minutes, timeout=5.0, max_points=120, token='', now=None):
    """One bounded /api/v1/query_range call; returns (values of the first series, params) or raises."""
    now = now or time.time()
    window = max(1, int(window_minutes)) * 60
    step = max(1, int(math.ceil(window / float(max(2, int(max_points)) - 1))))
    # start a whole number of steps before now, so the last sample is now (not up to a step before it)
    span = step * (window // step)
    params = {'query': query, 'start': '%.3f' % (now - span), 'end': '%.3f' % now, 'step': '%ds' % step,
              'timeout': '%ds' % max(1, int(timeout))}
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.hostname + (':%d' % parts.port if parts.port else ''),
                       parts.path.rstrip('/'), '', ''))
    headers = {}
    if token:
        headers['Authorization'] = 'Bearer %s' % token
    elif parts.username:
        cred = '%s:%s' % (parts.username, parts.password or '')
        headers['Authorization'] = 'Basic %s' % base64.b64encode(cred.encode('utf-8')).decode('ascii')
    response = open_url(base + '/api/v1/query_range?' + urlencode(params), headers=headers, timeout=timeout)
    try:
        body = json.loads(response.read(4 * 1024 * 1024).decode('utf-8'))
    finally:
        response.close()
    if body.get('status') != 'success':
        raise ValueError('Prometheus answered %s: %s' % (body.get('status'), body.get('error')))
    result = body.get('data', {}).get('result') or []
    values = result[0].get('values', [])[:max_points + 1] if result else []
    return values, params


def probe_service(host, service, window_minutes=30, timeout=5.0, max_points=120, warn_pct=25.0, crit_pct=50.0,
                  token='', query_fn=range_query):
    """Findings of one service's trends (an unreachable Prometheus is an unknown finding, never a crash)."""
    prom = service.get('prometheus') or {}
    url = prom.get('url')
    findings = []
    for trend in trends_for(service):
        check = 'trend.%s' % trend['name']
        evidence = {'prometheus': public_url(url), 'query': trend['query'], 'window_minutes': int(window_minutes),
                    'max_points': int(max_points), 'kind': service.get('kind')}
        try:
            values, params = query_fn(url, trend['query'], window_minutes, timeout=timeout, max_points=max_points,
                                      token=token)
            evidence.update(step=params['step'], samples=len(values))
        except Exception as exc:  # unreachable, timeout, bad query: a finding, not a failed play
            findings.append(make_finding(check, host, service.get('name'), 'unknown', '%s %s: Prometheus query failed: %s' % (
                service.get('name'), trend['name'], str(exc)[:200]), evidence))
            continue
        verdict = evaluate_trend(values, float(trend.get('warn_growth_pct', warn_pct)),
                                 float(trend.get('crit_growth_pct', crit_pct)), trend.get('unit', ''))
        evidence.update(first=verdict['first'], last=verdict['last'], growth_pct=verdict['growth_pct'],
                        minutes=verdict['minutes'])
        findings.append(make_finding(check, host, service.get('name'), verdict['status'],
                                     '%s %s %s' % (service.get('name'), trend['name'], verdict['text']), evidence))
    return findings


def probe_all(hosts_services, **kwargs):
    """Every host's services with a prometheus.url, concurrently (one thread per service)."""
    jobs = [(host, svc) for host, services in sorted((hosts_services or {}).items())
            for svc in services or [] if isinstance(svc, dict) and (svc.get('prometheus') or {}).get('url')]
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
        results = list(pool.map(lambda job: probe_service(job[0], job[1], **kwargs), jobs))
    return [finding for chunk in results for finding in chunk]
