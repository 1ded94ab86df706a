# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alerts start the triage: one batch of alerts of one Alertmanager group -> the incident of that group.

Used by the `alert_intake` action plugin (playbooks/alert.yml, run by the rulebook
extensions/eda/rulebooks/incident_response.yml) and by unit tests. Pure Python.

* Alert text is data. The event source hands the batch over base64-encoded
  (`decode_event`); a notification file given by hand is parsed here
  (`read_notification_file`). Neither ever passes through a template.
* One incident per alert group: `<incident_dir>/.alert-groups.json` maps an
  Alertmanager group key to the incident it opened. The registry is read,
  the incident declared and the registry written under one exclusive lock
  (incident_files.lock), so concurrent runs for the same group find the same
  incident instead of opening two.
* The group's incident stays the group's incident until a person resolves it
  (status Resolved): resolved alerts record events and ask for the Resolved
  draft, they do not close anything.
* Throttle: at most one triage per group per `throttle_minutes`; throttled
  alerts are still recorded in the timeline.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import json
import os
import re

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import incident as incident_logic
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import severity as sevtable
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentRoot, IncidentStore

ALERT_STATUSES = ('firing', 'resolved')
# The event of extensions/eda/plugins/event_source/alertmanager.py (EVENT_FORMAT there; a unit test keeps them equal).
EVENT_FORMAT = 'sre.incident_response.alertmanager/2'
MAX_EVENT_CHARS = 128 * 1048576   # base64 of the largest batch the event source holds (max_pending_bytes)
MAX_FILE_BYTES = 16 * 1048576     # a notification file given by hand
MAX_ALERTS = 10000
MAX_PROBLEMS = 20
# Prometheus' usual severity labels -> the practice's severities (overridable).
DEFAULT_SEVERITY_MAP = {'critical': 'SEV2', 'page': 'SEV2', 'error': 'SEV3', 'warning': 'SEV3', 'info': 'SEV4'}
BY_HAND = 'give an Alertmanager notification by hand with -e alert_notification_file=PATH'


def _short(value, limit=60):
    text = str(value)
    return text if len(text) <= limit else text[:limit] + '...'


def _load_json(data, what):
    try:
        return json.loads(data.decode('utf-8') if isinstance(data, bytes) else data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError('%s is not JSON (%s), nothing was recorded' % (what, _short(exc, 120)))


def decode_event(event):
    """The alert batch of an event of the alertmanager event source (`ansible_eda.event`); ValueError if not one.

    The event holds the batch as base64-encoded JSON, so that no alert text is a string Ansible could template.
    """
    if not isinstance(event, dict):
        raise ValueError('the event must be a dict, got %s' % type(event).__name__)
    if event.get('format') != EVENT_FORMAT:
        raise ValueError('the event is not one of the sre.incident_response.alertmanager event source (format %s, '
                         'expected %s); %s' % (_short(repr(event.get('format'))), EVENT_FORMAT, BY_HAND))
    payload = event.get('payload')
    if not isinstance(payload, str) or not payload:
        raise ValueError('the event has no payload (base64-encoded JSON of the alert batch)')
    if len(payload) > MAX_EVENT_CHARS:
        raise ValueError('the event payload is larger than %d characters' % MAX_EVENT_CHARS)
    try:
        raw = base64.b64decode(str(payload).encode('ascii'), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise ValueError('the event payload is not base64')
    return _load_json(raw, 'the event payload')


def batch_from_notification(payload):
    """An Alertmanager webhook notification (what Alertmanager POSTs) as an alert batch."""
    if not isinstance(payload, dict):
        raise ValueError('the notification must be a JSON object (an Alertmanager webhook notification)')
    alerts = payload.get('alerts')
    batch = {
        'group_key': payload.get('groupKey'), 'group_status': payload.get('status'),
        'group_labels': payload.get('groupLabels') or {}, 'common_labels': payload.get('commonLabels') or {},
        'common_annotations': payload.get('commonAnnotations') or {}, 'receiver': payload.get('receiver') or '',
        'external_url': payload.get('externalURL') or '', 'truncated_alerts': payload.get('truncatedAlerts') or 0,
        'notifications': 1, 'alerts': alerts,
    }
    if isinstance(alerts, list):
        batch['alerts_in_group'] = len(alerts)
        batch['alerts'] = [dict(a, fired=a.get('status') == 'firing') if isinstance(a, dict) else a for a in alerts]
    return batch


def read_notification_file(path):
    """The alert batch of a file holding one Alertmanager webhook notification (JSON)."""
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise ValueError('alert_notification_file %s cannot be read: %s' % (path, exc.strerror or exc))
    if size > MAX_FILE_BYTES:
        raise ValueError('alert_notification_file %s is larger than %d bytes' % (path, MAX_FILE_BYTES))
    with open(path, 'rb') as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    return batch_from_notification(_load_json(data, 'alert_notification_file %s' % path))


def _str_map(value, where, problems):
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        problems.append('%s must be a map of strings to strings' % where)
        return {}
    return value


def validate_batch(batch):
    """Problems of an alert batch (empty list: valid). Every loop ends: at most MAX_ALERTS alerts are looked at."""
    problems = []
    if not isinstance(batch, dict):
        return ['the alert batch must be a JSON object, got %s' % type(batch).__name__]
    if not batch.get('group_key') or not isinstance(batch.get('group_key'), str):
        problems.append('group_key is missing (the Alertmanager groupKey)')
    for name in ('group_labels', 'common_labels', 'common_annotations'):
        _str_map(batch.get(name), name, problems)
    alerts = batch.get('alerts')
    if not isinstance(alerts, list) or not alerts:
        problems.append('alerts must be a non-empty list')
        return problems
    if len(alerts) > MAX_ALERTS:
        return problems + ['%d alerts in one batch, more than %d' % (len(alerts), MAX_ALERTS)]
    for index, alert in enumerate(alerts):
        if len(problems) >= MAX_PROBLEMS:
            problems.append('(more problems not listed)')
            break
        where = 'alerts[%d]' % index
        if not isinstance(alert, dict):
            problems.append('%s must be an object' % where)
            continue
        if alert.get('status') not in ALERT_STATUSES:
            problems.append('%s.status %s is not firing or resolved' % (where, _short(repr(alert.get('status')), 30)))
        if not alert.get('fingerprint') or not isinstance(alert.get('fingerprint'), str):
            problems.append('%s.fingerprint is missing' % where)
        labels = _str_map(alert.get('labels'), where + '.labels', problems)
        if not labels.get('alertname'):
            problems.append('%s.labels.alertname is missing' % where)
        _str_map(alert.get('annotations'), where + '.annotations', problems)
        for name in ('startsAt', 'endsAt', 'generatorURL'):
            if not isinstance(alert.get(name) or '', str):
                problems.append('%s.%s must be a string' % (where, name))
    return problems


def _services_index(hosts_services):
    """{host: [service dicts]} -> ({service name: [hosts]}, {service name: set(depends_on)})."""
    hosts_of, deps = {}, {}
    for host, services in sorted((hosts_services or {}).items()):
        for svc in services or []:
            if not isinstance(svc, dict) or not svc.get('name'):
                continue
            hosts_of.setdefault(svc['name'], [])
            if host not in hosts_of[svc['name']]:
                hosts_of[svc['name']].append(host)
            deps.setdefault(svc['name'], set()).update(svc.get('depends_on') or [])
    return hosts_of, deps


def triage_hosts(labels, hosts_services, inventory_names=None, index=None):
    """The hosts to triage for an alert's labels; returns (pattern, reason).

    1. label `triage_hosts`: inventory host or group names separated by `:` or `,`, used when EVERY name is
       one of `inventory_names` (no wildcards, ranges, regexes or `!`/`&`: a label never writes a pattern);
    2. label `service` naming a service in inventory: the hosts of that service, of the services it
       depends on and of the services that depend on it (one hop: a database alert also looks at the
       backend that reports the errors, a backend alert at its database and cache);
    3. otherwise every host (`all`).
    """
    labels = labels or {}
    note = ''
    if labels.get('triage_hosts'):
        names = [n for n in re.split(r'[:,]', str(labels['triage_hosts'])) if n][:100]
        known = set(inventory_names or ())
        unknown = [n for n in names if n not in known]
        if names and not unknown:
            return ':'.join(names), 'label triage_hosts'
        note = 'label triage_hosts ignored (not inventory names: %s); ' % _short(', '.join(unknown) or '-', 80)
    service = labels.get('service')
    hosts_of, deps = index or _services_index(hosts_services)
    if service and service in hosts_of:
        scope = {service} | set(deps.get(service, ())) | set(name for name, d in deps.items() if service in d)
        hosts = []
        for name in sorted(scope):
            for host in hosts_of.get(name, []):
                if host not in hosts:
                    hosts.append(host)
        return ':'.join(sorted(hosts)), note + 'service %s, its dependencies and dependents' % service
    if service:
        return 'all', note + 'service %s is not in inventory: every host' % _short(service)
    return 'all', note + 'no service label: every host'


def triage_scope(alerts, hosts_services, inventory_names=None):
    """(pattern, reason): the union of the triage hosts of `alerts`; `all` as soon as one alert asks for it."""
    index = _services_index(hosts_services)
    hosts, reasons, seen = [], [], {}
    for alert in alerts:
        labels = alert.get('labels') or {}
        key = (labels.get('triage_hosts'), labels.get('service'))
        if key in seen:
            continue
        pattern, reason = seen[key] = triage_hosts(labels, hosts_services, inventory_names, index)
        if reason not in reasons:
            reasons.append(reason)
        if pattern == 'all':
            return 'all', reason
        for name in pattern.split(':'):
            if name and name not in hosts:
                hosts.append(name)
    return (':'.join(sorted(hosts)) or 'all'), _short('; '.join(reasons), 300)


def alert_severity(labels, severity_map=None):
    """SEVn for an alert: label `incident_severity` (SEVn or Pn) wins, else the `severity` label mapped."""
    labels = labels or {}
    explicit = labels.get('incident_severity')
    if explicit:
        try:
            return sevtable.normalize(explicit)
        except ValueError:
            pass
    mapping = dict(DEFAULT_SEVERITY_MAP)
    mapping.update(severity_map or {})
    value = str(labels.get('severity', '')).lower()
    return sevtable.normalize(mapping[value]) if value in mapping else ''


def batch_severity(alerts, severity_map=None):
    """The most severe SEVn of the alerts ('' when none says)."""
    found = ''
    for alert in alerts:
        sev = alert_severity(alert.get('labels'), severity_map)
        if sev:
            found = sevtable.more_severe(found, sev) if found else sev
    return found


def alert_title(alert):
    """`<alertname>: <summary>` (the summary annotation, else the service label); verbatim, whitespace folded."""
    labels = alert.get('labels') or {}
    annotations = alert.get('annotations') or {}
    detail = annotations.get('summary') or (('service %s' % labels['service']) if labels.get('service') else '')
    title = '%s: %s' % (labels.get('alertname', 'Alert'), detail) if detail else labels.get('alertname', 'Alert')
    return ' '.join(title.split())[:200]


def _started_at(alerts):
    """The earliest valid startsAt of the alerts ('' when none parses)."""
    stamps = []
    for alert in alerts:
        try:
            stamps.append(files.parse_ts(alert.get('startsAt') or ''))
        except (ValueError, TypeError):
            continue
    return files.isoformat(min(stamps)) if stamps else ''


def _minutes_since(stamp, now):
    if not stamp:
        return None
    return (now - files.parse_ts(stamp)).total_seconds() / 60.0


def _verb(status, previous, fired):
    if status == 'firing':
        return 'fired' if previous is None else ('fired again' if previous == 'resolved' else 're-sent')
    return 'fired and resolved' if fired and previous != 'firing' else 'resolved'


# A triage takes well under a minute; one started this long ago that left no diagnosis failed or was cut off.
TRIAGE_RETRY_SECONDS = 120


def intake(batch, incident_dir='incidents', hosts_services=None, severity_map=None, throttle_minutes=10,
           contacts=None, now=None, host=None, inventory_names=None, redactor=None):
    """Record one batch of alerts of one group in the incident of the group; decide triage and the Resolved draft.

    Returns {incident_id, incident_path, created, triage, triage_reason, draft_resolved, triage_hosts,
    triage_hosts_reason, severity, title, status, group_key, fingerprint, alertname, service, alerts,
    alertnames, resolved_actions}. Raises ValueError for an invalid batch (nothing is written then).
    """
    problems = validate_batch(batch)
    if problems:
        raise ValueError('invalid alert batch, nothing was recorded: %s' % '; '.join(problems))
    now = now or files.utcnow()
    alerts = batch['alerts']
    group_key = batch['group_key']
    firing = [a for a in alerts if a['status'] == 'firing']
    fired = [a for a in alerts if a['status'] == 'firing' or a.get('fired') is True]
    primary = (firing or fired or alerts)[0]
    labels = dict(primary.get('labels') or {})
    status = 'firing' if firing else 'resolved'
    severity = batch_severity(fired or alerts, severity_map)
    title = alert_title(primary)
    pattern, pattern_reason = triage_scope(firing or alerts, hosts_services, inventory_names)
    services = sorted(set(a['labels']['service'] for a in (fired or alerts) if a['labels'].get('service')))[:20]
    alertnames = sorted(set(a['labels']['alertname'] for a in alerts))
    shown = ', '.join(alertnames[:10]) + (' and %d more' % (len(alertnames) - 10) if len(alertnames) > 10 else '')
    base = dict(triage_hosts=pattern, triage_hosts_reason=pattern_reason, status=status, group_key=group_key,
                fingerprint=primary['fingerprint'], alertname=labels.get('alertname'), service=labels.get('service'),
                alerts=len(alerts), alertnames=alertnames[:50],
                resolved_actions='All alerts of the group resolved (%s); confirm, then run playbooks/resolve.yml'
                                 % shown)
    incidents = IncidentRoot(incident_dir)
    root = incidents.path
    redactor = redactor or Redactor()  # the task's: the collection's patterns and the inventory's secret values

    with incidents.locked_alert_groups() as (registry, write_registry):
        groups = registry.setdefault('groups', {})
        entry = groups.get(group_key)
        incident = None
        if entry:
            existing = IncidentStore.at(root, entry['incident_id']).incident()
            if existing and existing.get('status') != 'Resolved':
                incident = existing
        if incident is None and not fired:
            # Resolved alerts for a group without an open incident: nothing to attach them to.
            return dict(base, incident_id='', incident_path='', created=False, triage=False, draft_resolved=False,
                        triage_reason='resolved alerts of a group without an open incident: nothing recorded',
                        severity=severity, title=title)
        created = incident is None
        if created:
            outcome = incident_logic.declare_or_load(
                incident_dir=root, title=redactor.text(title), severity=severity, services=redactor.data(services),
                contacts=contacts, impact=redactor.text((primary.get('annotations') or {}).get('impact', '')),
                started_at=_started_at(fired), host=host, now=now)
            incident = outcome['incident']
            entry = {'incident_id': incident['id'], 'opened_at': files.isoformat(now), 'alerts': {}}
            groups[group_key] = entry
        entry.setdefault('alerts', {})
        since = _minutes_since(entry.get('last_triage_at'), now)
        if not firing:
            triage, reason = False, 'alerts resolved: no triage'
        elif created:
            triage, reason = True, 'new incident for alert group'
        elif since is None or since >= float(throttle_minutes):
            triage, reason = True, 'findings refreshed (last triage %s)' % (
                'never' if since is None else '%.1f min ago' % since)
        elif since * 60 >= TRIAGE_RETRY_SECONDS and not IncidentStore.at(root, incident['id']).diagnosis():
            # the last triage started long enough ago to have ended and left no diagnosis (it failed or was cut
            # off): the throttle protects the hosts from repeated triages, not an incident from having none
            triage, reason = True, 'triage again: the last one (%.1f min ago) left no diagnosis' % since
        else:
            triage, reason = False, 'throttled: last triage of this group %.1f min ago (< %s min)' % (
                since, throttle_minutes)
        if triage:
            entry['last_triage_at'] = files.isoformat(now)
        store = IncidentStore.at(root, incident['id'], redactor=redactor)
        notes = []
        for alert in alerts:
            alert_labels = alert.get('labels') or {}
            fingerprint = alert['fingerprint']
            previous = entry['alerts'].get(fingerprint, {}).get('status')
            entry['alerts'][fingerprint] = {'status': alert['status'], 'alertname': alert_labels.get('alertname'),
                                            'service': alert_labels.get('service'), 'ts': files.isoformat(now)}
            summary = 'Alert %s %s (%s, group %s): %s' % (
                alert_labels.get('alertname'), _verb(alert['status'], previous, alert.get('fired')),
                alert_labels.get('severity', 'no severity'), group_key[:80],
                'triage' if triage and alert['status'] == 'firing' else reason)
            data = {'source': 'alertmanager', 'group_key': group_key, 'fingerprint': fingerprint,
                    'status': alert['status'], 'labels': alert_labels, 'annotations': alert.get('annotations') or {},
                    'starts_at': alert.get('startsAt'), 'ends_at': alert.get('endsAt'),
                    'generator_url': alert.get('generatorURL'), 'triage': triage, 'triage_reason': reason,
                    'triage_hosts': pattern, 'batch_alerts': len(alerts),
                    'batch_notifications': batch.get('notifications', 1)}
            notes.append((summary, data))
        all_resolved = all(a.get('status') == 'resolved' for a in entry['alerts'].values())
        draft_resolved = all_resolved and len(firing) < len(alerts)
        write_registry(redactor.data(registry))
        records = []
        for summary, data in notes:
            data['draft_resolved'] = draft_resolved
            if draft_resolved and data['status'] == 'resolved':
                summary += '; every alert of the group resolved: Resolved update drafted, the incident stays open ' \
                           'until a person resolves it'
            records.append(redactor.data(files.make_event(incident['id'], 'note', summary, host=host, data=data,
                                                          ts=files.isoformat(now))))
        store.append(records, redactor)
    return dict(base, incident_id=incident['id'], incident_path=store.path, created=created, triage=triage,
                triage_reason=reason, draft_resolved=draft_resolved,
                severity=incident.get('severity') or severity, title=incident.get('title') or title)


def group_incidents(incident_dir):
    """{group_key: incident_id} of the registry (for tests and the docs' one-liner)."""
    registry = IncidentRoot(incident_dir).alert_groups()
    return dict((key, value.get('incident_id')) for key, value in (registry.get('groups') or {}).items())
