# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The data behind report.html: an incident directory in, a redacted, JSON-able picture model out.

``build()`` makes the model, no markup; ``render_html()`` renders it with the Jinja2 template
roles/report/templates/report.html.j2 in an environment that HTML-escapes every value (everything in the model came
from outside: alert labels, log lines, database rows), and the page carries a Content-Security-Policy that allows
no script and only its own inline style. The model decides what is drawn where:

- ``timeline``: the time axis (ticks), one lane per host that reported findings (one mark per finding event,
  coloured by status), and incident rows: severity changes, messages sent, the plan -> approval -> action ->
  verify chain, and the severity's response-time targets (acknowledge, update cadence) against what happened;
- ``targets``: bars of time to acknowledge / between updates / to mitigate / to resolve against their targets;
- ``grid``: hosts x checks, the worst status each cell ever had, its summary and the latest evidence;
- ``hypotheses``: the ranked diagnosis with links to the findings behind it;
- ``postmortem``: the text of the newest post-mortem file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import json
import math
import os
import time

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files
from ansible_collections.sre.incident_response.plugins.module_utils.findings import STATUSES, STATUSES_WORST_FIRST
from ansible_collections.sre.incident_response.plugins.module_utils.findings import rank as status_rank
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import severity as severity_mod
from ansible_collections.sre.incident_response.plugins.plugin_utils.render.postmortem import (
    IncidentRecord,
    compute_metrics,
)
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor
from ansible_collections.sre.incident_response.plugins.module_utils import timefmt
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore

CHAIN = ('plan', 'approval', 'action', 'verify')
WIDTH = 1100
LEFT = 170
RIGHT = 40
TOP = 34
ROW = 34
MESSAGE_GAP = 15
CHAIN_GAP = 16
EVIDENCE_CHARS = 4000
SVG_TITLE_CHARS = 400


def _ts(value):
    try:
        return files.parse_ts(value).timestamp() if value else None
    except (TypeError, ValueError):
        return None


def _hms(epoch):
    return time.strftime('%H:%M:%S', time.gmtime(epoch))


def _anchor(key):
    return 'f-' + ''.join(c if c.isalnum() or c in '-_' else '-' for c in str(key))


def _short(text, limit):
    text = ' '.join(str(text or '').split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _nice_step(span):
    """Seconds between ticks: a round step giving at most 8 ticks, whatever the span (days beyond a day)."""
    for step in (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400):
        if span / step <= 8:
            return step
    return int(math.ceil(span / 8.0 / 86400)) * 86400


def _beside(x, placed, gap):
    """`x`, or `gap` right of the last mark placed when that one is closer. Arithmetic, not a loop: adding a step in
    floating point until a distance is reached may never reach it (263.4 - 248.4 == 14.999999999999972)."""
    if not placed:
        return x
    return max(x, round(placed[-1]['x'] + gap, 1))


class Axis(object):
    def __init__(self, start, end):
        self.start = start
        self.end = max(end, start + 30.0)
        self.plot = WIDTH - LEFT - RIGHT

    def x(self, epoch):
        frac = (epoch - self.start) / (self.end - self.start)
        return round(LEFT + max(0.0, min(1.0, frac)) * self.plot, 1)

    def inside(self, epoch):
        return self.start <= epoch <= self.end

    def ticks(self):
        step = _nice_step(self.end - self.start)
        first = (int(self.start) // step + 1) * step
        out = [{'x': self.x(self.start), 'label': _hms(self.start)}]
        for index in range(max(0, int(math.ceil((self.end - first) / step)))):  # at most 8 (_nice_step)
            t = first + index * step
            if self.x(t) - out[-1]['x'] > 60:
                out.append({'x': self.x(t), 'label': _hms(t)})
        return out


def _evidence_text(store, host, check, finding):
    """The raw evidence file of a finding (evidence/<host>/<check>.txt|.json, read by the incident store), else the
    finding's evidence dict."""
    name, text = store.evidence_file(host, check, limit=EVIDENCE_CHARS + 1)
    if name is not None:
        return name, text
    evidence = (finding or {}).get('evidence')
    if evidence:
        return None, json.dumps(evidence, indent=1, sort_keys=True, default=str)
    return None, ''


def build(path, redactor=None, now=None):
    """The report model of the incident directory `path` (every string redacted), in named stages: the time axis,
    the host lanes, the incident rows, the targets on the axis, the bars, the grid with its details, the diagnosis."""
    redactor = redactor or Redactor()
    store = IncidentStore.of_path(path)
    record = IncidentRecord.from_store(store)
    if not record.incident and not record.events:
        raise ValueError('%s holds no incident (no incident.json, no timeline.jsonl)' % path)
    metrics = compute_metrics(record, now=now)
    events = record.events
    started, axis = _axis(events, metrics)
    sev = record.severity or 'SEV4'
    policy = severity_mod.SEVERITY_TABLE.get(sev, {})
    finding_events = [e for e in events if e.get('kind') == 'finding']
    hosts = sorted({str(e.get('host')) for e in finding_events} | {str(f.get('host')) for f in record.findings if f.get('host')})
    lanes = _lanes(hosts, finding_events, axis)
    rows_top = TOP + ROW * (len(lanes) + 1)
    rows = {'severity': TOP, 'messages': rows_top, 'response': rows_top + ROW}
    height = rows['response'] + ROW + 58  # room below the axis for targets after its end
    cells = _cells(finding_events, record.findings)
    checks = sorted({k.split('/', 1)[1] for k in cells})
    grid_rows, details = _grid(store, hosts, checks, cells, record.findings)
    pm_file, pm_text = store.latest_postmortem()
    model = {
        'incident': {'id': record.incident_id, 'title': record.title, 'severity': sev,
                     'priority': policy.get('priority'), 'commander': record.incident.get('commander'),
                     'status': record.incident.get('status') or ('Resolved' if metrics.get('resolved') else 'Open'),
                     'impact': record.incident.get('impact'), 'started_at': metrics.get('started_at'),
                     'resolved_at': metrics.get('resolved_at'), 'duration': timefmt.duration(metrics.get('duration'))},
        'timeline': dict(_incident_rows(events, metrics, axis), width=WIDTH, height=height, left=LEFT, right=WIDTH - RIGHT,
                         row=ROW, axis_y=height - 52, ticks=axis.ticks(), lanes=lanes, rows=rows,
                         targets=_axis_targets(events, policy, started, axis), finding_events=len(finding_events)),
        'targets': _bars(metrics, policy),
        'grid': {'checks': checks, 'rows': grid_rows,
                 'counts': dict((s, sum(1 for c in cells.values() if c['worst'] == s)) for s in STATUSES_WORST_FIRST)},
        'details': details,
        'hypotheses': _hypotheses(record.diagnosis, cells),
        'postmortem': {'file': pm_file, 'text': pm_text},
        'files': {'timeline': 'timeline.jsonl', 'findings': 'findings.json', 'diagnosis': 'diagnosis.json'},
    }
    return redactor.data(model)


def _axis(events, metrics):
    """(started, Axis): the picture spans what happened to the incident, not later runs that only read it."""
    stamps = [t for t in (_ts(e.get('ts')) for e in events if e.get('kind') not in ('task', 'play')) if t is not None]
    started = _ts(metrics.get('started_at')) or (min(stamps) if stamps else 0.0)
    end = max(stamps + [started, _ts(metrics.get('resolved_at')) or started])
    return started, Axis(min([started] + stamps), end + max((end - started) * 0.03, 2.0))


def _lanes(hosts, finding_events, axis):
    """One lane per host that reported findings, one mark per finding event (close marks stacked, three high)."""
    lanes = [{'host': host, 'y': TOP + ROW * (index + 1), 'marks': []} for index, host in enumerate(hosts)]
    by_host = dict((lane['host'], lane) for lane in lanes)
    stack = {}
    for event in finding_events:
        data = event.get('data') or {}
        host = str(event.get('host'))
        lane = by_host[host]
        epoch = _ts(event.get('ts'))
        x = axis.x(epoch)
        bucket = (host, int(x // 8))
        n = stack.get(bucket, 0)
        stack[bucket] = n + 1
        status = data.get('status') if data.get('status') in STATUSES else 'unknown'
        check = data.get('check') or '?'
        lane['marks'].append({
            'x': round(x + (n // 3) * 7, 1), 'y': lane['y'] - 8 + (n % 3) * 8, 'status': status, 'check': check,
            'key': '%s/%s' % (host, check), 'anchor': _anchor('%s/%s' % (host, check)),
            'title': _short('%s %s %s/%s: %s' % (_hms(epoch), status.upper(), host, check, event.get('summary')), SVG_TITLE_CHARS)})
    return lanes


def _incident_rows(events, metrics, axis):
    """The rows about the incident itself: severity bands, messages, the remediation chain, the milestones."""
    severities = []
    for event in events:
        if event.get('kind') == 'severity':
            data = event.get('data') or {}
            level = data.get('severity') or data.get('to')
            if level:
                severities.append({'x': axis.x(_ts(event['ts'])), 'severity': str(level),
                                   'title': _short('%s %s' % (_hms(_ts(event['ts'])), event.get('summary')), SVG_TITLE_CHARS)})
    for i, item in enumerate(severities):
        item['x2'] = severities[i + 1]['x'] if i + 1 < len(severities) else axis.x(axis.end)
    messages = []
    for event in events:
        if event.get('kind') == 'comms':
            epoch = _ts(event['ts'])
            # messages sent together stand side by side
            x = _beside(axis.x(epoch), messages, MESSAGE_GAP)
            messages.append({'x': x, 'title': _short('%s %s' % (_hms(epoch), event.get('summary')), SVG_TITLE_CHARS),
                             'failed': 'FAILED' in str(event.get('summary'))})
    chain = []
    for event in events:
        if event.get('kind') in CHAIN:
            data = event.get('data') or {}
            status = str(data.get('status') or data.get('decision') or '').lower()
            bad = status in ('failed', 'refused', 'rejected', 'denied') or 'fail' in str(event.get('summary')).lower()
            x = _beside(axis.x(_ts(event['ts'])), chain, CHAIN_GAP)
            chain.append({'x': x, 'kind': event['kind'], 'bad': bad, 'label_dy': 19 if len(chain) % 2 == 0 else 30,
                          'title': _short('%s %s: %s' % (_hms(_ts(event['ts'])), event['kind'], event.get('summary')), SVG_TITLE_CHARS)})
    markers = []
    for name, when in (('acknowledged', metrics.get('acknowledged_at')), ('mitigated', metrics.get('mitigated_at')),
                       ('resolved', metrics.get('resolved_at'))):
        epoch = _ts(when)
        if epoch is not None:
            markers.append({'name': name, 'x': axis.x(epoch), 'label': '%s %s' % (name, _hms(epoch))})
    return {'severities': severities, 'messages': messages, 'chain': chain, 'markers': markers}


def _axis_targets(events, policy, started, axis):
    """The response-time targets drawn on the axis: acknowledge due, next update due."""
    targets = []
    response_min = policy.get('response_minutes')
    update_min = policy.get('update_minutes')
    if response_min:
        due = started + response_min * 60
        targets.append({'name': 'acknowledge due', 'inside': axis.inside(due), 'x': axis.x(due),
                        'label': 'acknowledge due %s (+%d min)' % (_hms(due), response_min)})
    if update_min:
        last_msg = max([_ts(e['ts']) for e in events if e.get('kind') == 'comms'] or [started])
        due = last_msg + update_min * 60
        targets.append({'name': 'next update due', 'inside': axis.inside(due), 'x': axis.x(due),
                        'label': 'next update due %s (+%d min)' % (_hms(due), update_min)})
    return targets


def _bar(label, actual, target_min, note=''):
    target = target_min * 60 if target_min else None
    frac = (actual / target) if (actual is not None and target) else None
    return {'label': label, 'actual': timefmt.duration(actual) if actual is not None else 'not yet',
            'target': ('%d min' % target_min) if target_min else 'no target',
            'met': None if frac is None else frac <= 1.0, 'width': max(round(min(frac, 1.5) * 400, 1), 3) if frac is not None else 0,
            'note': note}


def _bars(metrics, policy):
    """What happened against the severity's targets."""
    return [_bar('Acknowledge', metrics.get('time_to_acknowledge'), policy.get('response_minutes')),
            _bar('Longest gap between updates', metrics.get('max_update_gap'), policy.get('update_minutes'),
                 '%d message(s)' % metrics.get('comms_count', 0)),
            _bar('Mitigate', metrics.get('time_to_mitigate'), None),
            _bar('Resolve', metrics.get('time_to_resolve'), None)]


def _cells(finding_events, findings):
    """{host/check: {worst, summary, ts, events}}: the worst status a check ever had, from events and the latest."""
    cells = {}
    for event in finding_events:
        data = event.get('data') or {}
        key = '%s/%s' % (event.get('host'), data.get('check'))
        status = data.get('status') if data.get('status') in STATUSES else 'unknown'
        cell = cells.setdefault(key, {'worst': status, 'summary': event.get('summary'), 'ts': event.get('ts'), 'events': 0})
        cell['events'] += 1
        if status_rank(status) > status_rank(cell['worst']):
            cell.update(worst=status, summary=event.get('summary'), ts=event.get('ts'))
    for key, finding in dict(('%s/%s' % (f.get('host'), f.get('check')), f) for f in findings).items():
        status = finding.get('status') if finding.get('status') in STATUSES else 'unknown'
        cell = cells.setdefault(key, {'worst': status, 'summary': finding.get('summary'), 'ts': finding.get('ts'), 'events': 0})
        if status_rank(status) > status_rank(cell['worst']):
            cell.update(worst=status, summary=finding.get('summary'), ts=finding.get('ts'))
    return cells


def _grid(store, hosts, checks, cells, findings):
    """(rows, details): hosts x checks with the worst status, and per cell the latest finding and its evidence."""
    latest = dict(('%s/%s' % (f.get('host'), f.get('check')), f) for f in findings)
    grid_rows = []
    details = []
    for host in hosts:
        row = {'host': host, 'cells': []}
        for check in checks:
            key = '%s/%s' % (host, check)
            cell = cells.get(key)
            if cell is None:
                row['cells'].append(None)
                continue
            row['cells'].append({'status': cell['worst'], 'anchor': _anchor(key), 'title': _short(cell['summary'], SVG_TITLE_CHARS)})
            finding = latest.get(key, {})
            evidence_file, evidence = _evidence_text(store, host, check, finding)
            details.append({'key': key, 'anchor': _anchor(key), 'worst': cell['worst'], 'worst_ts': cell['ts'],
                            'worst_summary': cell['summary'], 'events': cell['events'],
                            'latest_status': finding.get('status'), 'latest_summary': finding.get('summary'),
                            'latest_ts': finding.get('ts'), 'evidence_file': evidence_file,
                            'evidence': evidence[:EVIDENCE_CHARS] + ('\n...' if len(evidence) > EVIDENCE_CHARS else '')})
        grid_rows.append(row)
    return grid_rows, details


def _hypotheses(diagnosis, cells):
    """The ranked hypotheses, their evidence linked to the grid's cells."""
    hypotheses = []
    for rank, hyp in enumerate(diagnosis or [], 1):
        if not isinstance(hyp, dict):
            continue
        hypotheses.append({'rank': hyp.get('rank', rank), 'pattern': hyp.get('pattern'), 'confidence': hyp.get('confidence'),
                           'likely_cause': hyp.get('likely_cause'), 'first_action': hyp.get('first_action'),
                           'then': hyp.get('then'),
                           'evidence': [{'key': k, 'anchor': _anchor(k), 'known': k in cells} for k in hyp.get('evidence') or []]})
    return hypotheses


# --- report.html ---------------------------------------------------------------------------------------------------

TEMPLATE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                        'roles', 'report', 'templates', 'report.html.j2')


def csp_hash(text):
    """The Content-Security-Policy source that allows one inline element of exactly this text: 'sha256-<base64>'."""
    return "'sha256-%s'" % base64.b64encode(hashlib.sha256(str(text).encode('utf-8')).digest()).decode('ascii')


def render_html(model, template=TEMPLATE):
    """report.html of a model (build()): the Jinja2 template rendered by a sandboxed environment that HTML-escapes
    every value it prints (autoescape on). Not ansible's `template` module: that one ignores `{% autoescape %}`,
    and the template's `csp_hash` filter exists only here, so rendering it there fails instead of going out raw."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    env = ImmutableSandboxedEnvironment(loader=jinja2.FileSystemLoader(os.path.dirname(template)), autoescape=True,
                                        undefined=jinja2.StrictUndefined, trim_blocks=True, keep_trailing_newline=True)
    env.filters['csp_hash'] = csp_hash
    return env.get_template(os.path.basename(template)).render(report_model=model)
