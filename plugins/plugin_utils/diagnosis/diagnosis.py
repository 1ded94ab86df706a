# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Diagnosis: findings matched against the practice's quick-reference patterns.

| Pattern                   | Symptom                       | Likely cause                          | First action                  |
|---------------------------|-------------------------------|---------------------------------------|-------------------------------|
| backend_down (502/503)    | users see an error page       | backend crashed or overloaded         | container status, logs, restart |
| slow_responses            | high latency, timeouts        | DB queries, external API              | slow queries, DB connections  |
| partial_failures          | some endpoints fail           | single dependency down                | check each service's health   |
| memory_growth             | OOM kills, restarts           | memory leak                           | container memory, restart     |
| error_spike_after_deploy  | errors start at deploy time   | bug in new code                       | roll back immediately         |
| gradual_degradation       | slowly worsening metrics      | resource exhaustion, connection leak  | resource usage, free the resource |

``diagnose(findings, context)`` returns the document written to ``diagnosis.json``:
``hypotheses`` ranked by confidence, each with ``pattern``, ``likely_cause``, ``evidence``
(finding keys ``host/check``), ``confidence`` (0..1) and ``first_action`` (an exact command).
Every hypothesis cites at least one non-ok finding: no hypothesis without evidence.

The rules match only check names and evidence keys the probes produce (the findings contract,
plugins/module_utils/findings.py): evidence is read through ``_ev`` / ``_any`` / ``_values``, which refuse an
undeclared key when ``findings.STRICT`` is on (the unit tests).
Pure Python, standard library only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

try:
    from shlex import quote as shell_quote
except ImportError:  # pragma: no cover - Python 2
    from pipes import quote as shell_quote

from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import classify
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import safety
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import signals
from ansible_collections.sre.incident_response.plugins.module_utils import findings as contract
from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import one_line

PATTERNS = ('backend_down', 'slow_responses', 'partial_failures', 'memory_growth',
            'error_spike_after_deploy', 'gradual_degradation')

SYMPTOMS = {
    'backend_down': 'Users see an error page (502/503)',
    'slow_responses': 'High latency, timeouts',
    'partial_failures': 'Some endpoints fail',
    'memory_growth': 'OOM kills, restarts',
    'error_spike_after_deploy': 'Errors start exactly at deploy time',
    'gradual_degradation': 'Slowly worsening metrics',
}

# Short incident titles, when the responder gave none.
TITLES = {
    'backend_down': 'service down (502/503)',
    'slow_responses': 'slow responses and timeouts',
    'partial_failures': 'some endpoints failing',
    'memory_growth': 'memory growth, OOM kills and restarts',
    'error_spike_after_deploy': 'error spike after deploy',
    'gradual_degradation': 'gradual degradation (resource exhaustion)',
}

# Tie-break when confidences are equal: the more urgent pattern first.
PRIORITY = {
    'error_spike_after_deploy': 0,
    'backend_down': 1,
    'memory_growth': 2,
    'slow_responses': 3,
    'partial_failures': 4,
    'gradual_degradation': 5,
}

# Checks that describe a change rather than a symptom: they never make the system unhealthy.
CHANGE_CHECKS = contract.CHANGE_CHECKS

BAD = contract.BAD

# The keys of the context diagnose() reads (plugins/action/diagnose.py build_context).
CONTEXT_KEYS = ('incident_id', 'inventory', 'playbook_dir', 'backends', 'backend_services', 'backend_service',
                'backend_identities', 'endpoints', 'critical_paths', 'tls_service', 'owners', 'app_roles')
# The fields of the diagnosis document (diagnosis.json) and of each of its hypotheses.
DOCUMENT_FIELDS = ('incident_id', 'title', 'healthy', 'counts', 'findings_total', 'affected_services', 'severity_floor',
                   'severity_reasons', 'recent_deploys', 'unknown', 'hypotheses', 'summary')
HYPOTHESIS_FIELDS = ('pattern', 'symptom', 'likely_cause', 'evidence', 'symptom_checks', 'evidence_summaries',
                     'confidence', 'first_action', 'then', 'service', 'action', 'rank', 'escalation', 'safety')
_DOWN_RE = re.compile(r'(connection refused|refused|unreachable|no route|timed? ?out|cannot connect|could not connect|'
                      r'not running|exited|stopped|no such container|dead|name or service not known|'
                      r'connection reset|remote end closed)', re.I)
_OOM_RE = re.compile(r'(oom|out of memory)', re.I)
_MEM_RE = re.compile(r'(mem)', re.I)
_LAT_RE = re.compile(r'(latency|slow|timed? ?out|timeout|p9\d)', re.I)
SLOW_MS = 1000.0
# Where the latency numbers are: each endpoint's response time, the logs' p95 (overall and per path).
_LATENCY_KEYS = {'health.endpoint': ('latency_ms',), 'app.errors': ('p95_ms',)}


def _slow(finding):
    """A finding that reports high latency (its words, or latency numbers in its evidence)."""
    if _LAT_RE.search(finding.get('summary') or ''):
        return True
    for name in _LATENCY_KEYS.get(finding.get('check'), ()):
        for value in _values(finding, (name,)):
            try:
                if float(value) >= SLOW_MS:
                    return True
            except (TypeError, ValueError):
                continue
    return False


def key(finding):
    return '%s/%s' % (finding.get('host'), finding.get('check'))


def is_bad(finding):
    return contract.is_bad(finding)


def is_symptom(finding):
    return finding.get('check') not in CHANGE_CHECKS


def _ev(finding):
    """The finding's evidence (findings.evidence: with STRICT on, reads of undeclared keys raise)."""
    return contract.evidence(finding)


def _walk(value, depth=0):
    """Every (key, value) pair of nested evidence, so rules survive small shape changes."""
    if depth > 5:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from _walk(v, depth + 1)
    elif isinstance(value, list):
        for item in value[:50]:
            yield from _walk(item, depth + 1)


def _any(finding, names, predicate=bool):
    """Does an evidence key of these names (at any depth) hold a value the predicate accepts?"""
    contract.require(finding.get('check'), names)
    for k, v in _walk(_ev(finding)):
        if k in names:
            try:
                if predicate(v):
                    return True
            except (TypeError, ValueError):
                continue
    return False


def _values(finding, names):
    """Every value of an evidence key of these names, at any depth."""
    contract.require(finding.get('check'), names)
    return [v for k, v in _walk(_ev(finding)) if k in names]


def _text(finding):
    """The summary and the error and status words of a health.endpoint finding (each endpoint's, its body's)."""
    words = [v for v in _values(finding, ('error', 'status')) if isinstance(v, str)]
    return '%s %s' % (finding.get('summary') or '', ' '.join(words))


def _by(findings, *checks):
    return [f for f in findings if f.get('check') in checks]


def _bad(findings, *checks):
    return [f for f in findings if f.get('check') in checks and is_bad(f)]


def _service(findings, default):
    for finding in findings:
        if finding.get('service'):
            return finding['service']
    return default


# A value that may stand in a printed command: a person pastes the command into a shell, and ansible-playbook
# templates every extra var. Shell quoting alone is not enough ({{ lookup('pipe', ...) }} survives it), so a
# value from outside (an application name, a key) is printed only when it is a plain token of these characters.
_PLAIN = re.compile(r'^[A-Za-z0-9_.:/@%+=-]+(?: [A-Za-z0-9_.:/@%+=-]+)*$')


def plain_value(value, limit=120):
    """True when `value` can be printed in a command as it is: no template, shell, pattern or list syntax."""
    text = str(value)
    return 0 < len(text) <= limit and bool(_PLAIN.match(text))


class UnsafeCommandValue(ValueError):
    """A value that must not be printed in a command (see plain_value)."""


class Commands(object):
    """Builds the exact playbook commands of first actions.

    Every value in a command is a plain token (plain_value) or the command is not built (UnsafeCommandValue):
    outside text never reaches a shell or Ansible's templating through a command a person pastes.
    """

    def __init__(self, incident_id=None, inventory=None, playbook_dir='playbooks'):
        self.incident_id = incident_id
        self.inventory = inventory
        self.playbook_dir = playbook_dir.rstrip('/') or 'playbooks'

    def _base(self, playbook):
        parts = ['ansible-playbook', '%s/%s' % (self.playbook_dir, playbook)]
        if self.inventory:
            parts += ['-i', shell_quote(self.inventory)]
        return parts

    def remediate(self, action, service, apply=False, extra=None):
        """The remediate.yml command; investigate.yml instead when a value is not a plain token (never printed)."""
        try:
            return self._remediate(action, service, apply, extra)
        except UnsafeCommandValue:
            return self.investigate('all')

    def _remediate(self, action, service, apply, extra):
        parts = self._base('remediate.yml') + ['-e', 'remediation_action=%s' % action]
        if self.incident_id:
            parts += ['-e', 'incident_id=%s' % shell_quote(self.incident_id)]
        if service:
            parts += ['-e', 'service=%s' % shell_quote(self._plain('service', service))]
        for name, value in extra or ():
            if isinstance(value, (list, tuple)):
                value = ','.join(self._plain(name, v) for v in value)  # each item plain: no ',' inside one
            else:
                value = self._plain(name, value)
            parts += ['-e', '%s=%s' % (name, shell_quote(value))]
        if apply:
            parts += ['-e', 'apply=true', '-e', 'approved_by=<approver>', '-e', "approval_reason='<reason or change ref>'"]
        return ' '.join(parts)

    @staticmethod
    def _plain(name, value):
        if not plain_value(value):
            raise UnsafeCommandValue('%s: a value that is not a plain token cannot be printed in a command' % name)
        return str(value)

    def investigate(self, area):
        parts = self._base('investigate.yml') + ['-e', 'area=%s' % area]
        if self.incident_id:
            parts += ['-e', 'incident_id=%s' % shell_quote(self.incident_id)]
        return ' '.join(parts)


def _hypothesis(pattern, cause, evidence, confidence, first_action, then=None, service=None, action=None, symptom=None,
                claims=()):
    """symptom: the findings whose checks must be ok once the action worked (default: all evidence).
    claims: the evidence classes (safety.EVIDENCE_ACTIONS) the rule's action rests on; diagnose() asks
    safety.judge whether they allow it."""
    keys = []
    for finding in evidence:
        k = key(finding)
        if k not in keys:
            keys.append(k)
    symptom_keys = []
    for finding in (symptom if symptom is not None else evidence):
        k = key(finding)
        if k not in symptom_keys and finding.get('check') not in CHANGE_CHECKS:
            symptom_keys.append(k)
    return {
        'pattern': pattern,
        'symptom': SYMPTOMS[pattern],
        'likely_cause': cause,
        'evidence': keys,
        'symptom_checks': symptom_keys,
        'evidence_summaries': [' '.join(str(f.get('summary', '')).split())[:200] for f in evidence][:6],
        'confidence': round(min(0.99, max(0.05, confidence)), 2),
        'first_action': first_action,
        'then': then,
        'service': service,
        'action': action,
        '_claims': tuple(claims or ()),
    }


# --- rules ---------------------------------------------------------------------------------------------

def _deploys_in_window(findings):
    out = []
    for finding in _by(findings, 'deploy.recent'):
        if is_bad(finding) or _any(finding, ('deploy_in_window', 'deployed_in_window'), lambda v: v is True):
            out.append(finding)
    return out


def _image_changed(finding):
    """The deploy replaced an image or a release: a deploy of the window whose previous image (or release) is
    known and differs from the current one (area_changes.deploy_item / release_item)."""
    deploys = _ev(finding).get('deploys')
    for item in deploys if isinstance(deploys, list) else []:
        if not isinstance(item, dict) or item.get('deployed_in_window') is False:
            continue
        previous = item.get('previous_image') or item.get('previous_release')
        # a release directory behind a symlink (deploy.release_link) is the non-Docker image
        image = item.get('image') or (str(item['target']).rstrip('/').rsplit('/', 1)[-1]
                                      if item.get('previous_release') and item.get('target') else None)
        if previous and image and str(previous) != str(image):
            return True
    return False


def _only_rollbacks(finding, service):
    """Every deploy of the window of this service in this finding was a rollback to a known-good image (not new
    code). A host's finding may list other services' deploys (a proxy recreated on the same host): only the
    service whose errors are explained counts, when the deploys name their service."""
    deploys = [d for d in (_ev(finding).get('deploys') or []) if isinstance(d, dict) and d.get('deployed_in_window')]
    mine = [d for d in deploys if d.get('service') == service] or [d for d in deploys if not d.get('service')]
    return bool(mine) and all(d.get('rollback') is True for d in mine)


def rule_error_spike_after_deploy(findings, ctx, cmd):
    deploys = _deploys_in_window(findings)
    if not deploys:
        return []
    out = []
    for deploy in deploys:
        service = deploy.get('service') or 'backend'
        if _only_rollbacks(deploy, service):
            # Errors after a rollback are not the new code's: rolling "back" would bring the bad release again.
            continue
        errors = [f for f in _bad(findings, 'app.errors', 'health.endpoint')
                  if f.get('host') == deploy.get('host') or f.get('service') == service]
        if not errors:
            continue
        confidence = 0.3
        if _image_changed(deploy):
            confidence += 0.5  # a new image, not a restart of the same one
        if any(f.get('check') == 'app.errors' for f in errors):
            confidence += 0.1
        infra = [f for f in findings if is_bad(f) and f.get('check', '').split('.')[0] in ('pg', 'redis', 'net', 'host', 'dependency')]
        if not infra:
            confidence += 0.05
        cause = 'Bug in the new code: %s' % deploy.get('summary')
        out.append(_hypothesis(
            'error_spike_after_deploy', cause, [deploy] + errors, confidence,
            cmd.remediate('rollback', service),
            then='Roll back immediately: plan above, then apply with %s' % cmd.remediate('rollback', service, apply=True),
            service=service, action='rollback', claims=('bad_release',)))
    return out


def _down_evidence(finding, ctx=None):
    """0..3, see classify.down_strength, for the backend services of the context."""
    return classify.down_strength(finding, (ctx or {}).get('backend_services') or None)


def rule_backend_down(findings, ctx, cmd):
    backends = set(ctx.get('backends') or [])
    candidates = [f for f in _by(findings, 'health.container', 'health.endpoint', 'app.process', 'host.units')
                  if (not backends or f.get('host') in backends) and f.get('status') == 'crit']
    if not candidates:
        return []
    strength = max(_down_evidence(f, ctx) for f in candidates)
    if strength == 0:
        return []
    candidates = [f for f in candidates if _down_evidence(f, ctx) > 0]
    service = _service([f for f in candidates if f.get('check') == 'health.container'] + candidates, 'backend')
    oom = any(_any(f, ('oom_killed',), lambda v: v is True) for f in candidates if f.get('check') == 'health.container')
    confidence = {3: 0.95, 2: 0.8, 1: 0.45}[strength]
    data_stores = _by(findings, 'pg.connections', 'pg.locks', 'pg.long_queries', 'pg.connectivity', 'redis.memory',
                      'redis.connectivity')
    if strength < 3 and any(is_bad(f) for f in data_stores):
        confidence -= 0.2  # a data-store cause explains an overloaded backend better
    if strength == 3:
        cause = 'Backend crashed: the container is not running'
    elif strength == 2:
        cause = 'Backend crashed or not answering (connection refused / timeouts)'
    else:
        cause = 'Backend overloaded or failing its health checks'
    if oom:
        cause += ' (OOM-killed: see memory_growth)'
    return [_hypothesis(
        'backend_down', cause, sorted(candidates, key=lambda f: f.get('check') == 'host.units'), confidence,
        cmd.remediate('restart', service),
        then='Container status and backend logs are in the evidence/ directory; apply the restart with %s'
             % cmd.remediate('restart', service, apply=True),
        service=service, action='restart')]


def _process_memory_trend(finding):
    """A growing trend.memory of an application process (not a cache or database, whose memory is data)."""
    return (finding.get('check') == 'trend.memory' and is_bad(finding)
            and _ev(finding).get('kind') not in ('redis', 'postgres'))


def _memory_exceeded(finding):
    """Is memory what makes this container.resources finding bad (not CPU)? The probe lists the measures past
    their threshold in evidence.exceeded; findings written before it did are judged by their summary."""
    if _values(finding, ('exceeded',)):
        return _any(finding, ('exceeded',), lambda v: 'memory' in v)
    return bool(_MEM_RE.search(finding.get('summary') or '') or _any(finding, ('memory_pct',)))


def rule_memory_growth(findings, ctx, cmd):
    evidence = []
    confidence = 0.0
    for finding in findings:
        check = finding.get('check')
        if check == 'health.container' and _any(finding, ('oom_killed',), lambda v: v is True):
            evidence.append(finding)
            confidence = max(confidence, 0.9)
        elif check == 'host.oom' and is_bad(finding) and any(_values(finding, ('implicated',))):
            # the kernel killed a service's process for memory (areas/host.py): its own evidence that it crashes
            evidence.append(finding)
            confidence = max(confidence, 0.9 if finding.get('status') == 'crit' else 0.6)
        elif check == 'container.resources' and is_bad(finding) and _memory_exceeded(finding):
            evidence.append(finding)
            confidence = max(confidence, 0.85 if finding.get('status') == 'crit' else 0.7)
        elif check == 'health.container' and is_bad(finding) and \
                _any(finding, ('restart_count',), lambda v: int(v) >= 3):
            evidence.append(finding)
            confidence = max(confidence, 0.6)
        elif _process_memory_trend(finding):
            # Prometheus: the process' memory grew over the window (roles/trends)
            evidence.append(finding)
            confidence = max(confidence, 0.85 if finding.get('status') == 'crit' else 0.65)
    if not evidence:
        return []
    service = _service(evidence, 'backend')
    return [_hypothesis(
        'memory_growth', 'Memory leak in %s: memory near its limit, OOM kills or restarts' % service,
        evidence, confidence, cmd.remediate('restart', service),
        then='Restart the service to reclaim memory: %s; then find the leak (heap profile) before it recurs'
             % cmd.remediate('restart', service, apply=True),
        service=service, action='restart')]


def _lock_holders_extra(finding):
    """kill_query arguments that end exactly the lock holders pg.locks names (the roots of its chains).

    The pids, and a minimum age no older than the youngest holder was when probed: the plan then selects them
    however young the lock is (pg_terminate_min_age defaults to 30 s, a lock found at once is younger), and a pid
    reused since by a newer session is left out. None when the finding names no holder."""
    ev = _ev(finding)
    roots = [pid for pid in ev.get('root_pids') or [] if isinstance(pid, int)]
    ages = []
    for holder in ev.get('blocking') or []:
        if isinstance(holder, dict) and holder.get('pid') in roots:
            try:
                ages.append(float(holder.get('xact_age_s') or holder.get('query_age_s') or 0))
            except (TypeError, ValueError):
                ages.append(0.0)
    if not roots:
        return None
    return [('pg_terminate_pids', sorted(roots)), ('pg_terminate_min_age', int(min(ages)) if ages else 0)]


def rule_slow_responses(findings, ctx, cmd):
    out = []
    db = _bad(findings, 'pg.locks', 'pg.long_queries')
    latency = [f for f in _bad(findings, 'health.endpoint', 'app.errors') if _slow(f)]
    if db:
        service = _service(db, 'db')
        locks = [f for f in db if f.get('check') == 'pg.locks']
        cause = ('Database lock contention: sessions blocked behind a lock holder' if locks
                 else 'Long-running database queries')
        extra = _lock_holders_extra(locks[0]) if locks else None
        out.append(_hypothesis(
            'slow_responses', cause, db + latency, 0.85 if (latency or len(db) > 1 or locks) else 0.75,
            cmd.remediate('kill_query', service, extra=extra),
            then='The plan lists the blocking/long-running PIDs and their SQL; apply with %s'
                 % cmd.remediate('kill_query', service, apply=True, extra=extra),
            service=service, action='kill_query', symptom=locks or db, claims=('blocking_sessions',)))
    slowlog = _bad(findings, 'redis.slowlog')
    # the latency monitor's events of the window (redis.latency): the server stalled, seen from inside
    stalls = [f for f in _bad(findings, 'redis.latency') if not slowlog or f.get('service') in [s.get('service') for s in slowlog]]
    if slowlog:
        service = _service(slowlog, 'redis')
        out.append(_hypothesis(
            'slow_responses', 'Slow Redis commands (slowlog%s): expensive commands block the cache' % (
                ', latency monitor' if stalls else ''),
            slowlog + stalls + latency, 0.75 if stalls else 0.7, cmd.investigate('redis'),
            then='Find the caller of the slow commands in the slowlog evidence; avoid KEYS/large scans',
            service=service, action=None))
    elif stalls:
        service = _service(stalls, 'redis')
        events = [e for e in _ev(stalls[0]).get('events') or [] if isinstance(e, dict) and e.get('within_window')]
        top = max(events, key=lambda e: e.get('window_max_ms') or 0) if events else {}
        out.append(_hypothesis(
            'slow_responses', 'Redis stalls (latency monitor: %s %s ms in the window)' % (
                safety.as_data(top.get('event') or '?', 40), int(top.get('window_max_ms') or 0)),
            # a stall without slow commands is an investigation, below any signal with an action: a Redis DEL/FLUSH or
            # fork of seconds ago (application errors of the same minutes as company) must not outrank an expiring
            # certificate
            stalls + latency, 0.4, cmd.investigate('redis'),
            then='The events name the stall (command, fork, expire-cycle, aof-*): see LATENCY DOCTOR on the server',
            service=service, action=None))
    deps = [f for f in _bad(findings, 'dependency.reachability') if _LAT_RE.search(f.get('summary') or '')]
    if deps:
        out.append(_hypothesis(
            'slow_responses', 'Slow external API: %s' % deps[0].get('summary'), deps + latency, 0.65,
            cmd.investigate('network'), service=_service(deps, None)))
    if latency and not out:
        out.append(_hypothesis(
            'slow_responses', 'High latency without a database or cache cause found yet (DB queries or external API)',
            latency, 0.45, cmd.investigate('db'), service=_service(latency, 'backend')))
    return out


def is_backend_session(application_name, ctx):
    """Does a session's application_name belong to one of the backend services of the inventory?

    It matches a backend service name, container or unit exactly, or up to a prefix ending in '-'
    (container 'lab2-app-backend' runs 'app-backend'; 'app-backend' is service 'backend').
    """
    app = str(application_name or '').strip().lower()
    if not app:
        return False
    for ident in ctx.get('backend_identities') or ctx.get('backend_services') or [ctx.get('backend_service') or 'backend']:
        ident = str(ident or '').strip().lower()
        if ident and (app == ident or ident.endswith('-' + app) or app.endswith('-' + ident)):
            return True
    return False


def held(holder):
    """How many slots a holder row counts for (connection_holders)."""
    return int(holder.get('past_threshold') or 0)


def holders_young(finding):
    """No session of pg.connections is idle in transaction past the threshold yet (slots taken within seconds)."""
    return not any(isinstance(h, dict) and h.get('past_threshold') for h in _ev(finding).get('holders') or [])


def connection_holders(finding, ctx):
    """(foreign, own): holders of idle-in-transaction sessions past the threshold, not the backend's / the backend's.

    When no session is past the threshold yet (holders_young), the idle-in-transaction holders count by their
    number: slots held by another client are that client's, however young (a restart of the backend frees none).
    The rows are copies; past_threshold is the number of slots each counts for (held)."""
    rows = [h for h in _ev(finding).get('holders') or [] if isinstance(h, dict)]
    if not rows:  # findings of older probes: the idle-in-transaction sessions themselves
        for item in _ev(finding).get('idle_in_transaction') or []:
            if isinstance(item, dict):
                rows.append({'application_name': item.get('application') or '', 'role': item.get('user'),
                             'state': 'idle in transaction', 'count': 1, 'oldest_s': item.get('idle_s') or 0,
                             'pids': [item.get('pid')]})
    chosen = [h for h in rows if h.get('past_threshold')]
    if not chosen:
        chosen = [dict(h, past_threshold=int(h.get('count') or 0)) for h in rows
                  if str(h.get('state') or '').startswith('idle in transaction') and h.get('count')]
    foreign, own = [], []
    for holder in chosen:
        (own if is_backend_session(holder.get('application_name'), ctx) else foreign).append(holder)
    return foreign, own


def _kill_foreign_extra(foreign, own, finding):
    names = sorted({h.get('application_name') for h in foreign})
    roles = sorted({h.get('role') for h in foreign if h.get('role') and plain_value(h.get('role'))})
    extra = [('pg_terminate_states', 'idle in transaction'), ('pg_terminate_roles', roles)]
    # Application names are set by clients. The selector is a shell pattern (a redacted name ******** or one with
    # a pattern character selects more than it names), and a printed command must hold no outside text that is
    # not a plain token (plain_value): such sessions are selected by state, role and age with the backend's own
    # sessions excluded, or by their pids (the evidence lists a sample of them) when even that cannot be printed.
    pids = sorted({int(p) for h in foreign for p in (h.get('pids') or []) if str(p).isdigit()})
    own_names = sorted({h.get('application_name') for h in own})
    if all(names) and all(plain_value(n) and not set('*?[') & set(str(n)) for n in names):
        extra.append(('pg_terminate_application_names', names))
    elif all(plain_value(n) and not set('*?[') & set(str(n)) for n in own_names):
        if own_names:  # none past the threshold: state, role and age select only others' sessions
            extra.append(('pg_terminate_exclude_application_names', own_names))
    elif pids:
        extra.append(('pg_terminate_pids', pids))
    threshold = _ev(finding).get('idle_in_transaction_threshold_s')
    if holders_young(finding):
        extra.append(('pg_terminate_min_age', 0))  # idle in transaction, named, younger than the threshold
    elif threshold is not None:
        extra.append(('pg_terminate_min_age', int(float(threshold))))
    return extra


def flush_cannot_free_enough(finding):
    """A text naming what fills Redis when flushing every evictable key would still leave it above the warn level."""
    ev = _ev(finding)
    rows = ev.get('top_prefixes')
    try:
        used, maxmem, evictable = int(ev['used_memory']), int(ev['maxmemory']), int(ev['evictable_est_bytes'])
        limit = maxmem * float(ev.get('memory_warn_pct') or 90) / 100.0
    except (KeyError, TypeError, ValueError):
        return None
    if not rows or maxmem <= 0 or used - evictable < limit:
        return None
    return 'flushing the evictable keys frees ~%s of %s used; top prefixes %s' % (
        classify_bytes(evictable), classify_bytes(used),
        ', '.join('%s %s (%s)' % (r.get('prefix'), classify_bytes(r.get('est_bytes')), r.get('marked')) for r in rows[:3]))


def classify_bytes(num):
    num = float(num or 0)
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if abs(num) < 1024 or unit == 'GiB':
            return ('%d %s' % (num, unit)) if unit == 'B' else ('%.1f %s' % (num, unit))
        num /= 1024.0


def _renewals(tls):
    return [r for f in tls for r in _values(f, ('renewal',)) if isinstance(r, dict)]


def renewed_pair(tls):
    """The usable renewed pair (network.find_renewal) of a net.tls_expiry finding whose paths can be printed."""
    for renewal in _renewals(tls):
        if renewal.get('usable') is True and plain_value(renewal.get('cert')) and plain_value(renewal.get('key')):
            return renewal
    return None


def renewal_problem(tls):
    """Why the renewal_dir holds no usable pair (as the TLS check found it), or None."""
    for renewal in _renewals(tls):
        if renewal.get('problem'):
            return str(renewal['problem'])
    return None


def redis_slots_exhausted(finding):
    """A redis.clients finding that says every client slot is taken: the server refused the probe (max number of
    clients reached) or CLIENT LIST was read at the crit threshold."""
    ev = _ev(finding)
    return ev.get('max_clients_reached') is True or (finding.get('status') == 'crit' and bool(ev.get('by_client')))


def redis_holders(finding):
    """(who, extra): the holders of the slots as a person reads them, and the kill_clients selection for them
    (redis_kill_clients_names from CLIENT LIST when the server answered, else redis_kill_clients_pids from the Redis
    host's sockets); extra is None when no holder can be selected safely."""
    ev = _ev(finding)
    groups = [g for g in ev.get('by_client') or [] if isinstance(g, dict) and g.get('kind', 'normal') == 'normal']
    if groups:
        top = max(int(g.get('count') or 0) for g in groups)
        chosen = [g for g in groups if int(g.get('count') or 0) * 2 >= top]
        who = ', '.join('%s from %s (%s connections, idle up to %s s)' % (
            g.get('name') or '(no name)', g.get('host') or '?', g.get('count'), g.get('idle_max_s')) for g in chosen[:3])
        names = sorted({g.get('name') for g in chosen if g.get('name')})
        if names and all(plain_value(n) for n in names) and all(g.get('name') for g in chosen):
            return who, [('redis_kill_clients_names', names)]
        return who, None
    holders = [h for h in ev.get('holders') or [] if isinstance(h, dict) and h.get('pid') is not None]
    if holders:
        top = max(int(h.get('connections') or 0) for h in holders)
        chosen = [h for h in holders if int(h.get('connections') or 0) * 2 >= top and str(h.get('pid')).isdigit()]
        who = ', '.join('%s (pid %s, %s connections)' % (h.get('process') or '?', h.get('pid'), h.get('connections'))
                        for h in chosen[:3])
        return who, ([('redis_kill_clients_pids', sorted(int(h['pid']) for h in chosen))] if chosen else None)
    return None, None


def _redis_exhausted(findings, clients, cmd):
    service = _service([clients], 'redis')
    who, extra = redis_holders(clients)
    refused = [f for f in _by(findings, 'redis.connectivity') if _ev(f).get('max_clients_reached') is True]
    symptoms = _bad(findings, 'health.endpoint', 'app.errors')
    cause = 'Redis client connections exhausted by %s' % (who or 'holders not visible from the Redis host (%s)' % (
        _ev(clients).get('holders_note') or 'see redis.clients'))
    if extra:
        # kill_clients ends the holders' (idle) connections: CLIENT KILL ID, or ss -K while every slot is taken
        return _hypothesis(
            'gradual_degradation', cause, [clients] + refused + symptoms, 0.9, cmd.remediate('kill_clients', service, extra=extra),
            then='Do not restart %s (it drops the cache and frees nothing the holders will not take again); the plan lists '
                 'the connections of the holders it ends (never another process\'s): %s; then fix the client that leaks '
                 'them' % (service, cmd.remediate('kill_clients', service, apply=True, extra=extra)),
            service=service, action='kill_clients', symptom=refused or [clients], claims=('client_slots',))
    how = 'find the client that holds the connections and end its idle ones (CLIENT KILL ID) or stop it'
    return _hypothesis(
        'gradual_degradation', cause, [clients] + refused + symptoms, 0.9, cmd.investigate('redis'),
        then='Do not restart %s (it drops the cache and frees nothing the holders will not take again): %s; then fix '
             'the client that leaks them' % (service, how),
        service=service, symptom=refused or [clients])


def rule_gradual_degradation(findings, ctx, cmd):
    out = []
    conns = _bad(findings, 'pg.connections')
    foreign, own = connection_holders(conns[0], ctx) if conns else ([], [])
    if conns and foreign and sum(held(h) for h in foreign) >= sum(held(h) for h in own):
        service = _service(conns, 'db')
        who = ', '.join('%s (role %s, %s) %d idle in transaction, oldest %d s' % (
            h.get('application_name') or '(no application_name)', h.get('role'), h.get('client_addr') or 'local socket',
            held(h), h.get('oldest_s') or 0) for h in foreign[:3])
        extra = _kill_foreign_extra(foreign, own, conns[0])
        out.append(_hypothesis(
            'gradual_degradation', 'Connection slots held by sessions that are not the backend\'s: %s' % who,
            conns + _bad(findings, 'health.endpoint', 'app.errors'), 0.9 if conns[0].get('status') == 'crit' else 0.75,
            cmd.remediate('kill_query', service, extra=extra),
            then='Restarting the backend frees none of these; end the idle transactions: %s; then find the client '
                 'that leaks them' % cmd.remediate('kill_query', service, apply=True, extra=extra),
            service=service, action='kill_query', symptom=conns, claims=('foreign_slots',)))
    elif conns:
        backend = ctx.get('backend_service') or 'backend'
        symptoms = list(_bad(findings, 'health.endpoint', 'app.errors'))
        out.append(_hypothesis(
            'gradual_degradation', 'Connection pool exhausted (connection leak): %s' % conns[0].get('summary'),
            conns + symptoms, 0.85 if conns[0].get('status') == 'crit' else 0.7,
            cmd.remediate('restart', backend),
            then='Restart the backend to release its connections: %s; then fix the leak (sessions not released)'
                 % cmd.remediate('restart', backend, apply=True),
            service=backend, action='restart', symptom=conns, claims=('leaking',) if own else ()))
    mem = _bad(findings, 'redis.memory')
    short = flush_cannot_free_enough(mem[0]) if mem else None
    if mem and short:
        service = _service(mem, 'redis')
        out.append(_hypothesis(
            'gradual_degradation', 'Redis full of keys no evictable pattern marks: %s' % short,
            mem + _bad(findings, 'redis.keyspace', 'app.errors'), 0.85 if mem[0].get('status') == 'crit' else 0.65,
            cmd.remediate('raise_maxmemory', service),
            then='Flushing the evictable keys cannot free enough and unmarked keys are never deleted; raise maxmemory '
                 'within the host\'s free memory: %s; then find the writer of the top prefix'
                 % cmd.remediate('raise_maxmemory', service, apply=True),
            service=service, action='raise_maxmemory', symptom=mem))
    elif mem:
        service = _service(mem, 'redis')
        out.append(_hypothesis(
            'gradual_degradation', 'Redis memory exhausted (maxmemory reached, writes refused): %s' % mem[0].get('summary'),
            mem + _bad(findings, 'redis.keyspace', 'app.errors'), 0.85 if mem[0].get('status') == 'crit' else 0.65,
            cmd.remediate('flush_keys', service),
            then='The plan lists the evictable keys and bytes; apply with %s' % cmd.remediate('flush_keys', service, apply=True),
            service=service, action='flush_keys', symptom=mem, claims=('memory_full',)))
    clients = _bad(findings, 'redis.clients')
    exhausted = [f for f in clients if redis_slots_exhausted(f)]
    if exhausted:
        out.append(_redis_exhausted(findings, exhausted[0], cmd))
    elif clients and not mem:
        out.append(_hypothesis(
            'gradual_degradation', 'Redis client connections piling up (connection leak)', clients, 0.55,
            cmd.investigate('redis'), service=_service(clients, 'redis')))
    disk = _bad(findings, 'host.disk', 'pg.disk')
    if disk:
        service = _service(disk, 'backend')
        out.append(_hypothesis(
            'gradual_degradation', 'Disk filling up: %s' % disk[0].get('summary'), disk + _bad(findings, 'app.errors'),
            0.85 if any(f.get('status') == 'crit' for f in disk) else 0.65,
            cmd.remediate('clean_disk', service),
            then='The plan lists files and bytes to free; apply with %s' % cmd.remediate('clean_disk', service, apply=True),
            service=service, action='clean_disk', symptom=disk, claims=('disk_full',)))
    tls = _bad(findings, 'net.tls_expiry')
    if tls:
        service = ctx.get('tls_service') or _service(tls, 'proxy')
        expired = any(f.get('status') == 'crit' for f in tls)
        cause = 'TLS certificate %s: %s' % ('expired' if expired else 'about to expire', tls[0].get('summary'))
        pair = renewed_pair(tls)
        if pair:
            extra = [('tls_cert_src', pair['cert']), ('tls_cert_key_src', pair['key'])]
            first = cmd.remediate('apply_cert', service, extra=extra)
            then = 'A renewed pair is staged (%s, valid until %s): apply it with %s' % (
                pair['cert'], pair.get('not_after'), cmd.remediate('apply_cert', service, apply=True, extra=extra))
        else:
            # the collection has no new pair: say what to provide instead of printing a command that fails
            needs = ' -e tls_cert_src=<renewed certificate> -e tls_cert_key_src=<its key>'
            first = cmd.remediate('apply_cert', service) + needs
            then = 'Renew first: no renewed pair found%s; obtain a certificate for the served names, then %s%s' % (
                (' (%s)' % renewal_problem(tls)) if renewal_problem(tls) else
                ' (set renewal_dir on the TLS endpoint to where renewals land)',
                cmd.remediate('apply_cert', service, apply=True), needs)
            cause += '. Renew first: no renewed pair to apply'
        out.append(_hypothesis(
            'gradual_degradation', cause, tls, 0.85 if expired else 0.6, first, then=then,
            service=service, action='apply_cert', claims=('cert_expiry',)))
    trends = [f for f in _bad(findings, 'trend.memory', 'trend.latency', 'trend.connections')
              if not _process_memory_trend(f)]
    if trends:
        # Prometheus: slowly worsening metrics over the window (roles/trends)
        out.append(_hypothesis(
            'gradual_degradation', 'Slowly worsening metrics: %s' % trends[0].get('summary'), trends,
            0.7 if any(f.get('status') == 'crit' for f in trends) else 0.5,
            cmd.investigate('all'), service=_service(trends, None)))
    cpu = [f for f in _bad(findings, 'container.resources') if not _memory_exceeded(f)]
    if cpu:
        out.append(_hypothesis(
            'gradual_degradation', 'Resource exhaustion: %s' % cpu[0].get('summary'), cpu, 0.5,
            cmd.investigate('network'), service=_service(cpu, None)))
    return out


def _failing_paths(finding):
    """The paths of an app.errors finding that failed: failing_paths first, then every path of by_path with errors."""
    paths = []
    for name in ('failing_paths', 'by_path'):
        for value in _values(finding, (name,)):
            if isinstance(value, dict):  # by_path: path -> its counts
                for path, stats in value.items():
                    errors = stats.get('errors') if isinstance(stats, dict) else stats
                    try:
                        if errors is None or float(errors) > 0:
                            paths.append(str(path))
                    except (TypeError, ValueError):
                        paths.append(str(path))
            elif isinstance(value, list):  # failing_paths: the paths
                paths.extend(str(item) for item in value if isinstance(item, str))
    seen = []
    for path in paths:
        if path not in seen:
            seen.append(path)
    return seen


def _dead_units(findings):
    """health.container findings of a service whose container exited or whose systemd unit is inactive/failed."""
    return [f for f in _by(findings, 'health.container') if f.get('service') and classify.down_strength(f) >= 3]


def rule_partial_failures(findings, ctx, cmd):
    out = []
    deps = [f for f in _bad(findings, 'dependency.reachability') if not _LAT_RE.search(f.get('summary') or '')
            or f.get('status') == 'crit']
    readiness = [f for f in _bad(findings, 'health.endpoint')
                 if _down_evidence(f, ctx) < 2 and re.search(r'(degraded|fail|payments|database|cache)', _text(f), re.I)]
    if deps:
        names = ', '.join(sorted({str(f.get('service') or f.get('host')) for f in deps}))
        out.append(_hypothesis(
            'partial_failures', 'External dependency down: %s' % deps[0].get('summary'), deps + readiness, 0.85,
            cmd.investigate('network'),
            then='Endpoints using %s fail while the rest work; degrade the feature or contact the provider' % names,
            service=_service(deps, None)))
    for check, svc_default, label in (('pg.connectivity', 'db', 'Database'), ('redis.connectivity', 'redis', 'Redis')):
        # a server that refuses new clients because every slot is taken is up: rule_gradual_degradation names them;
        # one that refuses writes (and PING) after a failed save is up too: rule_redis_save_failing names the directory
        down = [f for f in findings if f.get('check') == check and f.get('status') == 'crit'
                and not (check == 'redis.connectivity' and (_ev(f).get('max_clients_reached') is True
                                                            or _ev(f).get('refuses_writes') is True))]
        if down:
            service = _service(down, svc_default)
            out.append(_hypothesis(
                'partial_failures', '%s unreachable: %s' % (label, down[0].get('summary')), down + readiness, 0.8,
                cmd.remediate('restart', service),
                then='Endpoints that need %s fail; restart it after checking its logs: %s'
                     % (service, cmd.remediate('restart', service, apply=True)),
                service=service, action='restart'))
    covered = {h.get('service') for h in out}
    backends = set(ctx.get('backends') or [])
    for dead in _dead_units(findings):
        service = dead.get('service')
        if not service or service in covered or dead.get('host') in backends \
                or service in (ctx.get('backend_services') or []):
            continue
        covered.add(service)
        # a dead unit is a down service even when its own probe could not run (issue 21)
        out.append(_hypothesis(
            'partial_failures', '%s down: its container or unit is not running (%s)' % (service, dead.get('summary')),
            [dead] + readiness, 0.85, cmd.remediate('restart', service),
            then='Endpoints that need %s fail; restart it after checking its logs: %s'
                 % (service, cmd.remediate('restart', service, apply=True)),
            service=service, action='restart', symptom=[dead]))
    dns = _bad(findings, 'net.dns')
    if dns:
        out.append(_hypothesis(
            'partial_failures', 'DNS resolution failing: %s' % dns[0].get('summary'), dns, 0.7,
            cmd.investigate('network'), then='Check the resolver and the zone records of the failing names',
            service=_service(dns, None)))
    errors = _bad(findings, 'app.errors')
    if errors and not out:
        paths = []
        for finding in errors:
            paths.extend(p for p in _failing_paths(finding) if p not in paths)
        endpoints = ctx.get('endpoints') or []
        subset = bool(paths) and (not endpoints or len([p for p in endpoints if p not in paths]) > 0)
        healthy_liveness = not any(_down_evidence(f, ctx) >= 2 for f in _by(findings, 'health.endpoint', 'health.container'))
        if subset and healthy_liveness:
            out.append(_hypothesis(
                'partial_failures', 'A single dependency of %s is broken (other endpoints work)' % ', '.join(paths[:5]),
                errors + readiness, 0.6, cmd.investigate('db'),
                then='Check each service the failing endpoints need; the failing requests are in the app.errors evidence',
                service=_service(errors, 'backend')))
        elif healthy_liveness:
            out.append(_hypothesis(
                'partial_failures', 'Errors in the application logs (intermittent or endpoint-specific)',
                errors + readiness, 0.5, cmd.investigate('app'), service=_service(errors, 'backend')))
    elif readiness and not out:
        out.append(_hypothesis(
            'partial_failures', 'Readiness degraded: a dependency check fails', readiness, 0.6,
            cmd.investigate('all'), service=_service(readiness, 'backend')))
    return out


def rule_db_auth_failures(findings, ctx, cmd):
    """The database's own log (pg.log, areas/postgres.py) rejects logins of a role: a rotated password, a changed
    pg_hba.conf or a client with old credentials. No automated action can fix credentials: an escalation naming
    the role and the clients, for a person."""
    out = []
    for finding in _bad(findings, 'pg.log'):
        roles = [r for r in (_values(finding, ('auth_failed_roles',)) or [[]])[0] if isinstance(r, str)]
        if not roles:
            continue
        names = ', '.join(one_line(r, 40) for r in roles[:3])
        # corroboration only from what fails now: application errors that all recovered are history
        errors = [f for f in _bad(findings, 'app.errors', 'health.endpoint', 'pg.connectivity') if signals.is_live(f)]
        out.append(_hypothesis(
            'partial_failures', 'Database logins rejected for role %s (%s)' % (names, finding.get('host')),
            [finding] + errors, 0.75 if errors else 0.5, cmd.investigate('db'),
            then='Escalate to the owner of role %s: check its password (rotated?) and pg_hba.conf against the clients '
                 'named in pg.log; no automated action changes credentials' % names,
            service=finding.get('service'), action=None))
    return out


def rule_wal_retained_by_slot(findings, ctx, cmd):
    """An inactive replication slot retains WAL (pg.replication, areas/postgres.py): its consumer (a replica, a
    CDC or backup tool) is gone or stopped, and the database keeps every WAL segment for it until the disk is full.
    Disk pressure on the same host (pg.disk, host.disk) points at the slot. No automated action: dropping the
    slot frees the WAL but breaks the consumer that owns it (it must be rebuilt), and a restart frees nothing; an
    escalation naming the slot, for a person to decide."""
    out = []
    for finding in _bad(findings, 'pg.replication'):
        slots = [s for s in (_values(finding, ('inactive_retaining',)) or [[]])[0] if isinstance(s, str)]
        if not slots:
            continue
        service = finding.get('service') or 'db'
        disk = [f for f in _bad(findings, 'pg.disk', 'host.disk')
                if f.get('host') == finding.get('host') or (f.get('service') and f.get('service') == service)]
        named = ', '.join(safety.as_data(s) for s in slots[:3])
        hyp = _hypothesis(
            'gradual_degradation',
            '%sinactive replication slot %s retains WAL on %s: its consumer is gone or stopped' % (
                'Disk pressure on %s: ' % finding.get('host') if disk else '', named, service),
            [finding] + disk, 0.85 if disk else 0.6, cmd.investigate('db'), service=service, action=None)
        hyp['escalation'] = safety.slot_escalation(service, slots, ctx)
        hyp['then'] = hyp['escalation']
        out.append(hyp)
    return out


def rule_redis_save_failing(findings, ctx, cmd):
    """Redis cannot write its snapshot (redis.persistence crit, areas/redis.py): with stop-writes-on-bgsave-error
    on (the default) it refuses every write with MISCONF, and the application's errors follow. A full disk on the
    same host (host.disk) is the usual cause: the disk rule then proposes clean_disk, and this names the directory.
    No automated action: a restart loses every write since the last good save and the save fails again; an
    escalation naming the directory."""
    out = []
    for finding in [f for f in _by(findings, 'redis.persistence') if f.get('status') == 'crit']:
        service = finding.get('service') or 'redis'
        disk = [f for f in _bad(findings, 'host.disk') if f.get('host') == finding.get('host')]
        errors = _bad(findings, 'app.errors', 'health.endpoint')
        where = _ev(finding).get('dir')
        refused = [f for f in _by(findings, 'redis.connectivity') if f.get('service') == finding.get('service')
                   and _ev(f).get('refuses_writes') is True]
        # the server's own words (redis.log): "Failed opening the RDB file ...: Permission denied", "fork: ..."
        logs = [f for f in _bad(findings, 'redis.log') if f.get('service') == finding.get('service')
                and f.get('host') == finding.get('host')]
        hyp = _hypothesis(
            'gradual_degradation',
            'Redis cannot save its snapshot%s: writes%s are refused (MISCONF)%s' % (
                (' to %s' % safety.as_data(where, 120, allow='/')) if where else '', ' and PING' if refused else '',
                ' and the disk is full' if disk else ''),
            [finding] + refused + logs + disk + errors, 0.9 if (disk or errors or logs) else 0.7, cmd.investigate('redis'),
            service=service,
            action=None)
        hyp['escalation'] = safety.save_escalation(service, finding, ctx)
        hyp['then'] = hyp['escalation']
        out.append(hyp)
    return out


def rule_fd_exhaustion(findings, ctx, cmd):
    """A process at its open-files limit (host.fds warn/crit, areas/host.py: each process against its own Max open
    files): every file or connection it opens next fails with EMFILE ("Too many open files"). Attributed to a
    service (its container's or unit's cgroup), it is that service leaking descriptors by its own evidence: restart
    it (safety class fd_exhausted). A process no service owns is escalated naming its pid, name and limit, never
    restarted. The same process seen from several inventory hosts of one machine (the Docker lab) counts once."""
    out, mine, unnamed = [], {}, []
    for finding in _bad(findings, 'host.fds'):
        for item in safety.fds_exhausted(finding):
            if item.get('service'):
                mine.setdefault(item['service'], []).append((finding, item))
            else:
                unnamed.append((finding, item))
    owned = set((i.get('pid'), i.get('process')) for pairs in mine.values() for _f, i in pairs)
    for service in sorted(mine):
        pairs = sorted(mine[service], key=lambda p: -float(p[1].get('fd_pct') or 0))
        fds = []
        for finding, _item in pairs:
            if finding not in fds:
                fds.append(finding)
        worst_item = pairs[0][1]
        crit = any(float(i.get('fd_pct') or 0) >= float(_ev(f).get('crit_pct') or 95) for f, i in pairs)
        errors = [f for f in _bad(findings, 'app.errors', 'health.endpoint')
                  if f.get('service') == service or f.get('host') in [x.get('host') for x in fds]]
        cause = 'Descriptor leak in %s: %s pid %s holds %s of its %s open files (%.0f%%); what it opens next fails ' \
                'with EMFILE (Too many open files)' % (
                    service, safety.as_data(worst_item.get('process') or '?', 32), worst_item.get('pid'),
                    worst_item.get('fds'), worst_item.get('fd_limit'), float(worst_item.get('fd_pct') or 0))
        out.append(_hypothesis(
            'gradual_degradation', cause, fds + errors, 0.9 if crit else 0.7, cmd.remediate('restart', service),
            then='Restart %s to give its descriptors back: %s; then find the leak (ls -l /proc/<pid>/fd, lsof -p '
                 '<pid>: what it keeps open) before it recurs' % (service, cmd.remediate('restart', service, apply=True)),
            service=service, action='restart', symptom=fds, claims=('fd_exhausted',)))
    by_host = {}
    for finding, item in unnamed:
        if (item.get('pid'), item.get('process')) not in owned:
            by_host.setdefault(finding.get('host'), []).append((finding, item))
    for host in sorted(by_host, key=str):
        pairs = by_host[host]
        items = sorted([i for _f, i in pairs], key=lambda i: -float(i.get('fd_pct') or 0))
        finding = pairs[0][0]
        crit = float(items[0].get('fd_pct') or 0) >= float(_ev(finding).get('crit_pct') or 95)
        hyp = _hypothesis(
            'gradual_degradation', '%s pid %s on %s holds %s of its %s open files (%.0f%%) and belongs to no known '
            'service' % (safety.as_data(items[0].get('process') or '?', 32), items[0].get('pid'), host,
                         items[0].get('fds'), items[0].get('fd_limit'), float(items[0].get('fd_pct') or 0)),
            [finding], 0.6 if crit else 0.4, cmd.investigate('host'), service=None, action=None)
        hyp['escalation'] = safety.fds_escalation(host, items, ctx)
        hyp['then'] = hyp['escalation']
        out.append(hyp)
    return out


def vacuum_holders(finding, ctx):
    """(killable, others): the xmin horizon holders of a held-back pg.vacuum past their threshold. Killable: a client
    session of one of the service's application roles (postgres.app_roles), not a superuser, idle in transaction
    (it holds a snapshot and does nothing: ending it loses no work in progress). Others: a replication slot, a
    prepared transaction, a superuser's or another role's session, an active statement - a person decides."""
    app_roles = set((ctx.get('app_roles') or {}).get(finding.get('service')) or [])
    killable, others = [], []
    for holder in _ev(finding).get('xmin_holders') or []:
        if not isinstance(holder, dict) or not holder.get('past_threshold'):
            continue
        ok = (holder.get('kind') == 'session' and isinstance(holder.get('pid'), int) and not holder.get('superuser')
              and str(holder.get('state') or '').startswith('idle in transaction') and holder.get('user') in app_roles
              and plain_value(holder.get('user')))
        (killable if ok else others).append(holder)
    return killable, others


def _holder_text(holder):
    """A holder as data for a person (names escaped: they are the database's and its clients' text)."""
    kind = holder.get('kind')
    if kind == 'slot':
        return 'replication slot %s (%s)' % (safety.as_data(holder.get('name')), holder.get('state') or '?')
    if kind == 'prepared':
        return 'prepared transaction %s (owner %s, %s s old)' % (
            safety.as_data(holder.get('name')), safety.as_data(holder.get('user')), int(holder.get('age_s') or 0))
    return 'pid %s (role %s, application %s, %s%s, transaction %s s old)' % (
        holder.get('pid'), safety.as_data(holder.get('user')), safety.as_data(holder.get('application') or ''),
        safety.as_data(holder.get('state') or '?', allow=' '), ', superuser' if holder.get('superuser') else '',
        int(holder.get('age_s') or 0))


def rule_vacuum_held(findings, ctx, cmd):
    """Vacuum held back (pg.vacuum warn with held_back, areas/postgres.py): a table's dead tuples cannot be removed
    while an old snapshot or transaction holds the xmin horizon; the table bloats and queries slow down gradually.
    When every holder past the threshold is an application session idle in transaction, kill_query ends exactly
    those pids (autovacuum then removes the dead tuples); otherwise (a slot, a prepared transaction, a superuser,
    an active statement) an escalation naming the holder and who owns it. Never a restart of the database: it
    would end every session to release one."""
    out = []
    for finding in _bad(findings, 'pg.vacuum'):
        if _ev(finding).get('held_back') is not True:
            continue
        service = finding.get('service') or 'db'
        killable, others = vacuum_holders(finding, ctx)
        if not killable and not others:
            continue
        latency = [f for f in _bad(findings, 'health.endpoint', 'app.errors') if _slow(f)]
        named = '; '.join(_holder_text(h) for h in (others + killable)[:3])
        cause = 'Vacuum held back on %s: dead tuples cannot be removed while %s holds the xmin horizon' % (service, named)
        if killable and not others:
            pids = sorted({h['pid'] for h in killable})
            ages = [float(h.get('state_age_s') if h.get('state_age_s') is not None else h.get('age_s') or 0)
                    for h in killable]
            extra = [('pg_terminate_pids', pids), ('pg_terminate_states', 'idle in transaction'),
                     ('pg_terminate_roles', sorted({h['user'] for h in killable})),
                     ('pg_terminate_min_age', int(min(ages)) if ages else 0)]
            out.append(_hypothesis(
                'gradual_degradation', cause, [finding] + latency, 0.8,
                cmd.remediate('kill_query', service, extra=extra),
                then='End the idle transaction%s holding the snapshot (pid %s): %s; autovacuum then removes the dead '
                     'tuples (or run VACUUM on the table); then find why the client leaves its transaction open' % (
                         '' if len(pids) == 1 else 's', ', '.join(str(p) for p in pids),
                         cmd.remediate('kill_query', service, apply=True, extra=extra)),
                service=service, action='kill_query', symptom=[finding], claims=('vacuum_held',)))
            continue
        hyp = _hypothesis('gradual_degradation', cause, [finding] + latency, 0.7, cmd.investigate('db'),
                          service=service, action=None)
        hyp['escalation'] = safety.vacuum_escalation(service, [_holder_text(h) for h in others + killable], ctx)
        hyp['then'] = hyp['escalation']
        out.append(hyp)
    return out


def rule_temp_spill(findings, ctx, cmd):
    """Temporary files past postgres_temp_bytes_warn (pg.temp warn, areas/postgres.py): sorts and hashes larger than
    work_mem spill to disk, slowing those queries and filling the data directory. pg.statements names the statement
    writing the most temporary blocks when pg_stat_statements is installed. No automated action: raising work_mem
    (per role or per query) or changing the query or its index is the owner's decision; a restart frees nothing."""
    out = []
    for finding in _bad(findings, 'pg.temp'):
        service = finding.get('service') or 'db'
        statements = [f for f in _by(findings, 'pg.statements') if f.get('host') == finding.get('host')]
        top = None
        for stmt in statements:
            rows = [r for r in _ev(stmt).get('top_temp') or [] if isinstance(r, dict)]
            if rows:
                top = rows[0]
                break
        work_mem = _ev(finding).get('work_mem')
        hyp = _hypothesis(
            'gradual_degradation',
            'Queries spill to temporary files on %s (%s)%s' % (
                service, one_line(finding.get('summary'), 120),
                ('; most by statement %s' % safety.as_data(top.get('query'), 80, allow=' ')) if top else ''),
            [finding] + _bad(findings, 'pg.disk'), 0.55, cmd.investigate('db'), service=service, action=None)
        hyp['escalation'] = safety.temp_escalation(service, top, work_mem, ctx)
        hyp['then'] = hyp['escalation']
        out.append(hyp)
    return out


RULES = (rule_error_spike_after_deploy, rule_backend_down, rule_memory_growth, rule_slow_responses,
         rule_gradual_degradation, rule_partial_failures, rule_db_auth_failures, rule_wal_retained_by_slot,
         rule_redis_save_failing, rule_fd_exhaustion, rule_vacuum_held, rule_temp_spill)


def evidence_of(doc, action, service=None):
    """The symptom checks behind the hypothesis an action came from: [{'host', 'check'}].

    The best-ranked hypothesis whose action (and service, when given) is this one; change checks
    (deploy.recent, ...) are not symptoms and are left out. Verification re-runs these checks.
    """
    hyps = [h for h in ((doc or {}).get('hypotheses') or []) if isinstance(h, dict) and h.get('action') == action]
    exact = [h for h in hyps if not service or h.get('service') == service]
    chosen = sorted(exact or hyps, key=lambda h: h.get('rank') or 99)
    out = []
    for item in ((chosen[0].get('symptom_checks') or chosen[0].get('evidence') or []) if chosen else []):
        host, _sep, check = str(item).rpartition('/')
        if host and check and check not in CHANGE_CHECKS and {'host': host, 'check': check} not in out:
            out.append({'host': host, 'check': check})
    return out


def next_actions(doc, action, service=None):
    """What remains after `action` on `service` worked: the other hypotheses that carry an action, best first.

    [{'action', 'service', 'likely_cause', 'first_action'}]; a verification that finds its own symptom gone while
    the service is still unhealthy prints the first of them (two faults: the lock, then Redis)."""
    hyps = [h for h in ((doc or {}).get('hypotheses') or []) if isinstance(h, dict) and h.get('action')]
    out = []
    for hyp in sorted(hyps, key=lambda h: h.get('rank') or 99):
        if hyp.get('action') == action and (not service or not hyp.get('service') or hyp.get('service') == service):
            continue
        item = dict((k, hyp.get(k)) for k in ('action', 'service', 'likely_cause', 'first_action'))
        if item not in out:
            out.append(item)
    return out


def affected_services(findings):
    return sorted({str(f.get('service') or f.get('host')) for f in findings if is_bad(f) and is_symptom(f)})


def diagnose(findings, context=None):
    """Findings -> the diagnosis document (see module docstring)."""
    ctx = dict(context or {})
    findings = [f for f in (findings or []) if isinstance(f, dict)]
    cmd = Commands(ctx.get('incident_id'), ctx.get('inventory'), ctx.get('playbook_dir') or 'playbooks')
    symptoms = [f for f in findings if is_symptom(f)]
    bad = [f for f in symptoms if is_bad(f)]
    hypotheses = []
    if bad:
        for rule in RULES:
            for hyp in rule(findings, ctx, cmd):
                if any(k in [key(f) for f in findings if is_bad(f)] for k in hyp['evidence']):
                    hypotheses.append(hyp)
    for hyp in hypotheses:
        safety.gate(hyp, findings, ctx, cmd.investigate)
        signals.adjust(hyp, findings)
    hypotheses.sort(key=lambda h: signals.rank_key(h, findings, PRIORITY))
    for rank, hyp in enumerate(hypotheses, 1):
        hyp['rank'] = rank
    floor, reasons = classify.severity_from_findings(symptoms, ctx.get('backends'), ctx.get('backend_services') or None,
                                                     ctx.get('critical_paths') or None)
    counts = contract.counts(findings)
    unknown = [key(f) for f in findings if f.get('status') == 'unknown']
    deploys = _deploys_in_window(findings)
    top_hyp = hypotheses[0] if hypotheses else None
    doc = {
        'incident_id': ctx.get('incident_id'),
        'title': ('%s: %s' % (top_hyp.get('service') or ', '.join(affected_services(findings)) or 'service',
                              TITLES[top_hyp['pattern']])) if top_hyp else None,
        'healthy': not bad,
        'counts': counts,
        'findings_total': len(findings),
        'affected_services': affected_services(findings),
        'severity_floor': floor,
        'severity_reasons': reasons,
        'recent_deploys': [{'key': key(f), 'service': f.get('service'), 'summary': f.get('summary')} for f in deploys],
        'unknown': unknown,
        'hypotheses': hypotheses,
    }
    if not findings:
        doc['summary'] = 'No findings to diagnose (did the probes run?)'
        doc['healthy'] = None
    elif not bad:
        doc['summary'] = 'All %d checks ok%s: no incident evident' % (
            len(findings), (' (%d could not run: %s)' % (len(unknown), ', '.join(unknown[:5]))) if unknown else '')
    else:
        top = hypotheses[0] if hypotheses else None
        doc['summary'] = ('%s (%s, confidence %.2f): %s' % (top['pattern'], top['likely_cause'], top['confidence'],
                                                            top['first_action'])
                          if top else '%d non-ok findings, no pattern matched' % len(bad))
    return doc
