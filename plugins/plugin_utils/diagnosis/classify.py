# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Severity classification: the rules of the practice's severity table as code.

Three inputs, in this order of authority:

1. an explicit severity (``SEV1``..``SEV4``, ``P1``..``P4``) given by a human;
2. impact facts (service down, share of users affected, data loss, security
   breach, core feature broken, latency factor, ...) run through the rules;
3. triage findings, which may only *raise* the severity (a ``crit`` on every
   backend means at least SEV2, every backend down means SEV1).

Every decision carries its reasons, so the timeline says why.
Pure Python, standard library only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.sre.incident_response.plugins.module_utils import findings as contract
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import severity as sevtable

# The impact facts a user can give and their types.
IMPACT_FACTS = {
    'service_down': bool,           # the service is down for everyone (complete outage)
    'data_loss': bool,
    'security_breach': bool,
    'core_feature_broken': bool,    # a critical path (checkout, login, orders) fails
    'feature_broken': bool,         # a non-critical feature fails
    'intermittent_errors': bool,
    'cosmetic': bool,               # cosmetic bug / edge-case error
    'users_affected_pct': float,    # share of users affected, 0..100
    'latency_factor': float,        # latency as a multiple of normal, e.g. 3.0
}

DEFAULT_THRESHOLDS = {
    # share of users affected (percent) at or above which a severity applies
    'users_all_pct': 90.0,          # "all users"  -> SEV1
    'users_most_pct': 50.0,         # "most users" -> SEV2
    'users_some_pct': 10.0,         # "some users" -> SEV3 (below: "few" -> SEV4)
    # latency as a multiple of normal
    'latency_severe_factor': 5.0,   # "severe latency" -> SEV2
    'latency_degraded_factor': 2.0,  # degradation -> SEV3
}

_TRUE = ('1', 'true', 'yes', 'on', 'y')
_FALSE = ('0', 'false', 'no', 'off', 'n', '', 'none')


def _as_bool(name, value):
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError('impact fact %s must be true or false, got %r' % (name, value))


def _as_float(name, value):
    if value is None or value == '':
        return None
    try:
        number = float(str(value).strip().rstrip('%x'))
    except ValueError:
        raise ValueError('impact fact %s must be a number, got %r' % (name, value))
    if number < 0:
        raise ValueError('impact fact %s must not be negative, got %r' % (name, value))
    return number


def normalize_facts(facts):
    """Validate impact facts; returns a dict of typed values. Unknown keys raise ValueError."""
    if not facts:
        return {}
    if not isinstance(facts, dict):
        raise ValueError('impact facts must be a dict, got %s' % type(facts).__name__)
    out = {}
    for key, value in facts.items():
        if key not in IMPACT_FACTS:
            raise ValueError('unknown impact fact %r; known: %s' % (key, ', '.join(sorted(IMPACT_FACTS))))
        if IMPACT_FACTS[key] is bool:
            out[key] = _as_bool(key, value)
        else:
            number = _as_float(key, value)
            if number is None:
                continue
            if key == 'users_affected_pct' and number > 100:
                raise ValueError('impact fact users_affected_pct must be 0..100, got %r' % (value,))
            out[key] = number
    return out


def _thresholds(overrides):
    merged = dict(DEFAULT_THRESHOLDS)
    for key, value in (overrides or {}).items():
        if key not in DEFAULT_THRESHOLDS:
            raise ValueError('unknown severity threshold %r; known: %s' % (key, ', '.join(sorted(DEFAULT_THRESHOLDS))))
        merged[key] = float(value)
    return merged


def classify_impact(facts, thresholds=None):
    """Impact facts -> (severity or None, [reasons]). The most severe rule that matches wins."""
    facts = normalize_facts(facts)
    limits = _thresholds(thresholds)
    matches = []
    if facts.get('security_breach'):
        matches.append(('SEV1', 'security breach'))
    if facts.get('data_loss'):
        matches.append(('SEV1', 'data loss'))
    if facts.get('service_down'):
        matches.append(('SEV1', 'service down (complete outage)'))
    if facts.get('core_feature_broken'):
        matches.append(('SEV2', 'core feature broken'))
    if facts.get('feature_broken'):
        matches.append(('SEV3', 'non-critical feature broken'))
    if facts.get('intermittent_errors'):
        matches.append(('SEV3', 'intermittent errors'))
    if facts.get('cosmetic'):
        matches.append(('SEV4', 'cosmetic bug or edge-case error'))
    pct = facts.get('users_affected_pct')
    if pct is not None:
        if pct >= limits['users_all_pct']:
            matches.append(('SEV1', '%g%% of users affected (all users)' % pct))
        elif pct >= limits['users_most_pct']:
            matches.append(('SEV2', '%g%% of users affected (most users)' % pct))
        elif pct >= limits['users_some_pct']:
            matches.append(('SEV3', '%g%% of users affected (some users)' % pct))
        elif pct > 0:
            matches.append(('SEV4', '%g%% of users affected (few users)' % pct))
    factor = facts.get('latency_factor')
    if factor is not None:
        if factor >= limits['latency_severe_factor']:
            matches.append(('SEV2', 'severe latency (%gx normal)' % factor))
        elif factor >= limits['latency_degraded_factor']:
            matches.append(('SEV3', 'degraded latency (%gx normal)' % factor))
    if not matches:
        return None, []
    best = min(sev for sev, _reason in matches)
    reasons = [reason for sev, reason in matches if sev == best]
    return best, reasons


_STOPPED = ('exited', 'dead', 'missing', 'not found', 'absent', 'stopped', 'created', 'inactive', 'failed')
_REFUSED_RE = re.compile(r'(connection refused|errno 111|no route to host|name or service not known|'
                         r'connection reset|remote end closed|no such container)', re.I)


def _service_evidence(finding, services=None):
    """(service name, evidence, status, summary) of each service of a finding; a combined finding (several
    services of one kind on a host, probe_common.combine) carries them in evidence.services."""
    evidence = contract.evidence(finding)
    nested = evidence.get('services')
    if isinstance(nested, dict) and nested:
        out = []
        for name, item in nested.items():
            if services and name not in services:
                continue
            if isinstance(item, dict):
                inner = item.get('evidence') if isinstance(item.get('evidence'), dict) else {}
                out.append((name, inner, item.get('status'), item.get('summary')))
        return out
    if services and finding.get('service') and finding.get('service') not in services:
        return []
    return [(finding.get('service'), evidence, finding.get('status'), finding.get('summary'))]


def _unit_state(evidence):
    """The state of a systemd unit (evidence.properties of `systemctl show`): its ActiveState, or `restarting`
    while systemd waits to start it again (SubState auto-restart) or is starting it (activating)."""
    props = evidence.get('properties')
    if not isinstance(props, dict):
        return ''
    active = str(props.get('ActiveState') or '').lower()
    if str(props.get('SubState') or '').lower() == 'auto-restart' or active == 'activating':
        return 'restarting'
    return active


def down_strength(finding, services=None):
    """How surely a finding says a service does not answer at all.

    3: container/unit/process not running (a systemd unit inactive or failed, in health.container or host.units), or every endpoint refuses
       connections;
    2: restarting (a unit in auto-restart or activating), or every endpoint fails without an HTTP answer (timeouts);
    1: every liveness-style endpoint answers 5xx (overloaded);
    0: no (a failing readiness check behind a live endpoint is a dependency problem, not a down backend).
    ``services`` limits the judgement to those service names (e.g. the backends of a host).
    """
    if finding.get('status') != 'crit':
        return 0
    check = finding.get('check')
    best = 0
    if check in ('health.container', 'app.process'):
        # evidence.status is docker's container state (both checks); running and restarting are
        # health.container's (probe_docker.safe_inspect_summary)
        container = check == 'health.container'
        for dummy, ev, status, summary in _service_evidence(finding, services):
            if status not in (None, 'crit'):
                continue
            state = str(ev.get('status') or '').lower()
            unit_state = _unit_state(ev) if container else ''
            if state in _STOPPED or (container and ev.get('running') is False) or unit_state in _STOPPED:
                best = max(best, 3)
            elif state == 'restarting' or (container and ev.get('restarting') is True) or unit_state == 'restarting':
                best = max(best, 2)
            elif status == 'crit' and _REFUSED_RE.search(str(summary or '')):
                best = max(best, 3)
        return best
    if check == 'host.units':
        # a service's own systemd unit (areas/host.py), read even when the service's probe could not run
        for item in contract.evidence(finding).get('units') or []:
            if not isinstance(item, dict) or (services and item.get('service') not in services):
                continue
            unit_state = _unit_state({'properties': item})
            if unit_state in _STOPPED:
                best = max(best, 3)
            elif unit_state == 'restarting':
                best = max(best, 2)
        return best
    if check == 'health.endpoint':
        evidence = contract.evidence(finding)
        endpoints = [e for e in (evidence.get('endpoints') or []) if isinstance(e, dict)
                     and (not services or e.get('service') in services)]
        if not endpoints:
            return 3 if _REFUSED_RE.search(str(finding.get('summary') or '')) else 0
        no_answer = [e for e in endpoints if e.get('http_status') in (None, 0)]
        if len(no_answer) == len(endpoints):
            return 3 if all(_REFUSED_RE.search(str(e.get('error') or '')) for e in endpoints) else 2
        answered = [e for e in endpoints if e.get('http_status') not in (None, 0)]
        if answered and all(int(e['http_status']) >= 500 for e in answered if str(e.get('name', '')).find('ready') < 0) \
                and any(str(e.get('name', '')).find('ready') < 0 for e in answered):
            return 1
    return 0


def _is_down(finding, services=None):
    return down_strength(finding, services) >= 2


# the checks that can say a backend does not answer (host.units: its own systemd unit, areas/host.py)
_DOWN_CHECKS = ('health.container', 'health.endpoint', 'app.process', 'host.units')


def backend_down(findings, backends, backend_services=None):
    """True when every backend host has a finding saying its backend service does not answer."""
    backends = list(backends or [])
    if not backends:
        return False
    down = set()
    for finding in findings or []:
        if finding.get('host') in backends and finding.get('check') in _DOWN_CHECKS \
                and down_strength(finding, backend_services) >= 3:
            down.add(finding['host'])
    return all(host in down for host in backends)


def _failing_paths(finding):
    paths = contract.evidence(finding).get('failing_paths')
    return [str(p) for p in paths] if isinstance(paths, list) else None


def core_impact(finding, critical_paths=None):
    """Whether a crit finding means a core feature is broken: false only for errors confined to known,
    non-critical paths (a non-critical feature broken is SEV3, not SEV2)."""
    if not critical_paths or finding.get('check') != 'app.errors':
        return True
    paths = _failing_paths(finding)
    if not paths:
        return True
    return any(path in critical_paths for path in paths)


def severity_from_findings(findings, backends=None, backend_services=None, critical_paths=None):
    """Findings -> (severity floor or None, [reasons]).

    every backend down -> SEV1; a crit on every backend host -> SEV2 (counting the backend services' own
    findings, and errors only when they touch a critical path or unknown paths); any other crit -> SEV3;
    only warnings -> SEV4; everything ok/unknown -> None (healthy, nothing to raise).
    """
    findings = list(findings or [])
    backends = list(backends or [])
    crit = [f for f in findings if f.get('status') == 'crit']
    warn = [f for f in findings if f.get('status') == 'warn']
    if backends and backend_down(findings, backends, backend_services):
        return 'SEV1', ['every backend is down (%s)' % ', '.join(sorted(backends))]
    core = [f for f in crit if f.get('host') in backends
            and (not backend_services or f.get('service') in (None, '') or f.get('service') in backend_services)
            and core_impact(f, critical_paths)]
    crit_hosts = {f.get('host') for f in core}
    if backends and all(host in crit_hosts for host in backends):
        checks = sorted({'%s/%s' % (f.get('host'), f.get('check')) for f in core})
        return 'SEV2', ['crit on every backend (%s)' % ', '.join(checks)]
    if crit:
        checks = sorted({'%s/%s' % (f.get('host'), f.get('check')) for f in crit})
        return 'SEV3', ['crit finding(s): %s' % ', '.join(checks[:6])]
    if warn:
        checks = sorted({'%s/%s' % (f.get('host'), f.get('check')) for f in warn})
        return 'SEV4', ['warning finding(s): %s' % ', '.join(checks[:6])]
    return None, []


def decide(explicit=None, facts=None, current=None, floor=None, floor_reasons=None, thresholds=None,
           default='SEV4'):
    """Combine the inputs into one decision.

    Returns a dict: severity, source (explicit|impact|findings|current|default), reasons, raised (bool),
    plus the table row (response_minutes, update_minutes, escalation, channel, ...).
    An explicit severity wins over impact facts; findings may only raise what was decided.
    """
    reasons = []
    if explicit not in (None, ''):
        sev = sevtable.normalize(explicit)
        source = 'explicit'
        reasons.append('set explicitly')
    else:
        sev, impact_reasons = classify_impact(facts, thresholds)
        if sev:
            source = 'impact'
            reasons.extend(impact_reasons)
        elif current:
            sev = sevtable.normalize(current)
            source = 'current'
            reasons.append('unchanged')
        else:
            sev = sevtable.normalize(default)
            source = 'default'
            reasons.append('no severity or impact facts given: provisional %s until triage findings are in' % sev)
    raised = False
    if floor:
        floor = sevtable.normalize(floor)
        if sevtable.more_severe(sev, floor) != sev:
            sev = floor
            source = 'findings'
            raised = True
            reasons = list(floor_reasons or ['raised by findings'])
    out = sevtable.info(sev)
    out.update({'source': source, 'reasons': reasons, 'raised': raised})
    return out
