# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The post-mortem: metrics from the timeline and the Markdown renderer.

One renderer serves the timeline callback (a draft at the end of every run),
the `postmortem` role (the final document at resolution) and
scripts/generate-incident-report.py (an incident that never ran through the
playbooks). Standard library only.

Structure (PRACTICE.md): Summary (date, severity, duration, impact) ·
Timeline (`HH:MM - event`, UTC, significant events only) · Root cause · Five
whys · Contributing factors · What went well · What could be improved ·
Response times · Action items (`<measure> - Owner: @name - Due: YYYY-MM-DD`) ·
Post-mortem requirement.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os

from ansible_collections.sre.incident_response.plugins.plugin_utils.render import escape
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.files import (
    parse_ts,
    safe_name,
    write_rendered,
)
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor
from ansible_collections.sre.incident_response.plugins.module_utils import timefmt
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import severity as severity_mod
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.timeline import task_results
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore

SECTIONS = ('Summary', 'Timeline', 'Root cause', 'Five whys', 'Contributing factors', 'What went well',
            'What could be improved', 'Response times', 'Action items', 'Post-mortem requirement')

# Days until an action item is due, by severity.
DUE_DAYS = {'SEV1': 7, 'SEV2': 7, 'SEV3': 14, 'SEV4': 30}
MAX_TIMELINE_ENTRIES = 60
SIGNIFICANT_KINDS = ('declared', 'severity', 'diagnosis', 'plan', 'approval', 'action', 'verify', 'comms',
                     'note', 'resolved')
ROOT_CAUSE_HINT = '`-e root_cause=...` when running playbooks/resolve.yml'


def md_text(text, limit=240, redactor=None):
    """One line of Markdown-safe text (escape.md: folded, truncated, HTML/links/code/tables escaped). With a
    redactor, redacted first: an escaped or truncated secret would no longer match it."""
    if redactor is not None:
        text = redactor.text(str(text if text is not None else ''))
    return escape.md(text, limit)


def hhmm(ts):
    return timefmt.hhmm(parse_ts(ts))


def fmt_time(ts):
    return timefmt.utc_minute(parse_ts(ts)) if ts else 'unknown'


def postmortem_filename(started_at):
    return 'postmortem-%s.md' % parse_ts(started_at).strftime('%Y-%m-%d')


def _seconds(a, b):
    if a is None or b is None:
        return None
    return (parse_ts(b) - parse_ts(a)).total_seconds()


def is_significant(event):
    """Events a post-mortem timeline shows: decisions and outcomes, not every task."""
    kind = event.get('kind')
    data = event.get('data') or {}
    if kind in SIGNIFICANT_KINDS:
        return True
    if kind == 'finding':
        return data.get('status') in ('warn', 'crit')
    if kind == 'task':
        # a per-host result (the old form, or the detailed event of a failure); a compact event (one per task,
        # `data.hosts`) has no status of its own: its failures have their detailed events
        return data.get('status') in ('failed', 'unreachable') and not data.get('ignored')
    if kind == 'play':
        return (data.get('phase') == 'start' and bool(data.get('first_in_run'))) or \
            (data.get('phase') == 'end' and bool(data.get('interrupted')))
    return False


def _diagnosis_list(diagnosis):
    if isinstance(diagnosis, dict):
        diagnosis = diagnosis.get('hypotheses') or diagnosis.get('diagnosis') or []
    return [h for h in (diagnosis or []) if isinstance(h, dict)]


def _ok_event(event):
    data = event.get('data') or {}
    if data.get('ok') is False or data.get('failed') is True:
        return False
    return str(data.get('status', 'ok')).lower() in ('ok', 'passed', 'success', 'succeeded', 'changed', 'applied',
                                                     'healthy', 'done')


class IncidentRecord(object):
    """Everything a post-mortem is made of: the context, timeline, findings and diagnosis."""

    def __init__(self, incident=None, events=None, findings=None, diagnosis=None, path=None):
        self.incident = dict(incident or {})
        self.events = sorted([e for e in (events or []) if isinstance(e, dict) and e.get('ts')],
                             key=lambda e: parse_ts(e['ts']))
        self.findings = findings if isinstance(findings, list) else (findings or {}).get('findings', []) \
            if isinstance(findings, dict) else []
        self.diagnosis = _diagnosis_list(diagnosis)
        self.path = path

    @classmethod
    def load(cls, path, incident_id=None):
        return cls.from_store(IncidentStore.of_path(path), incident_id=incident_id)

    @classmethod
    def from_store(cls, store, incident_id=None):
        """The record of an incident read through its store (incident_id: the id when incident.json has none)."""
        incident = dict(store.incident() or {})
        if incident_id and not incident.get('id'):
            incident['id'] = incident_id
        return cls(incident, list(store.timeline()), store.findings(), store.diagnosis() or [], path=store.path)

    @property
    def incident_id(self):
        return self.incident.get('id') or (self.events[0].get('incident_id') if self.events else None)

    @property
    def severity(self):
        sev = self.incident.get('severity')
        for event in self.events:
            if event.get('kind') == 'severity':
                data = event.get('data') or {}
                sev = data.get('severity') or data.get('to') or sev
        try:
            return severity_mod.normalize(sev) if sev else None
        except ValueError:
            return None

    @property
    def title(self):
        return self.incident.get('title') or 'Incident %s' % (self.incident_id or '')

    def first(self, kinds, predicate=None):
        for event in self.events:
            if event.get('kind') in kinds and (predicate is None or predicate(event)):
                return event
        return None

    def last(self, kinds):
        found = None
        for event in self.events:
            if event.get('kind') in kinds:
                found = event
        return found

    def crit_findings(self):
        """Every finding that was crit at some point: findings.json and the timeline's finding events."""
        out = {}
        for finding in self.findings:
            if finding.get('status') == 'crit':
                out['%s/%s' % (finding.get('host'), finding.get('check'))] = finding
        for event in self.events:
            data = event.get('data') or {}
            if event.get('kind') == 'finding' and data.get('status') == 'crit':
                finding = dict(data)
                finding.setdefault('host', event.get('host'))
                finding.setdefault('summary', event.get('summary'))
                key = '%s/%s' % (finding.get('host'), finding.get('check'))
                out.setdefault(key, finding)
        return [out[k] for k in sorted(out)]


def scoped_events(events):
    """The events a post-mortem covers: up to the (last) resolution; later runs are not part of the incident."""
    last = None
    for index, event in enumerate(events):
        if event.get('kind') == 'resolved':
            last = index
    return list(events) if last is None else list(events[:last + 1])


def compute_metrics(record, now=None):
    """Detect/acknowledge/mitigate/resolve times from the context and the timeline."""
    events = scoped_events(record.events)
    started = record.incident.get('started_at') or (events[0]['ts'] if events else None)
    declared = record.first(('declared', 'severity'))
    if 'acknowledged_at' in record.incident and not record.incident['acknowledged_at']:
        acknowledged = None  # explicitly unknown (e.g. a report made from arguments alone)
    else:
        acknowledged = record.incident.get('acknowledged_at') or (declared or {}).get('ts') \
            or (events[0]['ts'] if events else None)
    mitigation = record.first(('verify',), _ok_event) or record.first(('action',), _ok_event)
    mitigated = record.incident.get('mitigated_at') or (mitigation or {}).get('ts')
    resolved_event = record.last(('resolved',))
    resolved = (resolved_event or {}).get('ts') or record.incident.get('resolved_at')
    end = resolved or (events[-1]['ts'] if events else None) or now
    sev = record.severity
    target = severity_mod.SEVERITY_TABLE[sev]['response_minutes'] if sev else None
    update_target = severity_mod.SEVERITY_TABLE[sev]['update_minutes'] if sev else None
    comms = [e['ts'] for e in events if e.get('kind') == 'comms']
    gaps = [_seconds(a, b) for a, b in zip(comms, comms[1:])]
    metrics = {
        'started_at': started,
        'acknowledged_at': acknowledged,
        'mitigated_at': mitigated,
        'resolved_at': resolved,
        'end': end,
        'resolved': bool(resolved),
        'severity': sev,
        'response_target_minutes': target,
        'update_target_minutes': update_target,
        'time_to_acknowledge': _seconds(started, acknowledged),
        'time_to_mitigate': _seconds(started, mitigated),
        'time_to_resolve': _seconds(started, resolved),
        'duration': _seconds(started, end),
        'comms_count': len(comms),
        'max_update_gap': max(gaps) if gaps else None,
        'events': len(events),
        'runs': len({(e.get('data') or {}).get('run') for e in events
                     if e.get('kind') == 'play' and (e.get('data') or {}).get('run')}),
        'failed_tasks': sum(1 for r in task_results(events)
                            if r.get('status') in ('failed', 'unreachable') and not r.get('ignored')),
    }
    if target is not None and metrics['time_to_acknowledge'] is not None:
        metrics['acknowledge_met'] = metrics['time_to_acknowledge'] <= target * 60
    return metrics


def _event_line(event, unfinished=False, md=md_text):
    summary = event.get('summary') or event.get('kind')
    host = event.get('host')
    kind = event.get('kind')
    label = {'declared': 'Declared', 'severity': 'Severity', 'finding': 'Finding', 'diagnosis': 'Diagnosis',
             'plan': 'Plan', 'approval': 'Approval', 'action': 'Action', 'verify': 'Verify', 'comms': 'Comms',
             'note': 'Note', 'resolved': 'Resolved', 'task': 'Task failed', 'play': 'Run'}.get(kind, kind)
    text = summary if label.lower() in str(summary).lower()[:30] else '%s: %s' % (label, summary)
    if host and kind in ('finding', 'task', 'action', 'verify'):
        text += ' (%s)' % host
    if unfinished:
        text += ' - the run did not finish (killed or crashed)'
    return '%s - %s' % (hhmm(event['ts']), md(text))


class PostmortemRenderer(object):
    """Renders the post-mortem Markdown. `inputs` carries what humans add (root cause, whys, items...)."""

    def __init__(self, redactor=None, today=None):
        self.redactor = redactor or Redactor()
        self.today = today

    def _md(self, text, limit=240):
        """An outside value: redacted, then one line of escaped Markdown."""
        return md_text(text, limit, self.redactor)

    def render(self, record, inputs=None, final=False, now=None):
        """The post-mortem's Markdown, section by section (each section a method below), redacted."""
        inputs = dict(inputs or {})
        metrics = compute_metrics(record, now=now)
        sev = metrics['severity']
        sev_info = severity_mod.SEVERITY_TABLE.get(sev, {}) if sev else {}
        end_date = parse_ts(metrics['end']).date() if metrics['end'] else datetime.date.today()
        well, improve = self._assessment(record, inputs, metrics)
        state = 'Final' if final else 'Draft (regenerated after every run; finalized by playbooks/resolve.yml)'
        sections = [
            ('# Post-mortem: %s' % self._md(inputs.get('title') or record.title, 160), None),
            ('Status: %s. This review is blameless: it is about systems and decisions, not people.' % state, None),
            ('## Summary', self._summary_lines(record, inputs, metrics, sev, sev_info)),
            ('## Timeline', self._timeline_lines(record, metrics)),
            ('## Root cause', [self._root_cause(record, inputs)]),
            ('## Five whys', self._why_lines(record, inputs)),
            ('## Contributing factors', ['- ' + item for item in self._contributing(record, inputs, metrics)]),
            ('## What went well', ['- ' + item for item in well]),
            ('## What could be improved', ['- ' + item for item in improve]),
            ('## Response times', self._response_lines(metrics, sev)),
            ('## Action items', ['- ' + item for item in self._action_items(record, inputs, sev, end_date)]),
            ('## Post-mortem requirement', [self._requirement(sev, metrics)]),
        ]
        lines = []
        for heading, body in sections:
            lines.extend([heading, ''])
            if body is not None:
                lines.extend(body + [''])
        text = '\n'.join(lines).rstrip('\n') + '\n'
        return self.redactor.text(text)

    def _summary_lines(self, record, inputs, metrics, sev, sev_info):
        lines = ['- **Incident:** %s' % self._md(record.incident_id or 'unknown'),
                 '- **Date:** %s' % (parse_ts(metrics['started_at']).strftime('%Y-%m-%d') if metrics['started_at']
                                     else 'unknown'),
                 '- **Severity:** %s' % ('%s (%s) - %s' % (sev, sev_info.get('priority'), sev_info.get('impact'))
                                         if sev else 'not classified')]
        if record.incident.get('commander') or inputs.get('commander'):
            lines.append('- **Commander:** %s' % self._md(inputs.get('commander') or record.incident.get('commander')))
        lines.append('- **Start:** %s' % fmt_time(metrics['started_at']))
        lines.append('- **End:** %s' % (fmt_time(metrics['resolved_at']) if metrics['resolved_at']
                                        else 'ongoing (last event %s)' % fmt_time(metrics['end'])))
        lines.append('- **Duration:** %s%s' % (timefmt.duration(metrics['duration']), '' if metrics['resolved'] else ' so far'))
        impact = inputs.get('impact') or record.incident.get('impact') or \
            (sev_info.get('impact') and 'Not stated; the severity implies: %s' % sev_info['impact']) or 'Not stated'
        lines.append('- **Impact:** %s' % self._md(impact, 400))
        what = inputs.get('summary') or self._what_happened(record)
        lines.append('- **What happened:** %s' % self._md(what, 400))
        return lines

    def _timeline_lines(self, record, metrics):
        lines = ['All times UTC.', '']
        significant = [e for e in scoped_events(record.events) if is_significant(e)]
        if len(significant) > MAX_TIMELINE_ENTRIES:
            keep = significant[:MAX_TIMELINE_ENTRIES - 1] + [significant[-1]]
            omitted = len(significant) - len(keep)
            significant = keep
        else:
            omitted = 0
        if metrics['started_at'] and not any(e.get('kind') == 'declared' for e in significant):
            lines.append('- %s - %s' % (hhmm(metrics['started_at']), self._md('Incident started: %s' % record.title)))
        finished = set()
        for event in scoped_events(record.events):
            data = event.get('data') or {}
            if event.get('kind') == 'play' and data.get('phase') == 'end' and (data.get('stats') is not None
                                                                               or data.get('interrupted')):
                finished.add(data.get('run'))
        last_run = next(((e.get('data') or {}).get('run') for e in reversed(scoped_events(record.events))
                         if e.get('kind') == 'play'), None)
        for event in significant:
            data = event.get('data') or {}
            unfinished = event.get('kind') == 'play' and data.get('phase') == 'start' and bool(data.get('run')) \
                and data['run'] not in finished and data['run'] != last_run
            lines.append('- ' + _event_line(event, unfinished=unfinished, md=self._md))
        if omitted:
            lines.append('- %d more events in timeline.jsonl' % omitted)
        if metrics['resolved_at'] and not any(e.get('kind') == 'resolved' for e in significant):
            lines.append('- %s - Resolved' % hhmm(metrics['resolved_at']))
        return lines

    def _why_lines(self, record, inputs):
        whys = [w for w in (inputs.get('five_whys') or []) if w]
        if whys:
            return ['%d. %s' % (index, self._md(why, 400)) for index, why in enumerate(whys, 1)]
        first = self._md(inputs.get('impact') or record.incident.get('impact') or record.title, 200)
        return ['1. Why did users see the impact (%s)? _to fill_' % first,
                '2. Why did that happen? _to fill_',
                '3. Why was that possible? _to fill_',
                '4. Why was it not prevented or caught earlier? _to fill_',
                '5. Why does that gap exist? _to fill: this answer is usually the root cause_']

    @staticmethod
    def _response_lines(metrics, sev):
        target = metrics['response_target_minutes']
        target_text = ('target for %s: < %s' % (sev, timefmt.target(target))) if target is not None else 'no target'
        ack = metrics['time_to_acknowledge']
        lines = ['- Time to acknowledge: %s (%s)%s' % (
            timefmt.duration(ack), target_text,
            '' if ack is None or target is None else (' - met' if ack <= target * 60 else ' - missed')),
            '- Time to mitigate: %s' % (timefmt.duration(metrics['time_to_mitigate'])
                                        if metrics['mitigated_at'] else 'no verified mitigation recorded'),
            '- Time to resolve: %s' % (timefmt.duration(metrics['time_to_resolve'])
                                       if metrics['resolved_at'] else 'not resolved yet')]
        if metrics['update_target_minutes'] is not None:
            gap = metrics['max_update_gap']
            lines.append('- Updates: %d sent, longest gap %s (cadence for %s: every %s)' % (
                metrics['comms_count'], timefmt.duration(gap) if gap is not None else 'n/a', sev,
                timefmt.target(metrics['update_target_minutes'])))
        return lines

    # --- sections -----------------------------------------------------------------------------

    @staticmethod
    def _what_happened(record):
        if record.diagnosis:
            top = record.diagnosis[0]
            return '%s: %s' % (top.get('pattern', 'hypothesis'), top.get('likely_cause', ''))
        crit = record.crit_findings()
        if crit:
            return '; '.join(str(f.get('summary')) for f in crit[:3])
        return record.incident.get('impact') or 'See the timeline.'

    def _root_cause(self, record, inputs):
        if inputs.get('root_cause'):
            return self._md(inputs['root_cause'], 1000)
        if record.diagnosis:
            top = record.diagnosis[0]
            parts = ['**Suspected** (top hypothesis of the diagnosis, not yet confirmed): %s.'
                     % self._md(top.get('likely_cause') or top.get('pattern'), 400)]
            details = []
            if top.get('pattern'):
                details.append('pattern `%s`' % escape.one_line(top['pattern'], 80).replace('`', ''))
            if top.get('confidence') is not None:
                details.append('confidence %s' % self._md(top['confidence']))
            evidence = top.get('evidence') or []
            if evidence:
                details.append('evidence %s' % self._md(', '.join(str(e) for e in evidence[:6])))
            if details:
                parts.append(' '.join(['Based on', '; '.join(details) + '.']))
            parts.append('Confirm or replace it with %s.' % inputs.get('root_cause_hint', ROOT_CAUSE_HINT))
            return ' '.join(parts)
        return ('Not determined yet (no diagnosis.json hypothesis to suggest one). Give it with %s.'
                % inputs.get('root_cause_hint', ROOT_CAUSE_HINT))

    def _contributing(self, record, inputs, metrics):
        items = [self._md(f, 400) for f in (inputs.get('contributing_factors') or []) if f]
        if items:
            return items
        top_evidence = set(record.diagnosis[0].get('evidence') or []) if record.diagnosis else set()
        for finding in record.findings:
            key = '%s/%s' % (finding.get('host'), finding.get('check'))
            if finding.get('status') in ('warn', 'crit') and key not in top_evidence:
                items.append(self._md('%s (%s, %s): %s' % (finding.get('check'), finding.get('host'),
                                                           finding.get('status'), finding.get('summary')), 300))
        for finding in record.findings:
            if finding.get('check') == 'deploy.recent' and finding.get('status') in ('warn', 'crit'):
                items.append('A deployment fell inside the incident window.')
                break
        if metrics.get('acknowledge_met') is False:
            items.append('Acknowledgement took longer than the severity target.')
        if not items:
            items.append('None identified from the recorded findings; add any with postmortem_contributing_factors.')
        return items[:12]

    def _assessment(self, record, inputs, metrics):
        well = [self._md(i, 300) for i in (inputs.get('went_well') or []) if i]
        improve = [self._md(i, 300) for i in (inputs.get('could_be_improved') or []) if i]
        sev = metrics['severity']
        target = metrics['response_target_minutes']
        ack = metrics['time_to_acknowledge']
        if ack is not None and target is not None:
            if ack <= target * 60:
                well.append('Acknowledged in %s, within the %s response target (< %s).'
                            % (timefmt.duration(ack), sev, timefmt.target(target)))
            else:
                improve.append('Acknowledged in %s, beyond the %s response target (< %s).'
                               % (timefmt.duration(ack), sev, timefmt.target(target)))
        if metrics['mitigated_at']:
            well.append('Mitigation verified %s after the start.' % timefmt.duration(metrics['time_to_mitigate']))
        else:
            improve.append('No verified mitigation was recorded in the timeline.')
        if metrics['resolved_at']:
            well.append('Resolved %s after the start.' % timefmt.duration(metrics['time_to_resolve']))
        if record.diagnosis:
            well.append('Diagnosis ranked %d %s from the findings.' % (
                len(record.diagnosis), 'hypothesis' if len(record.diagnosis) == 1 else 'hypotheses'))
        elif record.findings:
            improve.append('Findings were recorded but no diagnosis was made.')
        if metrics['update_target_minutes'] is not None and sev in ('SEV1', 'SEV2', 'SEV3'):
            gap = metrics['max_update_gap']
            if metrics['comms_count'] == 0:
                improve.append('No communication was recorded in the timeline.')
            elif gap is not None and gap > metrics['update_target_minutes'] * 60:
                improve.append('Longest gap between updates was %s, above the %s cadence of %s.'
                               % (timefmt.duration(gap), sev, timefmt.target(metrics['update_target_minutes'])))
            else:
                well.append('Updates kept to the %s cadence (%d sent).' % (sev, metrics['comms_count']))
        if metrics['failed_tasks']:
            improve.append('%d automation steps failed or hosts were unreachable during the response.'
                           % metrics['failed_tasks'])
        if not well:
            well.append('The incident was recorded in a timeline from the start.')
        if not improve:
            improve.append('Nothing recorded; add items with postmortem_could_be_improved.')
        return well, improve

    def _action_items(self, record, inputs, sev, end_date):
        default_owner = str(inputs.get('default_owner') or '@oncall')
        if not default_owner.startswith('@'):
            default_owner = '@' + default_owner
        due = (end_date + datetime.timedelta(days=DUE_DAYS.get(sev, 14))).isoformat()
        items = []
        for item in inputs.get('action_items') or []:
            if isinstance(item, str):
                item = {'measure': item}
            owner = str(item.get('owner') or default_owner)
            if not owner.startswith('@'):
                owner = '@' + owner
            given = str(item.get('due') or '')
            items.append('%s - Owner: %s - Due: %s' % (self._md(item.get('measure'), 300), self._md(owner, 60),
                                                       self._md(given, 40) if given else due))
        covered = ' '.join(str(i.get('measure', i) if isinstance(i, dict) else i)
                           for i in (inputs.get('action_items') or []))
        for finding in record.crit_findings():
            check = finding.get('check') or 'check'
            if check in covered:
                continue
            measure = 'Proposed: prevent a recurrence of %s on %s (%s) and alert on it before users notice' % (
                check, finding.get('host'), finding.get('summary'))
            items.append('%s - Owner: %s - Due: %s' % (self._md(measure, 300), self._md(default_owner, 60), due))
        if not items:
            items.append('%s - Owner: %s - Due: %s' % (
                'Proposed: confirm the root cause and add a regression test and an alert for it',
                self._md(default_owner, 60), due))
        items.append('%s - Owner: %s - Due: %s' % (
            'Update the runbooks (playbooks/runbooks.yml) with this failure mode', self._md(default_owner, 60), due))
        return items

    @staticmethod
    def _requirement(sev, metrics):
        if sev in ('SEV1', 'SEV2'):
            base = metrics['resolved_at'] or metrics['end']
            deadline = fmt_time(parse_ts(base) + datetime.timedelta(hours=48)) if base else 'within 48 hours'
            return ('%s: a blameless post-mortem is required within 48 hours of resolution (by %s), '
                    'shared in #engineering.' % (sev, deadline))
        if sev == 'SEV3':
            return 'SEV3: a lightweight review is required; share the summary in #engineering.'
        if sev == 'SEV4':
            return 'SEV4: no post-mortem is required; track the action items in a ticket.'
        return 'Severity not classified: decide on a review once the severity is set.'


def incident_of_document(path):
    """The incident id a rendered post-mortem names (its `- **Incident:**` line), or None."""
    try:
        with open(path, 'r', encoding='utf-8') as handle:
            for line in handle:
                if line.startswith('- **Incident:** '):
                    return line[len('- **Incident:** '):].strip().strip('`')
    except OSError:
        return None
    return None


def postmortem_dest(path, record, started, one_per_incident=False):
    """postmortem-YYYY-MM-DD.md; with one_per_incident (a shared output directory), another incident's file of
    the same day is never taken: postmortem-YYYY-MM-DD-<incident id>.md instead."""
    name = postmortem_filename(started) if started else 'postmortem-undated.md'
    dest = os.path.join(path, name)
    if one_per_incident and os.path.exists(dest):
        owner = incident_of_document(dest)
        if owner != md_text(record.incident_id or 'unknown'):
            root, ext = os.path.splitext(name)
            dest = os.path.join(path, '%s-%s%s' % (root, safe_name(record.incident_id or 'unknown'), ext))
    return dest


def render_postmortem(path, record, inputs=None, final=False, redactor=None, now=None, one_per_incident=False):
    """Render the post-mortem of `record` into its directory, never over a person's edits.

    Returns incident_files.write_rendered's dict plus 'text': 'path' is where the text went; 'status' 'edited'
    means a person edited the document ('edited' names it) and the new draft went beside it.
    """
    text = PostmortemRenderer(redactor=redactor).render(record, inputs=inputs, final=final, now=now)
    started = compute_metrics(record, now=now)['started_at']
    dest = postmortem_dest(path, record, started, one_per_incident=one_per_incident)
    outcome = write_rendered(dest, text)
    outcome['text'] = text
    return outcome


def render_to_dir(path, record, inputs=None, final=False, redactor=None, now=None, one_per_incident=False):
    """render_postmortem as (file written, changed, text)."""
    outcome = render_postmortem(path, record, inputs=inputs, final=final, redactor=redactor, now=now,
                                one_per_incident=one_per_incident)
    return outcome['path'], outcome['changed'], outcome['text']
