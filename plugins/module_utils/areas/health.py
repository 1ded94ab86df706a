# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health area: health checks: HTTP endpoints (concurrently, from the controller) and service state.

Everything about the area is here: its argument spec (SPEC), run(module) and the pure
evaluate_*() functions that turn what it read into findings (unit-tested without a host).
The module sre.incident_response.health_probe runs this one area; the module probe runs every area of a host
concurrently. run() takes an AnsibleModule or the probe's per-area view of one (params, run_command,
get_bin_path, fail_json) and returns the module result.

HTTP uses the standard library only; results are plain dicts that evaluate_*()
turn into findings, so unit tests drive the logic without a network.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.error import HTTPError

from ansible.module_utils.urls import open_url
from ansible_collections.sre.incident_response.plugins.module_utils import timefmt
from ansible_collections.sre.incident_response.plugins.module_utils.docker_api import (
    DockerClient, DockerError, safe_inspect_summary)
from ansible_collections.sre.incident_response.plugins.module_utils.findings import make_finding as finding, worst
from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import (
    level, one_line, parse_docker_time, utcnow, combine, window_seconds)


def http_get(url, timeout=3.0, validate_certs=True, max_body=65536):
    """GET a URL: {url, status, latency_ms, body, json, error}. Never raises."""
    result = {'url': url, 'status': None, 'latency_ms': None, 'body': None, 'json': None, 'error': None}
    headers = {'Accept': 'application/json, */*'}
    started = time.monotonic()
    try:
        try:
            resp = open_url(url, headers=headers, timeout=timeout, validate_certs=validate_certs,
                            http_agent='sre.incident_response health probe')
        except HTTPError as exc:  # 4xx/5xx still carry a body worth reading
            resp = exc
        with resp:
            body = resp.read(max_body)
            result['status'] = resp.getcode() if hasattr(resp, 'getcode') else resp.code
    except Exception as exc:  # connection refused, timeout, TLS, DNS: one line
        result['latency_ms'] = round((time.monotonic() - started) * 1000, 1)
        reason = getattr(exc, 'reason', None)
        result['error'] = '%s: %s' % (type(exc).__name__, one_line(reason if reason is not None else exc, 200))
        return result
    result['latency_ms'] = round((time.monotonic() - started) * 1000, 1)
    text = body.decode('utf-8', 'replace')
    result['body'] = text[:2000]
    try:
        result['json'] = json.loads(text)
    except ValueError:
        pass
    return result


def failing_dependencies(data):
    """Names and errors of /health/ready style `checks` whose ok flag is false."""
    out = []
    checks = data.get('checks') if isinstance(data, dict) else None
    if isinstance(checks, dict):
        for name, item in sorted(checks.items()):
            if isinstance(item, dict) and item.get('ok') is False:
                err = item.get('error')
                crit = item.get('critical')
                out.append('%s%s%s' % (name, '' if crit is None else (' (critical)' if crit else ' (non-critical)'),
                                       ': ' + one_line(err, 120) if err else ''))
            elif isinstance(item, (bool, str)) and item in (False, 'fail', 'down', 'error'):
                out.append(str(name))
    return out


def evaluate_endpoint(spec, result, latency_warn_ms, latency_crit_ms):
    """Status and one-line text of one endpoint result against its spec (expect_status, expect_json)."""
    label = '%s %s' % (spec.get('service') or '?', spec.get('name') or spec.get('url'))
    if result.get('error'):
        return 'crit', '%s %s: %s' % (label, spec.get('url'), result['error'])
    expected = spec.get('expect_status', 200)
    expected = expected if isinstance(expected, list) else [expected]
    expected = [int(x) for x in expected]
    deps = failing_dependencies(result.get('json'))
    status_text = 'HTTP %s' % result['status']
    body_status = result['json'].get('status') if isinstance(result.get('json'), dict) else None
    if body_status is not None:
        status_text += ' status=%s' % body_status
    detail = ' (%s)' % '; '.join(deps) if deps else ''
    lat = result.get('latency_ms')
    if result['status'] not in expected:
        return 'crit', '%s: %s, expected %s%s in %d ms' % (label, status_text, '/'.join(str(x) for x in expected), detail, lat)
    mismatches = []
    for key, want in (spec.get('expect_json') or {}).items():
        got = result['json'].get(key) if isinstance(result.get('json'), dict) else None
        if got != want:  # the body's status is already in status_text
            mismatches.append('expected %s=%s' % (key, want) if key == 'status' else '%s=%s (expected %s)' % (key, got, want))
    if spec.get('expect_body') and spec['expect_body'] not in (result.get('body') or ''):
        mismatches.append('body lacks %r' % spec['expect_body'])
    if mismatches:
        return 'warn', '%s: %s, %s%s in %d ms' % (label, status_text, ', '.join(mismatches), detail, lat)
    lat_status = level(lat, latency_warn_ms, latency_crit_ms)
    if lat_status != 'ok':
        return lat_status, '%s: %s but slow: %d ms (warn at %d ms)' % (label, status_text, lat, latency_warn_ms)
    return 'ok', '%s %s in %d ms%s' % (label, status_text, lat, detail)


def endpoint_specs(targets):
    """Flatten {host: [service, ...]} into endpoint specs (host, service, name, url, expectations)."""
    specs = []
    for host in sorted(targets or {}):
        for service in targets[host] or []:
            if not isinstance(service, dict):
                continue
            for item in service.get('health') or []:
                if not isinstance(item, dict) or not item.get('url'):
                    continue
                spec = dict(item)
                spec['host'] = host
                spec['service'] = service.get('name')
                spec.setdefault('name', item['url'])
                specs.append(spec)
    return specs


def check_endpoints(specs, default_timeout=3.0, workers=16):
    """Run every endpoint concurrently; returns results in spec order."""
    if not specs:
        return []

    def one(spec):
        return http_get(spec['url'], timeout=float(spec.get('timeout') or default_timeout),
                        validate_certs=bool(spec.get('validate_certs', True)))

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(specs)))) as pool:
        return list(pool.map(one, specs))


def endpoint_findings(specs, results, latency_warn_ms=1000, latency_crit_ms=5000):
    """One health.endpoint finding per host: worst endpoint leads, every endpoint in evidence."""
    per_host = {}
    for spec, result in zip(specs, results):
        status, text = evaluate_endpoint(spec, result, latency_warn_ms, latency_crit_ms)
        per_host.setdefault(spec['host'], []).append((status, text, spec, result))
    out = []
    for host in sorted(per_host):
        items = per_host[host]
        statuses = [i[0] for i in items]
        top = worst(statuses)
        healthy = statuses.count('ok')
        evidence = {'endpoints': [{
            'service': spec.get('service'), 'name': spec.get('name'), 'url': spec.get('url'), 'status': status,
            'http_status': result.get('status'), 'latency_ms': result.get('latency_ms'), 'error': result.get('error'),
            'body': result.get('json') if result.get('json') is not None else (result.get('body') or '')[:500],
        } for status, _t, spec, result in items]}
        services = sorted({str(spec.get('service')) for _s, _t, spec, _r in items})
        if top == 'ok':
            slowest = max(items, key=lambda i: i[3].get('latency_ms') or 0)
            summary = '%d of %d endpoints healthy, slowest %s' % (healthy, len(items), slowest[1])
            service = services[0] if len(services) == 1 else slowest[2].get('service')
        else:
            bad = [i for i in items if i[0] == top]
            summary = '%s; %d of %d endpoints healthy' % ('; '.join(i[1] for i in bad[:2]), healthy, len(items))
            service = bad[0][2].get('service')
        out.append(finding('health.endpoint', host, service, top, summary, evidence))
    return out


def evaluate_container(info, now=None, window_s=900, restart_warn=1):
    """Status and text of a container from inspect data (State, RestartCount, Health)."""
    now = now or utcnow()
    state = info.get('State') or {}
    name = (info.get('Name') or '?').lstrip('/')
    health = (state.get('Health') or {}).get('Status')
    restarts = int(info.get('RestartCount') or 0)
    started = parse_docker_time(state.get('StartedAt'))
    up = timefmt.duration((now - started).total_seconds()) if started else '?'
    extras = []
    if health:
        extras.append(health)
    extras.append('%d restart%s' % (restarts, '' if restarts == 1 else 's'))
    if state.get('Restarting'):
        return 'crit', '%s restarting (exit code %s%s, %d restarts)' % (
            name, state.get('ExitCode'), ', OOM-killed' if state.get('OOMKilled') else '', restarts)
    if not state.get('Running'):
        finished = parse_docker_time(state.get('FinishedAt'))
        ago = ' %s ago' % timefmt.duration((now - finished).total_seconds()) if finished else ''
        return 'crit', '%s %s%s (exit code %s%s%s)' % (
            name, state.get('Status') or 'not running', ago, state.get('ExitCode'),
            ', OOM-killed' if state.get('OOMKilled') else '',
            ', ' + one_line(state.get('Error'), 100) if state.get('Error') else '')
    if health == 'unhealthy':
        log = (state.get('Health') or {}).get('Log') or []
        last = one_line(log[-1].get('Output'), 100) if log else ''
        return 'crit', '%s running but unhealthy (%d failing checks%s)' % (
            name, (state.get('Health') or {}).get('FailingStreak') or 0, ': ' + last if last else '')
    recent = started is not None and (now - started).total_seconds() <= window_s
    if state.get('OOMKilled'):
        return 'warn', '%s running, up %s, but was OOM-killed (%s)' % (name, up, ', '.join(extras))
    if restarts >= restart_warn and recent:
        return 'warn', '%s restarted %d times, last start %s ago (inside the window)' % (name, restarts, up)
    return 'ok', '%s running, up %s (%s)' % (name, up, ', '.join(extras))


def service_state(module, client, service, host, window_s):
    deploy = service.get('deploy') or {}
    dtype = deploy.get('type') or 'docker'
    name = service.get('name')
    if dtype == 'docker':
        container = deploy.get('container')
        try:
            info = client.inspect(container)
        except DockerError as exc:
            status = 'crit' if exc.status == 404 else 'unknown'
            return finding('health.container', host, name, status, '%s: %s' % (container, one_line(str(exc))),
                           {'container': container})
        status, text = evaluate_container(info, window_s=window_s, restart_warn=module.params['restart_warn'])
        return finding('health.container', host, name, status, text, safe_inspect_summary(info))
    if dtype == 'systemd':
        unit = deploy.get('unit')
        systemctl = module.get_bin_path('systemctl')
        if not systemctl:
            return finding('health.container', host, name, 'unknown', 'systemctl not found on %s' % host, {'unit': unit})
        rc, out, err = module.run_command([systemctl, 'show', unit, '-p', 'ActiveState', '-p', 'SubState', '-p',
                                           'NRestarts', '-p', 'Result', '-p', 'ExecMainStatus'])
        props = dict(line.split('=', 1) for line in out.splitlines() if '=' in line)
        active = props.get('ActiveState')
        status = 'ok' if active == 'active' else 'crit'
        return finding('health.container', host, name, status, '%s %s (%s, result %s, %s restarts)' % (
            unit, active, props.get('SubState'), props.get('Result'), props.get('NRestarts', '?')), {'unit': unit, 'properties': props})
    pattern = deploy.get('process') or name
    rc, out, err = module.run_command(['pgrep', '-af', pattern])
    procs = [ln for ln in out.splitlines() if ln.strip()]
    status = 'ok' if procs else 'crit'
    return finding('health.container', host, name, status, '%d process%s match %r' % (
        len(procs), '' if len(procs) == 1 else 'es', pattern), {'pattern': pattern, 'processes': procs[:20]})


SPEC = dict(
    http_targets=dict(type='dict', default={}),
    report_host=dict(type='str'),
    services=dict(type='list', elements='dict'),
    window=dict(type='str', default='15m'),
    restart_warn=dict(type='int', default=1),
    latency_warn_ms=dict(type='float', default=1000),
    latency_crit_ms=dict(type='float', default=5000),
    timeout=dict(type='float', default=3),
    docker_host=dict(type='str'),
)


def recheck_slow(specs, results, latency_warn_ms, timeout):
    """Endpoints that answered as expected but slower than latency_warn_ms are checked once more and the faster
    answer kept: one slow answer on a busy machine is noise, two in a row are a finding."""
    slow = [i for i, (spec, res) in enumerate(zip(specs, results))
            if not res.get('error') and ' but slow: ' in evaluate_endpoint(spec, res, latency_warn_ms, None)[1]]
    if not slow:
        return results
    again = check_endpoints([specs[i] for i in slow], default_timeout=timeout)
    out = list(results)
    for i, res in zip(slow, again):
        if evaluate_endpoint(specs[i], res, latency_warn_ms, None)[0] == 'ok' or \
                (res.get('latency_ms') or 0) < (out[i].get('latency_ms') or 0):
            out[i] = res
    return out


def run(module):
    p = module.params
    window_s = window_seconds(module)
    if p['services'] and not p['report_host']:
        module.fail_json(msg='report_host is required when services are given (the inventory host they run on)')
    if p['latency_warn_ms'] > p['latency_crit_ms']:
        module.fail_json(msg='latency_warn_ms (%s) must not exceed latency_crit_ms (%s)' % (p['latency_warn_ms'], p['latency_crit_ms']))
    started = time.monotonic()
    findings = []
    specs = endpoint_specs(p['http_targets'])
    results = check_endpoints(specs, default_timeout=p['timeout'])
    results = recheck_slow(specs, results, p['latency_warn_ms'], p['timeout'])
    findings.extend(endpoint_findings(specs, results, p['latency_warn_ms'], p['latency_crit_ms']))
    if p['services']:
        client = DockerClient(p['docker_host'])
        state = [service_state(module, client, s, p['report_host'], window_s)
                 for s in p['services'] if isinstance(s, dict) and s.get('deploy')]
        findings.extend(combine(state))
    return dict(changed=False, findings=findings, elapsed_ms=round((time.monotonic() - started) * 1000, 1))
