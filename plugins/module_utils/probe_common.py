# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared logic of the probe modules: thresholds, parsing durations, sizes, combining services' findings.

A duration is written for a person by timefmt.duration.

Building findings, statuses and their order are the findings contract (findings.py).
Pure Python (standard library only) so unit tests drive it without Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

from ansible_collections.sre.incident_response.plugins.module_utils.findings import rank

_DURATION_RE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?)?\s*$', re.I)
_UNIT_SECONDS = {'ms': 0.001, 's': 1, 'm': 60, 'h': 3600, 'd': 86400}


def window_seconds(module):
    """The module's `window` option in seconds; fail_json naming the option when it is not a duration."""
    try:
        return parse_duration(module.params['window'])
    except ValueError as exc:
        module.fail_json(msg='window: %s' % exc)


def thresholds_of(module, spec, ordered=()):
    """The `thresholds` option with every unset key at its default in `spec`; fail_json when a (warn, crit)
    pair of `ordered` has warn past crit."""
    t = dict(module.params.get('thresholds') or {})
    for key, option in spec.items():
        if t.get(key) is None:
            t[key] = option['default']
    for warn, crit in ordered:
        if t[warn] > t[crit]:
            module.fail_json(msg='thresholds.%s (%s) must not exceed thresholds.%s (%s)' % (warn, t[warn], crit, t[crit]))
    return t


def level(value, warn=None, crit=None, higher_is_worse=True):
    """ok/warn/crit for a value against thresholds (None disables a threshold)."""
    if value is None:
        return 'unknown'
    if higher_is_worse:
        if crit is not None and value >= crit:
            return 'crit'
        if warn is not None and value >= warn:
            return 'warn'
        return 'ok'
    if crit is not None and value <= crit:
        return 'crit'
    if warn is not None and value <= warn:
        return 'warn'
    return 'ok'


def parse_duration(value):
    """Seconds of a duration such as 15m, 30s, 2h, 1d, 500ms or a bare number of seconds."""
    if value is None or value == '':
        raise ValueError('empty duration')
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _DURATION_RE.match(str(value))
    if not match:
        raise ValueError('duration %r is not of the form 15m, 30s, 2h, 1d' % (value,))
    number, unit = float(match.group(1)), (match.group(2) or 's').lower()
    if unit != 'ms':
        unit = unit[0]
    return number * _UNIT_SECONDS[unit]


def human_bytes(num):
    """1.5 MiB style sizes."""
    if num is None:
        return '?'
    num = float(num)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(num) < 1024 or unit == 'TiB':
            return ('%d %s' % (num, unit)) if unit == 'B' else ('%.1f %s' % (num, unit))
        num /= 1024.0
    return '%.1f PiB' % num


def pct(part, whole):
    """Percentage rounded to one decimal (None when whole is 0/None)."""
    if not whole:
        return None
    return round(100.0 * float(part) / float(whole), 1)


def fmt_pct(value):
    if value is None:
        return '?%'
    if value == int(value):
        return '%d%%' % int(value)
    return '%.1f%%' % value


def parse_docker_time(text):
    """Docker's RFC 3339 nanosecond times -> aware UTC datetime (None for the zero time)."""
    if not text or text.startswith('0001-01-01'):
        return None
    text = str(text).strip()
    match = re.match(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$', text)
    if not match:
        return None
    base, frac, zone = match.group(1), (match.group(2) or '.0')[:7], match.group(3) or 'Z'
    if zone == 'Z':
        zone = '+00:00'
    dt = datetime.datetime.fromisoformat(base + frac.ljust(2, '0') + zone)
    return dt.astimezone(datetime.timezone.utc)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100) of a list of numbers; None when empty."""
    data = sorted(v for v in values if v is not None)
    if not data:
        return None
    if q <= 0:
        return data[0]
    rank = int(-(-q * len(data) // 100))  # ceil
    return data[min(len(data), max(1, rank)) - 1]


def one_line(text, limit=240):
    """First meaningful line of a text, whitespace collapsed, cut at limit."""
    lines = [ln.strip() for ln in str(text or '').splitlines() if ln.strip()]
    first = ' '.join(lines[0].split()) if lines else ''
    if len(first) > limit:
        first = first[:limit - 3] + '...'
    return first


def tail_file(path, max_bytes):
    """(the last max_bytes of a file as text from its first whole line, whether it was cut): a log's tail, bounded."""
    with open(path, 'rb') as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - max_bytes))
        data = handle.read(max_bytes)
    text = data.decode('utf-8', 'replace')
    cut = size > max_bytes
    return (text.split('\n', 1)[1] if cut and '\n' in text else text), cut


def combine(findings):
    """One finding per (host, check): the worst service's status and summary, every service in evidence.

    Findings of a single service pass through unchanged. Where several services of one
    host report the same check, the result carries the worst status, that service's
    summary prefixed by its name (and how many others were checked), and
    ``evidence.services`` mapping each service to its evidence and status.
    """
    groups = {}
    order = []
    for item in findings:
        key = (item.get('host'), item.get('check'))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(item)
    out = []
    for key in order:
        items = groups[key]
        if len(items) == 1:
            out.append(items[0])
            continue
        top = sorted(items, key=lambda f: -rank(f.get('status')))[0]
        others = len(items) - 1
        bad = [f for f in items if f.get('status') != 'ok']
        if bad:
            summary = '%s: %s (%d of %d services not ok)' % (top.get('service'), top.get('summary'), len(bad), len(items))
        else:
            summary = '%d services ok: %s' % (len(items), '; '.join(str(f.get('summary')) for f in items[:4]))
        merged = dict(top)
        merged['service'] = top.get('service')
        merged['summary'] = summary
        merged['evidence'] = {'services': {str(f.get('service')): {'status': f.get('status'), 'summary': f.get('summary'),
                                                                   'evidence': f.get('evidence')} for f in items},
                              'others': others}
        out.append(merged)
    return out
