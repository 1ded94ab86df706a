# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Incident communications: the practice's templates, message files, and delivery payloads.

Rendering is pure and deterministic (``now`` is a parameter) so unit tests pin every line.
Every value from outside (title, commander, impact, findings, actions...) goes into a message as one line of escaped
Markdown (escape.md): messages/ files and status pages render it as text, never as HTML, a link or a new line.
Slack gets the text as Slack escapes it (escape.slack_code); the mentions, from the configuration, stay live.
Delivery (Slack incoming webhook, a generic JSON webhook, PagerDuty Events v2, a
Statuspage-style HTTP API) uses only the standard library; failures are returned, never raised,
and no URL or key ever appears in what is returned.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import socket
from urllib.error import HTTPError, URLError

from ansible.module_utils.urls import open_url

from ansible_collections.sre.incident_response.plugins.plugin_utils.render import escape
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files
from ansible_collections.sre.incident_response.plugins.module_utils import timefmt
from ansible_collections.sre.incident_response.plugins.module_utils.findings import finding_line, worst_first
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import severity as sevtable

KINDS = ('declared', 'update', 'statuspage', 'ticket')

# Statuspage-style status of each practice status (Mitigating: a fix is being applied, still "identified").
STATUSPAGE_STATUS = {'Investigating': 'investigating', 'Identified': 'identified', 'Mitigating': 'identified',
                     'Resolved': 'resolved'}
# The practice's status-page templates exist for Investigating, Identified and Resolved.
STATUSPAGE_TEMPLATE = {'Investigating': 'Investigating', 'Identified': 'Identified', 'Mitigating': 'Identified',
                       'Resolved': 'Resolved'}
PAGERDUTY_SEVERITY = {'SEV1': 'critical', 'SEV2': 'error', 'SEV3': 'warning', 'SEV4': 'info'}

USER_IMPACT = {
    'backend_down': 'errors (502/503) on every request',
    'slow_responses': 'slow responses and timeouts',
    'partial_failures': 'errors on some features',
    'memory_growth': 'intermittent errors while the service restarts',
    'error_spike_after_deploy': 'errors since the latest deployment',
    'gradual_degradation': 'degraded performance and intermittent errors',
}


def normalize_status(status):
    # imported here: incident.py -> incident_store -> comms (message names) would otherwise be a cycle
    from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.incident import (  # pylint: disable=import-outside-toplevel
        INCIDENT_STATUSES)
    text = str(status or '').strip().lower()
    for known in INCIDENT_STATUSES:
        if known.lower() == text:
            return known
    raise ValueError('status %r is unknown: use one of %s' % (status, ', '.join(INCIDENT_STATUSES)))


# --- time (written by module_utils/timefmt) ---------------------------------------------------------------

def next_update(now, severity):
    """(datetime, text) of the next update from the severity's cadence."""
    minutes = sevtable.info(severity)['update_minutes']
    due = now + datetime.timedelta(minutes=minutes)
    return due, '%s (in %s)' % (timefmt.utc_minute(due), timefmt.minutes_words(minutes))


def duration(incident, now):
    started = files.parse_ts(incident.get('started_at')) if incident.get('started_at') else now
    return timefmt.duration((now - started).total_seconds())


# --- content from the incident's files --------------------------------------------------------------------

def summarize_findings(diagnosis, findings=None, limit=3):
    """What we know, one paragraph, from diagnosis.json (and findings.json when there is no diagnosis)."""
    if diagnosis:
        hypotheses = diagnosis.get('hypotheses') or []
        if hypotheses:
            parts = []
            for hyp in hypotheses[:limit]:
                parts.append('%s (%s, confidence %.2f; evidence %s)' % (
                    hyp.get('likely_cause'), hyp.get('pattern'), float(hyp.get('confidence') or 0),
                    ', '.join(hyp.get('evidence') or [])))
            affected = diagnosis.get('affected_services') or []
            prefix = 'Affected: %s. ' % ', '.join(affected) if affected else ''
            return escape.one_line(prefix + 'Top hypotheses: ' + '; '.join('%d) %s' % (i, p) for i, p in enumerate(parts, 1)), 900)
        if diagnosis.get('summary'):
            return escape.one_line(diagnosis['summary'] or '', 300)
    bad = [f for f in (findings or []) if f.get('status') in ('warn', 'crit')]
    if bad:
        return escape.one_line('; '.join(finding_line(f) for f in sorted(bad, key=worst_first)[:limit]), 900)
    if findings:
        return 'All %d checks ok.' % len(findings)
    return 'Assessment in progress.'


def summarize_actions(events, diagnosis, status):
    """What we are doing: recent plan/approval/action/verify events, else the recommended first action."""
    actions = [e for e in (events or []) if e.get('kind') in ('plan', 'approval', 'action', 'verify')]
    if actions:
        return escape.one_line('; '.join(e.get('summary', '') for e in actions[-3:]), 900)
    if status == 'Resolved':
        return 'None; monitoring.'
    hypotheses = (diagnosis or {}).get('hypotheses') or []
    if hypotheses:
        return escape.one_line('Recommended first action: %s' % hypotheses[0].get('first_action'), 900)
    return 'Running diagnostics (health, logs, database, cache, network, recent changes).'


def user_impact(incident, diagnosis):
    impact = incident.get('impact')
    if impact and impact != 'Under assessment':
        return impact
    hypotheses = (diagnosis or {}).get('hypotheses') or []
    affected = (diagnosis or {}).get('affected_services') or []
    if hypotheses:
        text = USER_IMPACT.get(hypotheses[0].get('pattern'), 'errors')
        return '%s%s' % (text, ' (%s)' % ', '.join(affected) if affected else '')
    if diagnosis and diagnosis.get('healthy'):
        return 'No user-visible impact detected by the checks'
    return 'Under assessment'


# --- the templates (PRACTICE.md, exactly in structure) -------------------------------------------------------

def _v(value, limit=600):
    """An outside value in a message: one line of escaped Markdown."""
    return escape.md(value, limit)


def render_declared(incident, now, impact=None):
    dummy, nxt = next_update(now, incident['severity'])
    return '\n'.join([
        'INCIDENT DECLARED: %s' % _v(incident.get('title')),
        'Severity: %s' % _v(incident['severity']),
        'Commander: %s' % _v(incident.get('commander')),
        'Start time: %s' % files.isoformat(files.parse_ts(incident.get('started_at') or now)),
        'Impact: %s' % _v(impact or incident.get('impact') or 'Under assessment'),
        'Status: Investigating',
        'Next update: %s' % nxt,
    ]) + '\n'


def render_update(incident, status, findings_text, actions_text, now):
    status = normalize_status(status)
    if status == 'Resolved':
        nxt = 'None - resolved; post-mortem: %s' % sevtable.info(incident['severity']).get('postmortem')
    else:
        dummy, nxt = next_update(now, incident['severity'])
    return '\n'.join([
        'INCIDENT UPDATE: %s' % _v(incident.get('title')),
        'Severity: %s' % _v(incident['severity']),
        'Duration: %s' % duration(incident, now),
        'Status: %s' % status,
        'Current findings: %s' % _v(findings_text or 'Assessment in progress.', 1000),
        'Actions in progress: %s' % _v(actions_text or 'None.', 1000),
        'Next update: %s' % nxt,
    ]) + '\n'


def _sentence(text):
    text = escape.one_line(text or '', 400).rstrip('.')
    first = text.split(' ', 1)[0]
    if len(first) > 1 and (first.isupper() or any(c.isupper() for c in first[1:])):
        return _v(text)  # an acronym or a name (API, TLS, PostgreSQL) keeps its case
    return _v(text[:1].lower() + text[1:])


def render_statuspage(incident, status, now, issue=None, impact=None, eta=None, service=None, root_cause=None):
    template = STATUSPAGE_TEMPLATE[normalize_status(status)]
    if template == 'Investigating':
        minutes = sevtable.info(incident['severity'])['update_minutes']
        return '\n'.join([
            '[Investigating] We are investigating reports of %s.' % _sentence(issue or incident.get('title')),
            'Users may experience %s.' % _sentence(impact or 'errors or slow responses'),
            'We will provide an update within %s.' % timefmt.minutes_words(minutes),
        ]) + '\n'
    if template == 'Identified':
        return '\n'.join([
            '[Identified] The issue has been identified as %s.' % _sentence(issue or incident.get('title')),
            'We are working on a fix. Estimated resolution: %s.' % (_v(escape.one_line(eta, 120).rstrip('.')) if eta else 'to be confirmed'),
        ]) + '\n'
    return '\n'.join([
        '[Resolved] The issue affecting %s has been resolved.' % _v(service or ', '.join(incident.get('services') or []) or 'our service', 200),
        'The root cause was %s.' % _sentence(root_cause or 'under investigation; details will follow in the post-mortem'),
        'We apologize for the disruption and will publish a detailed post-mortem.',
    ]) + '\n'


def render_ticket(incident, findings_text, actions_text, now):
    row = sevtable.info(incident['severity'])
    return '\n'.join([
        'TICKET: [%s] %s' % (_v(incident['severity']), _v(incident.get('title'))),
        'Incident: %s' % _v(incident.get('id')),
        'Severity: %s (%s) - %s' % (_v(incident['severity']), row['priority'], row['escalation_text']),
        'Start time: %s' % files.isoformat(files.parse_ts(incident.get('started_at') or now)),
        'Respond within: %s' % timefmt.minutes_words(row['response_minutes']),
        'Impact: %s' % _v(incident.get('impact') or 'Under assessment'),
        'Findings: %s' % _v(findings_text or 'Assessment in progress.', 1000),
        'Next steps: %s' % _v(actions_text or 'Handle in working hours.', 1000),
    ]) + '\n'


# --- message files (written by the incident store, plugin_utils/incident_store.py) ---------------------------

def message_name(kind, now, status=None):
    stamp = now.astimezone(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')
    suffix = '-%s' % status.lower() if status and kind in ('update', 'statuspage') else ''
    return '%s-%s%s.md' % (stamp, kind, suffix)


# --- delivery payloads -------------------------------------------------------------------------------------

def slack_payload(text, channel, username='incident-bot', mentions=None):
    """Slack incoming-webhook body: the message as a code block (the template's layout), people tagged first.

    `text` is a rendered message (escaped Markdown): shown verbatim in the block, escaped by Slack's rules, so
    `<!channel>`, `<@U123>` or a link in it are text and no backtick closes the block. The mentions come from the
    configuration (incident contacts) and stay live."""
    body = '```\n%s```' % escape.slack_code(escape.md_unescape(text)) if text else ''
    if mentions:
        body = '%s\n%s' % (' '.join(mentions), body)
    return {'channel': channel, 'username': username, 'text': body}


def webhook_payload(incident, kind, status, text, channel, now):
    return {
        'event': 'incident.%s' % kind,
        'incident_id': incident.get('id'),
        'title': incident.get('title'),
        'severity': incident.get('severity'),
        'status': status,
        'channel': channel,
        'commander': incident.get('commander'),
        'started_at': incident.get('started_at'),
        'sent_at': files.isoformat(now),
        'text': text,
    }


def pagerduty_payload(routing_key, incident, action, summary, source='sre.incident_response', details=None):
    if action not in ('trigger', 'acknowledge', 'resolve'):
        raise ValueError('PagerDuty event_action %r is not trigger, acknowledge or resolve' % (action,))
    body = {'routing_key': routing_key, 'event_action': action, 'dedup_key': incident.get('id')}
    if action == 'trigger':
        body['payload'] = {
            'summary': escape.one_line('[%s] %s' % (incident.get('severity'), summary), 1024),
            'source': source,
            'severity': PAGERDUTY_SEVERITY.get(incident.get('severity'), 'error'),
            'component': ', '.join(incident.get('services') or []) or None,
            'custom_details': details or {},
        }
    return body


def statuspage_payload(incident, status, text, component_ids=None):
    body = {'incident': {
        'name': incident.get('title'),
        'status': STATUSPAGE_STATUS[normalize_status(status)],
        'body': text,
        'metadata': {'incident_id': incident.get('id'), 'severity': incident.get('severity')},
    }}
    if component_ids:
        body['incident']['component_ids'] = list(component_ids)
    return body


# --- HTTP --------------------------------------------------------------------------------------------------

def post_json(url, payload, headers=None, method='POST', timeout=5.0):
    """Send JSON; returns {ok, status, body (parsed when JSON), error}. Never raises, never echoes the URL."""
    data = json.dumps(payload).encode('utf-8')
    all_headers = {'Content-Type': 'application/json', 'User-Agent': 'sre.incident_response'}
    all_headers.update(headers or {})
    try:
        response = open_url(url, data=data, headers=all_headers, method=method, timeout=timeout)
        status = response.getcode()
        raw = response.read(65536)
    except HTTPError as exc:
        return {'ok': False, 'status': exc.code, 'body': None, 'error': 'HTTP %d %s' % (exc.code, exc.reason)}
    except (URLError, socket.timeout, OSError, ValueError) as exc:
        reason = getattr(exc, 'reason', exc)
        return {'ok': False, 'status': None, 'body': None, 'error': '%s: %s' % (type(exc).__name__, reason)}
    try:
        body = json.loads(raw.decode('utf-8')) if raw else None
    except ValueError:
        body = raw.decode('utf-8', 'replace')[:200]
    return {'ok': 200 <= status < 300, 'status': status, 'body': body, 'error': None if 200 <= status < 300 else 'HTTP %d' % status}


# --- exactly-once delivery: what is claimed (the incident store claims it, under its lock) ----------------------

def delivery_key(kind, status, incident, now):
    """What is sent at most once: declared and ticket once per incident; the status page once per status; an update
    once per status and update interval of the severity's cadence (the next interval may send it again)."""
    if kind in ('declared', 'ticket'):
        return kind
    if kind == 'statuspage':
        return 'statuspage|%s' % status
    minutes = 0
    try:
        minutes = int(sevtable.info(sevtable.normalize(incident.get('severity') or 'SEV4'))['update_minutes'])
    except (KeyError, ValueError, TypeError):
        minutes = 0
    slot = 0
    try:
        started = files.parse_ts(incident.get('started_at'))
        if minutes > 0:
            slot = max(0, int((now - started).total_seconds() // (minutes * 60)))
    except (TypeError, ValueError):
        slot = 0
    return 'update|%s|%d' % (status, slot)
