# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declare or load an incident: incident.json plus the `declared` and `severity` events.

Used by the `incident_context` action plugin (role `incident`) and by unit tests.
Pure Python, standard library only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import os

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import classify
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import severity as sevtable
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore

# The incident's status as communicated (messages, status page), in the order an incident goes through them.
# Not a finding's status (ok, warn, crit, unknown: module_utils/findings.STATUSES).
INCIDENT_STATUSES = ('Investigating', 'Identified', 'Mitigating', 'Resolved')
POLICY_KEYS = ('priority', 'response_minutes', 'update_minutes', 'escalation', 'notify', 'escalation_text',
               'page', 'channel', 'status_page', 'postmortem')


def generate_id(now=None, suffix=None):
    """INC-YYYYMMDD-HHMM-xxxx (UTC, 4 random hex digits)."""
    now = now or files.utcnow()
    suffix = suffix or binascii.hexlify(os.urandom(2)).decode('ascii')
    return 'INC-%s-%s' % (now.strftime('%Y%m%d-%H%M'), suffix)


def policy(sev):
    row = sevtable.info(sev)
    return dict((key, row.get(key)) for key in POLICY_KEYS)


def _commander(given, contacts):
    if given:
        return given
    ic = (contacts or {}).get('incident_commander') or {}
    if isinstance(ic, dict):
        name, handle = ic.get('name'), ic.get('handle')
        if name and handle:
            return '%s (%s)' % (name, handle)
        return name or handle or 'unassigned'
    return str(ic) if ic else 'unassigned'


def declare_or_load(incident_id='', incident_dir='incidents', title='', commander='', started_at='', impact='',
                    severity='', impact_facts=None, thresholds=None, severity_floor='', severity_floor_reasons=None,
                    services=None, contacts=None, must_exist=False, default_severity='SEV4', host=None, now=None,
                    status='', auto_title='', store=None):
    """Create or update <incident_dir>/<id>/incident.json and append the events; returns a dict.

    store: the incident's IncidentStore when the caller has it (then incident_id and incident_dir are its own).

    Returns: {incident, path, created, severity_changed, decision, events (kinds appended)}.
    Raises ValueError with a message naming the offending variable.
    """
    now = now or files.utcnow()
    if incident_id and not files.valid_incident_id(incident_id):
        raise ValueError('incident_id %r is malformed: use letters, digits, ".", "_" or "-" (at most 64 characters), '
                         'e.g. INC-20261127-0312-a1b2' % (incident_id,))
    if severity:
        try:
            sevtable.normalize(severity)
        except ValueError:
            raise ValueError('severity %r is unknown: use SEV1, SEV2, SEV3, SEV4 (or P1..P4)' % (severity,))
    if severity_floor:
        sevtable.normalize(severity_floor)
    try:
        impact_facts = classify.normalize_facts(impact_facts)
    except ValueError as exc:
        raise ValueError('impact_facts: %s' % exc)
    if started_at:
        try:
            started = files.isoformat(files.parse_ts(started_at))
        except ValueError:
            raise ValueError('started_at %r is not an ISO 8601 timestamp (e.g. 2026-11-27T03:12:00Z)' % (started_at,))
    else:
        started = None

    if status and status not in INCIDENT_STATUSES:
        raise ValueError('status %r is unknown: use one of %s' % (status, ', '.join(INCIDENT_STATUSES)))
    if store is None:
        store = IncidentStore.at(incident_dir, incident_id or generate_id(now), redactor=Redactor())
    incident_id = store.incident_id
    if must_exist and store.incident(fresh=True) is None:
        raise ValueError('incident_id %s: no incident at %s (declare it first with playbooks/triage.yml)'
                         % (incident_id, store.path))
    # Read, decide and write under the incident's lock: runs racing on one new id (AWX slices, two alerts)
    # declare it once; the others load it and merge their services.
    with store.locked_incident():
        return _declare_or_load_locked(
            store, now, title, commander, started, impact, severity, impact_facts, thresholds,
            severity_floor, severity_floor_reasons, services, contacts, default_severity, host, status, auto_title)


def _declare_or_load_locked(store, now, title, commander, started, impact, severity, impact_facts,
                            thresholds, severity_floor, severity_floor_reasons, services, contacts, default_severity,
                            host, status, auto_title):
    """Under incident.json's lock: read, merge the input, classify, record the events, write."""
    incident_id = store.incident_id
    existing = store.incident(fresh=True)
    created = existing is None
    stamp = files.isoformat(now)
    redactor = Redactor()
    if created:
        incident = _new_incident(incident_id, stamp, title, commander, started, impact, services, contacts)
    else:
        incident = _merged_incident(existing, title, commander, started, impact, services, auto_title)
    if status:
        incident['status'] = status
    if impact_facts:
        merged = dict(incident.get('impact_facts') or {})
        merged.update(impact_facts)
        incident['impact_facts'] = merged

    decision = classify.decide(
        explicit=severity,
        facts=impact_facts,
        current=incident.get('severity'),
        floor=severity_floor or None,
        floor_reasons=severity_floor_reasons,
        thresholds=thresholds,
        default=default_severity,
    )
    previous = incident.get('severity')
    severity_changed = decision['severity'] != previous
    incident['severity'] = decision['severity']
    incident['policy'] = policy(decision['severity'])
    if severity_changed:
        incident['severity_source'] = decision['source']
        incident['severity_reasons'] = decision['reasons']
    incident['updated_at'] = stamp

    events = []
    store.ensure(messages=True)
    if created:
        events.append(_declared_event(incident, host, stamp))
    if severity_changed:
        events.append(_severity_event(incident_id, decision, previous, impact_facts, host, stamp))
    if events:
        store.append(events, redactor)
    store.write_incident(incident, redactor)
    announced = any(name.endswith('-declared.md') for name in store.messages())
    return {
        'incident': incident,
        'announced': announced,
        'path': store.path,
        'created': created,
        'severity_changed': severity_changed,
        'decision': decision,
        'events': [e['kind'] for e in events],
    }


def _new_incident(incident_id, stamp, title, commander, started, impact, services, contacts):
    return {
        'id': incident_id,
        'title': title or 'Incident %s' % incident_id,
        'title_auto': not title,
        'commander': _commander(commander, contacts),
        'started_at': started or stamp,
        'declared_at': stamp,
        'impact': impact or 'Under assessment',
        'status': 'Investigating',
        'services': sorted(set(services or [])),
        'severity': None,
    }


def _merged_incident(existing, title, commander, started, impact, services, auto_title):
    """An existing incident with what this run gives (a person's title, impact, commander win over generated ones)."""
    incident = dict(existing)
    for key, value in (('title', title), ('impact', impact)):
        if value:
            incident[key] = value
    if title:
        incident['title_auto'] = False
    elif auto_title and incident.get('title_auto'):
        # A generated title is replaced once by the diagnosis' (before the first message goes out).
        incident['title'] = auto_title
        incident['title_auto'] = False
    if commander:
        incident['commander'] = commander
    if started:
        incident['started_at'] = started
    if services:
        incident['services'] = sorted(set(incident.get('services') or []) | set(services))
    return incident


def _declared_event(incident, host, stamp):
    return files.make_event(
        incident['id'], 'declared',
        'Incident declared: %s (commander %s, started %s)' % (incident['title'], incident['commander'],
                                                              incident['started_at']),
        host=host,
        data={'title': incident['title'], 'commander': incident['commander'],
              'started_at': incident['started_at'], 'impact': incident['impact'],
              'services': incident['services'], 'acknowledged_at': stamp}, ts=stamp)


def _severity_event(incident_id, decision, previous, impact_facts, host, stamp):
    if previous:
        verb = 'raised' if sevtable.more_severe(previous, decision['severity']) == decision['severity'] else 'changed'
        summary = 'Severity %s from %s to %s: %s' % (verb, previous, decision['severity'], '; '.join(decision['reasons']))
    else:
        summary = 'Severity %s: %s' % (decision['severity'], '; '.join(decision['reasons']))
    return files.make_event(
        incident_id, 'severity', summary, host=host,
        data={'severity': decision['severity'], 'previous': previous, 'source': decision['source'],
              'reasons': decision['reasons'], 'impact_facts': impact_facts,
              'response_minutes': decision['response_minutes'], 'update_minutes': decision['update_minutes'],
              'escalation': decision['escalation'], 'channel': decision['channel']}, ts=stamp)
