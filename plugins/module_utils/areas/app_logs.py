# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The app_logs area: application log analysis: error counts by path and status, latency percentiles.

Everything about the area is here: its argument spec (SPEC), run(module) and the pure
evaluate_*() functions that turn what it read into findings (unit-tested without a host).
The module sre.incident_response.app_logs_probe runs this one area; the module probe runs every area of a host
concurrently. run() takes an AnsibleModule or the probe's per-area view of one (params, run_command,
get_bin_path, fail_json) and returns the module result.

Understood line formats (docs/reference/services.md):

- JSON objects: ``{"ts": ..., "level": ..., "method": ..., "path": ..., "status": ..., "latency_ms": ..., "msg": ...}``
- plain text with key=value fields (logfmt), with or without a leading time and level:
  ``2026-12-01T14:00:08.123Z ERROR method=GET path=/api/orders status=500 latency_ms=3.2 msg="..."``
  or ``ts=... level=error path=/api/orders status=500 ...``; journald's message text (``journalctl -o cat``)
  is the same line.

Records with a path are broken down by endpoint; any other line falls back to counting ERROR-level lines.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import os
import re
import time

from ansible_collections.sre.incident_response.plugins.module_utils.docker_api import DockerClient, DockerError
from ansible_collections.sre.incident_response.plugins.module_utils.findings import make_finding as finding, rank, worst
from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import (
    fmt_pct, level, pct, percentile, combine, human_bytes, one_line, thresholds_of, window_seconds)


ERROR_LEVELS = ('ERROR', 'CRITICAL', 'FATAL', 'PANIC')
TEXT_ERROR_RE = re.compile(r'\b(ERROR|CRITICAL|FATAL|PANIC|Traceback)\b')
_DOCKER_TS_RE = re.compile(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) ')


def strip_docker_ts(line):
    """Docker logs with timestamps=1 prefix each line with an RFC 3339 time."""
    match = _DOCKER_TS_RE.match(line)
    return (line[match.end():], match.group(1)) if match else (line, None)


_TEXT_HEAD_RE = re.compile(r'^(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s+'
                           r'(?:(?P<level>[A-Za-z]+)\s+)?(?P<rest>.*)$')
_KV_RE = re.compile(r'(?:^|\s)([A-Za-z_][\w.]*)=("(?:[^"\\]|\\.)*"|\S*)')
_KV_NUMBERS = ('status', 'latency_ms')


def _kv_value(raw):
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        try:
            return json.loads(raw)
        except ValueError:
            return raw[1:-1]
    return raw


def parse_text_record(line):
    """A plain-text key=value (logfmt) line as a record dict, or None for free text.

    ``<ts> [<LEVEL>] k=v ...`` with at least one field, or ``k=v ...`` with a ``level`` or a ``path`` field.
    """
    head = _TEXT_HEAD_RE.match(line)
    fields = dict((k, _kv_value(v)) for k, v in _KV_RE.findall(head.group('rest') if head else line))
    if not fields:
        return None
    if head:
        fields.setdefault('ts', head.group('ts').replace(',', '.').replace(' ', 'T', 1))
        if head.group('level'):
            fields.setdefault('level', head.group('level'))
    elif not {'level', 'path'} & set(fields):
        return None
    for key in _KV_NUMBERS:
        try:
            if key in fields:
                fields[key] = float(fields[key]) if key == 'latency_ms' else int(fields[key])
        except (TypeError, ValueError):
            pass
    if 'level' in fields:
        fields['level'] = str(fields['level']).upper()
    return fields


def line_ts(line):
    """The time stamp a log line carries (JSON ``ts``, a leading ISO 8601 time or ``ts=``), or None."""
    body = line.strip()
    if body.startswith('{'):
        try:
            rec = json.loads(body)
            return rec.get('ts') if isinstance(rec, dict) else None
        except ValueError:
            return None
    head = _TEXT_HEAD_RE.match(body)
    if head:
        return head.group('ts').replace(',', '.').replace(' ', 'T', 1)
    match = re.search(r'(?:^|\s)ts=("?)(\S+?)\1(?:\s|$)', body)
    return match.group(2) if match else None


def parse_lines(lines, counts=None):
    """Split lines into records (JSON objects, key=value text lines) and free-text lines.

    ``counts``, when a dict, receives ``json`` and ``kv`` (how many records came from each format).
    """
    records, text = [], []
    n_json = n_kv = 0
    for raw in lines:
        line = raw.rstrip('\n')
        if not line.strip():
            continue
        body = line.strip()
        if body.startswith('{'):
            try:
                rec = json.loads(body)
                if isinstance(rec, dict):
                    records.append(rec)
                    n_json += 1
                    continue
            except ValueError:
                pass
        rec = parse_text_record(body)
        if rec is not None:
            records.append(rec)
            n_kv += 1
            continue
        text.append(line)
    if counts is not None:
        counts.update({'json': n_json, 'kv': n_kv})
    return records, text


# a path whose latest requests (at least this many) all succeeded has recovered from earlier errors
RECOVERED_AFTER = 5


def _recent_spacing(error_at, last_index, last_errors=RECOVERED_AFTER):
    """Requests per error over the span of the last few errors (1.0 for a burst of consecutive errors)."""
    if not error_at:
        return None
    recent = error_at[-last_errors:]
    span = last_index - recent[0] + 1
    return round(float(span) / len(recent), 2)


def _is_error(rec):
    status = rec.get('status')
    try:
        if status is not None and int(status) >= 500:
            return True
    except (TypeError, ValueError):
        pass
    return str(rec.get('level', '')).upper() in ERROR_LEVELS


# Bounds on what log lines can make the probe keep: distinct paths (the rest count under OTHER_PATHS), the length
# of a path, distinct error messages per path.
MAX_PATHS = 200
MAX_PATH_CHARS = 300
MAX_MESSAGES_PER_PATH = 50
OTHER_PATHS = '(other paths)'
OTHER_MESSAGES = '(other messages)'


def _top_message(messages):
    """The most frequent message; a real one before the OTHER_MESSAGES bucket (messages that carry ids differ)."""
    real = [(n, m) for m, n in messages.items() if m != OTHER_MESSAGES]
    if real:
        return max(real, key=lambda nm: nm[0])[1]
    return OTHER_MESSAGES if messages else None


def analyze(lines, ignore_paths=None):
    """Counts of a window of log lines: JSON breakdown by path and status, or text ERROR lines."""
    counts = {}
    records, text = parse_lines(lines, counts)
    ignore = set(ignore_paths or [])
    paths = {}
    errors_by_status = {}
    latencies = []
    error_samples = []
    total_requests = 0
    total_errors = 0
    other_errors = 0
    for rec in records:
        path = rec.get('path')
        is_err = _is_error(rec)
        if path is None:
            if is_err:
                other_errors += 1
                if len(error_samples) < 20:
                    error_samples.append(rec)
            continue
        if path in ignore:
            continue
        # Paths come from clients: bounded in length and in number (a scanner's random URLs, a 1 MiB path).
        path = str(path)
        if len(path) > MAX_PATH_CHARS:
            path = path[:MAX_PATH_CHARS] + '...'
        if path not in paths and len(paths) >= MAX_PATHS:
            path = OTHER_PATHS
        entry = paths.setdefault(path, {'requests': 0, 'errors': 0, 'statuses': {}, 'latencies': [], 'messages': {},
                                        'trailing_ok': 0, 'trailing_errors': 0, 'error_at': []})
        entry['requests'] += 1
        if is_err:
            entry['error_at'].append(entry['requests'])
        entry['trailing_ok'] = 0 if is_err else entry['trailing_ok'] + 1
        entry['trailing_errors'] = entry['trailing_errors'] + 1 if is_err else 0
        total_requests += 1
        status = str(rec.get('status', '?'))
        entry['statuses'][status] = entry['statuses'].get(status, 0) + 1
        lat = rec.get('latency_ms')
        if isinstance(lat, (int, float)):
            entry['latencies'].append(float(lat))
            latencies.append(float(lat))
        if is_err:
            entry['errors'] += 1
            total_errors += 1
            errors_by_status[status] = errors_by_status.get(status, 0) + 1
            msg = str(rec.get('msg', ''))[:160]
            if msg not in entry['messages'] and len(entry['messages']) >= MAX_MESSAGES_PER_PATH:
                msg = OTHER_MESSAGES
            entry['messages'][msg] = entry['messages'].get(msg, 0) + 1
            if len(error_samples) < 20:
                error_samples.append(rec)
    by_path = {}
    for path, entry in paths.items():
        by_path[path] = {
            'requests': entry['requests'],
            'errors': entry['errors'],
            'error_rate_pct': pct(entry['errors'], entry['requests']),
            'statuses': entry['statuses'],
            'p50_ms': percentile(entry['latencies'], 50),
            'p95_ms': percentile(entry['latencies'], 95),
            'top_error': _top_message(entry['messages']),
            'trailing_ok': entry['trailing_ok'],
            'trailing_errors': entry['trailing_errors'],
            'recent_error_spacing': _recent_spacing(entry['error_at'], entry['requests'] - entry['trailing_ok']),
        }
    text_errors = [line for line in text if TEXT_ERROR_RE.search(line)]
    if records and len(records) >= len(text):
        fmt = 'json' if counts['json'] >= counts['kv'] else 'logfmt'
    else:
        fmt = 'text' if text else 'empty'
    return {
        'format': fmt,
        'lines': len(records) + len(text),
        'json_lines': counts['json'],
        'kv_lines': counts['kv'],
        'text_lines': len(text),
        'requests': total_requests,
        'errors': total_errors,
        'other_errors': other_errors,
        'error_rate_pct': pct(total_errors, total_requests),
        'errors_by_status': errors_by_status,
        'p50_ms': percentile(latencies, 50),
        'p95_ms': percentile(latencies, 95),
        'by_path': by_path,
        'text_error_lines': len(text_errors),
        'error_samples': error_samples,
        'text_error_samples': text_errors[:20],
    }


def evaluate(stats, host, service, window, thresholds, source):
    """The app.errors finding of analyze() output.

    thresholds: error_rate_warn_pct, error_rate_crit_pct, min_errors, error_lines_warn,
    error_lines_crit, latency_p95_warn_ms, latency_p95_crit_ms.
    """
    t = thresholds
    evidence = {k: v for k, v in stats.items() if k not in ('error_samples', 'text_error_samples')}
    evidence['window'] = window
    evidence['source'] = source
    statuses = ['ok']
    parts = []
    # per path error rates: the worst path leads the summary
    failing = []
    recovered = []
    recovered_after = int(t.get('recovered_after', RECOVERED_AFTER))
    for path, entry in stats['by_path'].items():
        if entry['errors'] < t['min_errors']:
            continue
        st = level(entry['error_rate_pct'], t['error_rate_warn_pct'], t['error_rate_crit_pct'])
        # Recovered: the latest requests all succeed, a run of successes three times longer than the
        # recent spacing of this path's errors, so intermittent errors still count.
        needed = max(recovered_after, int(math.ceil(3.0 * (entry.get('recent_error_spacing') or 1))))
        if st != 'ok' and recovered_after > 0 and entry.get('trailing_ok', 0) >= needed:
            recovered.append((entry['errors'], path, entry['trailing_ok']))
        elif entry.get('trailing_errors', 0) >= max(recovered_after, t['min_errors']):
            # failing now: the latest requests all failed, however many succeeded earlier in the window
            failing.append(('crit', entry['errors'], path, entry))
        elif st != 'ok':
            failing.append((st, entry['errors'], path, entry))
    failing.sort(key=lambda x: (rank(x[0]), x[1]), reverse=True)
    for st, _count, path, entry in failing:
        statuses.append(st)
    if failing:
        st, count, path, entry = failing[0]
        codes = ', '.join('%s' % code for code in sorted(c for c in entry['statuses'] if c.isdigit() and int(c) >= 500))
        parts.append('%s: %d errors (%s) in %s, %s of its requests%s' % (
            path, count, codes or 'ERROR', window, fmt_pct(entry['error_rate_pct']),
            ', failing now (last %d all failed)' % entry['trailing_errors']
            if entry.get('trailing_errors', 0) >= recovered_after else ''))
        if len(failing) > 1:
            parts.append('also failing: %s' % ', '.join('%s (%d)' % (p, c) for _s, c, p, _e in failing[1:4]))
        if entry.get('top_error'):
            parts.append('"%s"' % entry['top_error'][:100])
    evidence['failing_paths'] = [p for _s, _c, p, _e in failing]
    evidence['recovered_paths'] = [p for _c, p, _n in sorted(recovered, reverse=True)]
    if recovered:
        parts.append('recovered: %s' % ', '.join('%s (%d errors earlier, last %d requests OK)' % (p, c, n)
                                                 for c, p, n in sorted(recovered, reverse=True)[:3]))
    # latency
    p95 = stats.get('p95_ms')
    lat_status = level(p95, t['latency_p95_warn_ms'], t['latency_p95_crit_ms']) if p95 is not None else 'ok'
    statuses.append(lat_status)
    slow = sorted(((e['p95_ms'], p) for p, e in stats['by_path'].items() if e['p95_ms'] is not None), reverse=True)
    if lat_status != 'ok' and slow:
        parts.append('latency p95 %d ms (p50 %d ms), slowest %s p95 %d ms' % (p95, stats['p50_ms'] or 0, slow[0][1], slow[0][0]))
    # plain text logs or errors without a path
    text_errors = stats['text_error_lines'] + stats['other_errors']
    if text_errors:
        st = level(text_errors, t['error_lines_warn'], t['error_lines_crit'])
        statuses.append(st)
        if st != 'ok' or not parts:
            parts.append('%d ERROR lines in %s' % (text_errors, window))
    status = worst(statuses)
    if not parts:
        if stats['requests']:
            summary = '%d errors in %d requests in %s (%s), p95 %s ms' % (
                stats['errors'], stats['requests'], window, fmt_pct(stats['error_rate_pct'] or 0),
                '%d' % p95 if p95 is not None else '?')
        elif stats['lines']:
            summary = 'no errors in %d log lines in %s' % (stats['lines'], window)
        else:
            summary = 'no log lines in %s' % window
    else:
        if stats['requests'] and failing:
            parts.append('%d errors of %d requests overall' % (stats['errors'], stats['requests']))
        summary = '; '.join(parts)
    return finding('app.errors', host, service, status, summary, evidence)


def excerpt(lines, stats, limit=200):
    """The evidence excerpt: the error lines first, then the tail of the window."""
    errors = [ln for ln in lines if TEXT_ERROR_RE.search(ln) or '"status": 5' in ln or re.search(r'\bstatus=5\d\d\b', ln)]
    tail = lines[-max(0, limit - min(len(errors), limit // 2)):]
    chosen = errors[-(limit // 2):] + ['--- last %d lines ---' % len(tail)] + tail
    return '\n'.join(line.rstrip('\n') for line in chosen) + '\n'


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
    from ansible_collections.sre.incident_response.plugins.module_utils.timefmt import parse_ts
    kept = []
    for line in lines:
        ts = line_ts(line)
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
        lines = [strip_docker_ts(ln)[0] for ln in (out + err).splitlines()]
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
            stats = analyze(lines, p['ignore_paths'])
            stats_out[name] = {k: v for k, v in stats.items() if k not in ('error_samples', 'text_error_samples')}
            findings.append(evaluate(stats, host, name, p['window'], thresholds, source))
            files['app.errors-%s.log' % name] = excerpt(lines, stats, p['excerpt_lines'])
        except (DockerError, OSError, ValueError) as exc:
            status = 'crit' if isinstance(exc, DockerError) and exc.status == 404 else 'unknown'
            findings.append(finding('app.errors', host, name, status, 'cannot read logs: %s' % one_line(str(exc)),
                                    {'window': p['window']}))
        findings.append(probe_process(module, client, service, host))
    return dict(changed=False, findings=combine(findings), evidence_files=files, stats=stats_out)
