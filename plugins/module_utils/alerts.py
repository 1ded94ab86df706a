# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alerts start the triage: one Alertmanager alert event -> the incident of its alert group.

Used by the `alert_intake` action plugin (playbooks/alert.yml, run by the rulebook
extensions/eda/rulebooks/incident_response.yml) and by unit tests. Pure Python.

* One incident per alert group: `<incident_dir>/.alert-groups.json` maps an
  Alertmanager group key to the incident it opened. The registry is read,
  the incident declared and the registry written under one exclusive lock
  (incident_files.lock), so concurrent runs for the same group (one per alert
  of a webhook, or a re-send) find the same incident instead of opening two.
* The group's incident stays the group's incident until a person resolves it
  (status Resolved): a resolved alert records an event and asks for the
  Resolved draft, it does not close anything.
* Throttle: at most one triage per group per `throttle_minutes`; throttled
  alerts are still recorded in the timeline.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.sre.incident_response.plugins.module_utils import incident_files as files
from ansible_collections.sre.incident_response.plugins.module_utils import incident as incident_logic
from ansible_collections.sre.incident_response.plugins.module_utils import severity as sevtable
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor

REGISTRY = '.alert-groups.json'
ALERT_STATUSES = ('firing', 'resolved')
# Prometheus' usual severity labels -> the practice's severities (overridable).
DEFAULT_SEVERITY_MAP = {'critical': 'SEV2', 'page': 'SEV2', 'error': 'SEV3', 'warning': 'SEV3', 'info': 'SEV4'}


def validate_event(event):
    """Check one event of the alertmanager event source; returns a list of problems (empty: valid)."""
    problems = []
    if not isinstance(event, dict):
        return ['the event must be a dict, got %s' % type(event).__name__]
    alert = event.get('alert')
    if not event.get('group_key') or not isinstance(event.get('group_key'), str):
        problems.append('group_key is missing (the Alertmanager groupKey)')
    if not isinstance(alert, dict):
        problems.append('alert is missing (one alert of the webhook)')
        return problems
    if alert.get('status') not in ALERT_STATUSES:
        problems.append('alert.status %r is not firing or resolved' % (alert.get('status'),))
    if not alert.get('fingerprint'):
        problems.append('alert.fingerprint is missing')
    labels = alert.get('labels')
    if not isinstance(labels, dict) or not labels.get('alertname'):
        problems.append('alert.labels.alertname is missing')
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


def triage_hosts(labels, hosts_services):
    """The hosts to triage for an alert's labels; returns (pattern, reason).

    1. label `triage_hosts` (an inventory pattern) wins;
    2. label `service` naming a service in inventory: the hosts of that service, of the services it
       depends on and of the services that depend on it (one hop: a database alert also looks at the
       backend that reports the errors, a backend alert at its database and cache);
    3. otherwise every host (`all`).
    """
    labels = labels or {}
    if labels.get('triage_hosts'):
        return str(labels['triage_hosts']), 'label triage_hosts'
    service = labels.get('service')
    hosts_of, deps = _services_index(hosts_services)
    if service and service in hosts_of:
        scope = {service} | set(deps.get(service, ())) | set(name for name, d in deps.items() if service in d)
        hosts = []
        for name in sorted(scope):
            for host in hosts_of.get(name, []):
                if host not in hosts:
                    hosts.append(host)
        return ':'.join(sorted(hosts)), 'service %s, its dependencies and dependents' % service
    if service:
        return 'all', 'service %s is not in inventory: every host' % service
    return 'all', 'no service label: every host'


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


def alert_title(alert):
    """`<alertname>: <summary>` (the summary annotation, else the service label)."""
    labels = alert.get('labels') or {}
    annotations = alert.get('annotations') or {}
    detail = annotations.get('summary') or (('service %s' % labels['service']) if labels.get('service') else '')
    title = '%s: %s' % (labels.get('alertname', 'Alert'), detail) if detail else labels.get('alertname', 'Alert')
    return ' '.join(title.split())[:200]


def _minutes_since(stamp, now):
    if not stamp:
        return None
    return (now - files.parse_ts(stamp)).total_seconds() / 60.0


def intake(event, incident_dir='incidents', hosts_services=None, severity_map=None, throttle_minutes=10,
           contacts=None, now=None, host=None):
    """Record one alert event in the incident of its group; decide triage and the Resolved draft.

    Returns {incident_id, incident_path, created, triage, triage_reason, draft_resolved, triage_hosts,
    triage_hosts_reason, severity, title, status, group_key, fingerprint, alertname, service}.
    Raises ValueError for an invalid event (nothing is written then).
    """
    problems = validate_event(event)
    if problems:
        raise ValueError('invalid alert event, nothing was recorded: %s' % '; '.join(problems))
    now = now or files.utcnow()
    alert = event['alert']
    labels = dict(alert.get('labels') or {})
    status = alert['status']
    group_key = event['group_key']
    fingerprint = str(alert['fingerprint'])
    severity = alert_severity(labels, severity_map)
    title = alert_title(alert)
    pattern, pattern_reason = triage_hosts(labels, hosts_services)
    services = [labels['service']] if labels.get('service') else []
    root = os.path.abspath(os.path.expanduser(str(incident_dir)))
    files.ensure_dir(root)
    registry_path = os.path.join(root, REGISTRY)
    redactor = Redactor()

    with files.lock(registry_path):
        registry = files.read_json(registry_path, default={}) or {}
        groups = registry.setdefault('groups', {})
        entry = groups.get(group_key)
        incident = None
        if entry:
            existing = files.read_json(os.path.join(files.incident_path(root, entry['incident_id']), files.INCIDENT))
            if existing and existing.get('status') != 'Resolved':
                incident = existing
        if incident is None and status == 'resolved':
            # A resolved alert for a group without an open incident: nothing to attach it to.
            return dict(incident_id='', incident_path='', created=False, triage=False, draft_resolved=False,
                        triage_reason='resolved alert of a group without an open incident: nothing recorded',
                        triage_hosts=pattern, triage_hosts_reason=pattern_reason, severity=severity, title=title,
                        status=status, group_key=group_key, fingerprint=fingerprint,
                        alertname=labels.get('alertname'), service=labels.get('service'))
        created = incident is None
        if created:
            outcome = incident_logic.declare_or_load(
                incident_dir=root, title=title, severity=severity, services=services, contacts=contacts,
                impact=(alert.get('annotations') or {}).get('impact', ''),
                started_at=alert.get('startsAt') or '', host=host, now=now)
            incident = outcome['incident']
            entry = {'incident_id': incident['id'], 'opened_at': files.isoformat(now), 'alerts': {}}
            groups[group_key] = entry
        entry.setdefault('alerts', {})
        previous = entry['alerts'].get(fingerprint, {}).get('status')
        entry['alerts'][fingerprint] = {'status': status, 'alertname': labels.get('alertname'),
                                        'service': labels.get('service'), 'ts': files.isoformat(now)}
        since = _minutes_since(entry.get('last_triage_at'), now)
        if status != 'firing':
            triage, reason = False, 'alert resolved: no triage'
        elif created:
            triage, reason = True, 'new incident for alert group'
        elif since is None or since >= float(throttle_minutes):
            triage, reason = True, 'findings refreshed (last triage %s)' % (
                'never' if since is None else '%.1f min ago' % since)
        else:
            triage, reason = False, 'throttled: last triage of this group %.1f min ago (< %s min)' % (
                since, throttle_minutes)
        if triage:
            entry['last_triage_at'] = files.isoformat(now)
        all_resolved = all(a.get('status') == 'resolved' for a in entry['alerts'].values())
        draft_resolved = status == 'resolved' and all_resolved
        files.write_json_atomic(registry_path, redactor.data(registry))

        if status == 'firing':
            verb = 'fired' if previous is None else ('fired again' if previous == 'resolved' else 're-sent')
        else:
            verb = 'resolved'
        summary = 'Alert %s %s (%s, group %s): %s' % (
            labels.get('alertname'), verb, labels.get('severity', 'no severity'), group_key[:80],
            'triage' if triage else reason)
        if draft_resolved:
            summary += '; every alert of the group resolved: Resolved update drafted, the incident stays open ' \
                       'until a person resolves it'
        data = {'source': 'alertmanager', 'group_key': group_key, 'fingerprint': fingerprint, 'status': status,
                'labels': labels, 'annotations': alert.get('annotations') or {}, 'starts_at': alert.get('startsAt'),
                'ends_at': alert.get('endsAt'), 'generator_url': alert.get('generatorURL'), 'triage': triage,
                'triage_reason': reason, 'triage_hosts': pattern, 'draft_resolved': draft_resolved}
        path = files.incident_path(root, incident['id'])
        files.append_jsonl(os.path.join(path, files.TIMELINE),
                           [redactor.data(files.make_event(incident['id'], 'note', summary, host=host, data=data,
                                                           ts=files.isoformat(now)))])
    return dict(incident_id=incident['id'], incident_path=path, created=created, triage=triage, triage_reason=reason,
                draft_resolved=draft_resolved, triage_hosts=pattern, triage_hosts_reason=pattern_reason,
                severity=incident.get('severity') or severity, title=incident.get('title') or title, status=status,
                group_key=group_key, fingerprint=fingerprint, alertname=labels.get('alertname'),
                service=labels.get('service'))


def group_incidents(incident_dir):
    """{group_key: incident_id} of the registry (for tests and the docs' one-liner)."""
    registry = files.read_json(os.path.join(os.path.abspath(str(incident_dir)), REGISTRY), default={}) or {}
    return dict((key, value.get('incident_id')) for key, value in (registry.get('groups') or {}).items())

