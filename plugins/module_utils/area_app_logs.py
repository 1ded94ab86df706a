# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The app_logs area of the probes: its argument spec (SPEC) and run(module).

Shared by the module sre.incident_response.app_logs_probe (one area) and the module probe (every area of a host,
concurrently). run() takes an AnsibleModule or the probe's per-area view of one
(params, run_command, get_bin_path, fail_json) and returns the module result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time


from ansible_collections.sre.incident_response.plugins.module_utils.findings import make_finding as finding
from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import (
    combine, human_bytes, one_line, thresholds_of, window_seconds)
from ansible_collections.sre.incident_response.plugins.module_utils.docker_api import (
    DockerClient, DockerError)
from ansible_collections.sre.incident_response.plugins.module_utils import probe_logs

THRESHOLD_SPEC = dict(
    error_rate_warn_pct=dict(type='float', default=5),
    error_rate_crit_pct=dict(type='float', default=25),
    min_errors=dict(type='int', default=3),
    error_lines_warn=dict(type='int', default=10),
    error_lines_crit=dict(type='int', default=100),
    latency_p95_warn_ms=dict(type='float', default=1000),
    latency_p95_crit_ms=dict(type='float', default=5000),
)


def _read_file_tail(path, max_bytes=16 * 1024 * 1024):
    with open(path, 'rb') as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - max_bytes))
        data = handle.read()
    lines = data.decode('utf-8', 'replace').splitlines()
    if size > max_bytes and lines:
        lines = lines[1:]
    return lines


def _in_window(lines, since_epoch):
    """Keep lines whose time stamp (JSON ts, leading ISO time, ts=) is inside the window; lines without one are kept."""
    from ansible_collections.sre.incident_response.plugins.module_utils.incident_files import parse_ts
    kept = []
    for line in lines:
        ts = probe_logs.line_ts(line)
        if ts:
            try:
                if parse_ts(ts).timestamp() < since_epoch:
                    continue
            except (ValueError, TypeError, AttributeError):
                pass
        kept.append(line)
    return kept


def fetch_logs(module, client, service, since_epoch):
    """(lines, source description) of the service's window; raises on failure."""
    logs = service.get('logs') or {}
    deploy = service.get('deploy') or {}
    source = logs.get('source') or deploy.get('type') or 'docker'
    max_lines = module.params['max_lines']
    if source == 'docker':
        container = logs.get('container') or deploy.get('container')
        if not container:
            raise ValueError('logs.source docker needs deploy.container')
        out, err = client.logs(container, since=since_epoch, tail=max_lines, timestamps=True)
        lines = [probe_logs.strip_docker_ts(ln)[0] for ln in (out + err).splitlines()]
        return lines, 'docker logs %s --since %s' % (container, module.params['window'])
    if source in ('journald', 'systemd'):
        unit = logs.get('unit') or deploy.get('unit')
        if not unit:
            raise ValueError('logs.source journald needs logs.unit or deploy.unit')
        journalctl = module.get_bin_path('journalctl')
        if not journalctl:
            raise ValueError('journalctl not found on the host')
        rc, out, err = module.run_command([journalctl, '--no-pager', '-o', 'cat', '-u', unit,
                                           '--since', '@%d' % int(since_epoch), '-n', str(max_lines)])
        if rc != 0:
            raise ValueError('journalctl -u %s: %s' % (unit, one_line(err or out)))
        return out.splitlines(), 'journalctl -u %s --since %s' % (unit, module.params['window'])
    if source == 'file':
        path = logs.get('path')
        if not path:
            raise ValueError('logs.source file needs logs.path')
        lines = _read_file_tail(path)[-max_lines:]
        return _in_window(lines, since_epoch), '%s (last %s)' % (path, module.params['window'])
    raise ValueError('unknown logs.source %r (docker, journald or file)' % source)


def probe_process(module, client, service, host):
    deploy = service.get('deploy') or {}
    name = service.get('name')
    dtype = deploy.get('type') or 'docker'
    runtime_cmd = module.params['runtime_command']
    evidence = {'deploy': dtype}
    try:
        if dtype == 'docker':
            container = deploy.get('container')
            info = client.inspect(container)
            state = info.get('State') or {}
            evidence.update({'container': container, 'status': state.get('Status'), 'started_at': state.get('StartedAt')})
            if not state.get('Running'):
                return finding('app.process', host, name, 'crit', '%s is %s (exit code %s%s), no process running' % (
                    container, state.get('Status'), state.get('ExitCode'),
                    ', OOM-killed' if state.get('OOMKilled') else ''), evidence)
            top = client.top(container)
            procs = [dict(zip(top.get('Titles', []), p)) for p in top.get('Processes', [])]
            evidence['processes'] = procs
            version = None
            if runtime_cmd:
                try:
                    rc, out, err = client.exec_run(container, runtime_cmd, timeout=module.params['timeout'])
                    version = one_line(out or err) if rc == 0 else None
                    if rc != 0:
                        evidence['runtime_error'] = one_line(err or out)
                except DockerError as exc:
                    evidence['runtime_error'] = str(exc)
            evidence['runtime_version'] = version
            if not procs:
                return finding('app.process', host, name, 'crit', '%s is running but has no processes' % container, evidence)
            main = procs[0]
            rss = main.get('RSS')
            summary = '%s running (pid %s, %d process%s, up %s%s)%s' % (
                (main.get('COMMAND') or main.get('CMD') or '?')[:80], main.get('PID'), len(procs),
                '' if len(procs) == 1 else 'es', main.get('ELAPSED', '?'),
                ', RSS %s' % human_bytes(int(rss) * 1024) if rss and str(rss).isdigit() else '',
                '; %s' % version if version else '; runtime version unknown')
            return finding('app.process', host, name, 'ok', summary, evidence)
        if dtype == 'systemd':
            unit = deploy.get('unit')
            rc, out, err = module.run_command(['systemctl', 'show', unit, '-p', 'ActiveState', '-p', 'SubState',
                                               '-p', 'MainPID', '-p', 'ExecMainStartTimestamp', '-p', 'NRestarts'])
            props = dict(line.split('=', 1) for line in out.splitlines() if '=' in line)
            evidence.update({'unit': unit, 'properties': props})
        else:
            pattern = deploy.get('process') or name
            rc, out, err = module.run_command(['pgrep', '-af', pattern])
            procs = [ln for ln in out.splitlines() if ln.strip()]
            evidence.update({'pattern': pattern, 'processes': procs})
            props = {'ActiveState': 'active' if procs else 'inactive', 'MainPID': procs[0].split()[0] if procs else '0'}
        version = None
        if runtime_cmd and module.get_bin_path(runtime_cmd[0]):
            rc2, out2, err2 = module.run_command(runtime_cmd)
            version = one_line(out2 or err2) if rc2 == 0 else None
        evidence['runtime_version'] = version
        if props.get('ActiveState') != 'active':
            return finding('app.process', host, name, 'crit', '%s is %s (%s)' % (
                deploy.get('unit') or deploy.get('process') or name, props.get('ActiveState', 'unknown'),
                props.get('SubState', 'no process')), evidence)
        return finding('app.process', host, name, 'ok', '%s active (pid %s)%s' % (
            deploy.get('unit') or deploy.get('process') or name, props.get('MainPID'),
            '; %s' % version if version else ''), evidence)
    except (DockerError, OSError, ValueError, KeyError) as exc:
        status = 'crit' if isinstance(exc, DockerError) and exc.status == 404 else 'unknown'
        return finding('app.process', host, name, status, 'cannot check the process: %s' % one_line(str(exc)), evidence)


SPEC = dict(
    report_host=dict(type='str', required=True),
    services=dict(type='list', elements='dict', required=True),
    window=dict(type='str', default='15m'),
    max_lines=dict(type='int', default=50000),
    excerpt_lines=dict(type='int', default=200),
    ignore_paths=dict(type='list', elements='str', default=[]),
    runtime_command=dict(type='list', elements='str', default=['python3', '--version']),
    thresholds=dict(type='dict', default={}, options=THRESHOLD_SPEC),
    docker_host=dict(type='str'),
    timeout=dict(type='int', default=20),
)


def run(module):
    p = module.params
    window_s = window_seconds(module)
    thresholds = thresholds_of(module, THRESHOLD_SPEC)
    host = p['report_host']
    since = time.time() - window_s
    client = DockerClient(p['docker_host'], timeout=p['timeout'])
    findings, files, stats_out = [], {}, {}
    targets = [s for s in p['services'] if isinstance(s, dict) and (s.get('logs') or s.get('kind') == 'backend')]
    for service in targets:
        name = service.get('name') or 'unnamed'
        try:
            lines, source = fetch_logs(module, client, service, since)
            stats = probe_logs.analyze(lines, p['ignore_paths'])
            stats_out[name] = {k: v for k, v in stats.items() if k not in ('error_samples', 'text_error_samples')}
            findings.append(probe_logs.evaluate(stats, host, name, p['window'], thresholds, source))
            files['app.errors-%s.log' % name] = probe_logs.excerpt(lines, stats, p['excerpt_lines'])
        except (DockerError, OSError, ValueError) as exc:
            status = 'crit' if isinstance(exc, DockerError) and exc.status == 404 else 'unknown'
            findings.append(finding('app.errors', host, name, status, 'cannot read logs: %s' % one_line(str(exc)),
                                    {'window': p['window']}))
        findings.append(probe_process(module, client, service, host))
    return dict(changed=False, findings=combine(findings), evidence_files=files, stats=stats_out)
