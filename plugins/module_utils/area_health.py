# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health area of the probes: its argument spec (SPEC) and run(module).

Shared by the module sre.incident_response.health_probe (one area) and the module probe (every area of a host,
concurrently). run() takes an AnsibleModule or the probe's per-area view of one
(params, run_command, get_bin_path, fail_json) and returns the module result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time


from ansible_collections.sre.incident_response.plugins.module_utils.findings import make_finding as finding
from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import (
    combine, one_line, window_seconds)
from ansible_collections.sre.incident_response.plugins.module_utils.docker_api import (
    DockerClient, DockerError, safe_inspect_summary)
from ansible_collections.sre.incident_response.plugins.module_utils import probe_health


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
        status, text = probe_health.evaluate_container(info, window_s=window_s, restart_warn=module.params['restart_warn'])
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


def run(module):
    p = module.params
    window_s = window_seconds(module)
    if p['services'] and not p['report_host']:
        module.fail_json(msg='report_host is required when services are given (the inventory host they run on)')
    if p['latency_warn_ms'] > p['latency_crit_ms']:
        module.fail_json(msg='latency_warn_ms (%s) must not exceed latency_crit_ms (%s)' % (p['latency_warn_ms'], p['latency_crit_ms']))
    started = time.monotonic()
    findings = []
    specs = probe_health.endpoint_specs(p['http_targets'])
    results = probe_health.check_endpoints(specs, default_timeout=p['timeout'])
    findings.extend(probe_health.endpoint_findings(specs, results, p['latency_warn_ms'], p['latency_crit_ms']))
    if p['services']:
        client = DockerClient(p['docker_host'])
        state = [service_state(module, client, s, p['report_host'], window_s)
                 for s in p['services'] if isinstance(s, dict) and s.get('deploy')]
        findings.extend(combine(state))
    return dict(changed=False, findings=findings, elapsed_ms=round((time.monotonic() - started) * 1000, 1))
