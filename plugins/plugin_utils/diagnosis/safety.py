# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Do no harm, as a rule in code: which actions a service's own evidence allows.

The diagnosis consults ``judge()`` before it prints an action that restarts, kills or deletes. A restart is
allowed only for a service that is down, hung, leaking or crashing by its OWN evidence (its container or unit,
its own endpoints, its own memory, the server refusing connections); a service whose own health is fine
because a client cannot log in or reach it is never restarted. Authentication, authorization and configuration
errors get an escalation naming the failing credential or setting (taken from the error as data, escaped) and
who owns it. Client-slot exhaustion never restarts the database.

EVIDENCE_ACTIONS is the table (docs/diagnosis.md prints it for the on-call reader).
Pure Python, standard library only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import classify
from ansible_collections.sre.incident_response.plugins.module_utils import findings as contract
from ansible_collections.sre.incident_response.plugins.module_utils.areas.host import SANDBOX_FD_LIMIT

# Actions that restart, kill or delete: proposed only when judge() allows them.
DESTRUCTIVE = ('restart', 'kill_query', 'kill_clients', 'flush_keys', 'clean_disk', 'rollback')

# evidence class -> the actions it allows (an empty tuple: escalate to a person, change nothing)
EVIDENCE_ACTIONS = {
    'down': ('restart',),                     # container/unit not running, connections refused
    'hung': ('restart',),                     # no answer at all (timeouts), unit restarting
    'leaking': ('restart',),                  # its own memory near the limit / its own sessions leaked
    'fd_exhausted': ('restart',),             # its own process at its open-files limit (a descriptor leak)
    'crashing': ('restart', 'rollback'),      # OOM kills, restart loop
    'bad_release': ('rollback',),             # errors since a deploy of new code
    'blocking_sessions': ('kill_query',),     # lock holders, long queries
    'foreign_slots': ('kill_query',),         # connection slots held by other clients' sessions
    'memory_full': ('flush_keys', 'raise_maxmemory'),
    'disk_full': ('clean_disk',),
    'cert_expiry': ('apply_cert',),
    'auth': (),                               # a credential is refused: the server is fine
    'authz': (),                              # a permission or pg_hba rule refuses a client
    'config': (),                             # a setting is wrong (unknown database, TLS mode, ...)
    'client_slots': ('kill_query', 'kill_clients'),  # too many clients: end the holders, never restart the server
    'wal_retained': (),                       # an inactive replication slot keeps WAL: a person decides on the slot
    'save_failing': (),                       # Redis cannot write its snapshot: fix the directory, never restart
    'vacuum_held': ('kill_query',),           # an old snapshot holds vacuum back: end that session, never restart
    'temp_spill': (),                         # queries spill past work_mem to temp files: the owner tunes, never restart
}

# What a person must do, per class that allows no automated action.
ESCALATION = {
    'auth': 'a credential is refused: set the same secret on both sides (the server and every client that uses it)',
    'authz': 'a permission or access rule refuses the client: fix the grant or the access rule (pg_hba.conf, ACL)',
    'config': 'a setting is wrong: fix the named setting in the client\'s or the server\'s configuration',
    'wal_retained': 'an inactive replication slot retains WAL: start its consumer, or drop the slot (which breaks the '
                    'consumer that owns it)',
    'save_failing': 'Redis cannot write its snapshot: free space in or fix the permissions of its directory, then '
                    'BGSAVE',
    'vacuum_held': 'an old snapshot holds the xmin horizon: end the holder (its owner decides for a slot, a prepared '
                   'transaction or a running statement), then VACUUM',
    'temp_spill': 'queries spill past work_mem to temporary files: raise work_mem for the role or query, or change the '
                  'query or its index',
}

_ERROR_CLASSES = (
    ('auth', re.compile(r'(password authentication failed|authentication failed|WRONGPASS|NOAUTH|invalid password|'
                        r'invalid username-password|role "[^"]*" does not exist|no password supplied|'
                        r'Ident authentication failed|peer authentication failed|SASL authentication)', re.I)),
    ('authz', re.compile(r'(no pg_hba\.conf entry|permission denied|NOPERM|not authori[sz]ed|'
                         r'must be superuser|pg_hba)', re.I)),
    ('config', re.compile(r'(database "[^"]*" does not exist|SSL is not enabled|server does not support SSL|'
                          r'SSL off|sslmode|certificate verify failed|invalid (connection|option|value)|'
                          r'unsupported startup parameter|unknown command)', re.I)),
    ('client_slots', re.compile(r'(too many clients|remaining connection slots are reserved|'
                                r'max number of clients reached|too many connections)', re.I)),
    ('down', re.compile(r'(connection refused|errno 111|no route to host|connection reset|remote end closed|'
                        r'no such container|not running|server closed the connection|the database system is '
                        r'(starting up|shutting down|in recovery mode)|LOADING)', re.I)),
    ('hung', re.compile(r'(timed? ?out|timeout)', re.I)),
)

_ROLE_RE = re.compile(r'(?:for user|role|user) "([^"]{1,128})"', re.I)
_DB_RE = re.compile(r'database "([^"]{1,128})"', re.I)
_HBA_RE = re.compile(r'no pg_hba\.conf entry for host "([^"]{1,128})"', re.I)
_SAFE_CHARS = re.compile(r'[A-Za-z0-9_.@:-]')


def as_data(text, limit=64, allow=''):
    """Outside text (a role from a log line) as printable data: every character outside [A-Za-z0-9_.@:-] (and
    ``allow``: '/' for a path) escaped as \\xNN / \\uNNNN, cut at ``limit``, in double quotes. Templating, shell
    and markup syntax in it is never active: '{{' becomes \\x7b\\x7b."""
    out = []
    for char in str(text)[:limit]:
        if _SAFE_CHARS.match(char) or (char in allow):
            out.append(char)
        elif ord(char) < 0x100:
            out.append('\\x%02x' % ord(char))
        else:
            out.append('\\u%04x' % ord(char))
    return '"%s"%s' % (''.join(out), '...' if len(str(text)) > limit else '')


def classify_error(text):
    """The class of a client-side error text (auth, authz, config, client_slots, down, hung) or None."""
    text = str(text or '')
    for name, pattern in _ERROR_CLASSES:
        if pattern.search(text):
            return name
    return None


def failing_setting(text):
    """What the error names, as data: {'role': ..., 'database': ..., 'client_host': ...} (escaped values)."""
    out = {}
    for name, pattern in (('role', _ROLE_RE), ('database', _DB_RE), ('client_host', _HBA_RE)):
        match = pattern.search(str(text or ''))
        if match:
            out[name] = as_data(match.group(1))
    return out


def _error_texts(finding):
    """The error words of a finding: its summary and evidence.error (connectivity checks)."""
    texts = [str(finding.get('summary') or '')]
    error = contract.evidence(finding).get('error') if finding.get('check') in contract.EVIDENCE \
        and 'error' in contract.EVIDENCE[finding.get('check')] else None
    if error:
        texts.append(str(error))
    return ' '.join(texts)


_CONNECTIVITY = ('pg.connectivity', 'redis.connectivity')
_OWN_STATE = ('health.container', 'app.process', 'host.units')


def _mine(finding, service, hosts):
    return finding.get('service') == service or (not finding.get('service') and finding.get('host') in hosts) \
        or (hosts and finding.get('host') in hosts and finding.get('check') in _OWN_STATE)


def own_evidence(findings, service, ctx=None):
    """The evidence classes a service's OWN findings show: {'down', 'hung', 'leaking', 'crashing', 'auth', ...}.

    A connectivity error counts by its class: refused/reset is `down`, a timeout `hung`, a refused password
    `auth` (the server answered: it is up). A dead unit or exited container is `down` even when the service's
    probe could not run.
    """
    ctx = ctx or {}
    hosts = set(str(h) for h in ((ctx.get('service_hosts') or {}).get(service) or []))
    classes = {}
    for finding in findings or []:
        if not isinstance(finding, dict) or not _mine(finding, service, hosts):
            continue
        check, status = finding.get('check'), finding.get('status')
        if check in _OWN_STATE or check == 'health.endpoint':
            strength = classify.down_strength(finding, [service])
            if strength >= 3:
                classes.setdefault('down', finding)
            elif strength == 2:
                classes.setdefault('hung', finding)
            if check == 'health.container':
                ev = contract.evidence(finding)
                if ev.get('oom_killed') is True:
                    classes.setdefault('crashing', finding)
                try:
                    if status in contract.BAD and int(ev.get('restart_count') or 0) >= 3:
                        classes.setdefault('crashing', finding)
                except (TypeError, ValueError):
                    pass
        elif check in _CONNECTIVITY and status == 'crit':
            kind = classify_error(_error_texts(finding))
            if kind:
                classes.setdefault(kind, finding)
        elif check == 'pg.replication' and status in contract.BAD and contract.evidence(finding).get('inactive_retaining'):
            classes.setdefault('wal_retained', finding)  # the database is up; a slot's consumer is not
        elif check == 'pg.vacuum' and status in contract.BAD and contract.evidence(finding).get('held_back') is True:
            classes.setdefault('vacuum_held', finding)  # the database is up; one session's snapshot holds vacuum
        elif check == 'pg.temp' and status in contract.BAD:
            classes.setdefault('temp_spill', finding)  # the database is up; its queries spill past work_mem
        elif check == 'redis.persistence' and status == 'crit':
            classes.setdefault('save_failing', finding)  # Redis is up; its snapshot directory is not writable
        elif check == 'host.oom' and status in contract.BAD:
            classes.setdefault('leaking', finding)  # the kernel OOM-killed the service's own process
        elif check == 'host.fds' and status in contract.BAD \
                and any(i.get('service') == service for i in fds_exhausted(finding)):
            classes.setdefault('fd_exhausted', finding)  # a process of the service's own cgroup at its open-files limit
        elif check == 'container.resources' and status in contract.BAD and _memory(finding):
            classes.setdefault('leaking', finding)
        elif check == 'trend.memory' and status in contract.BAD \
                and contract.evidence(finding).get('kind') not in ('redis', 'postgres'):
            classes.setdefault('leaking', finding)
    return classes


def fds_exhausted(finding):
    """The processes a host.fds finding lists at or past its warn threshold of their own Max open files (a limit
    under SANDBOX_FD_LIMIT is a sandbox's, never exhaustion): [{pid, process, service, fds, fd_limit, fd_pct}].
    A process the probe could not attribute to a service has service None."""
    if finding.get('check') != 'host.fds':
        return []
    ev = contract.evidence(finding)
    try:
        warn = float(ev.get('warn_pct') if ev.get('warn_pct') is not None else 80)
    except (TypeError, ValueError):
        warn = 80.0
    out = []
    for item in ev.get('top_fds') or []:
        if not isinstance(item, dict):
            continue
        try:
            if float(item.get('fd_pct')) >= warn and int(item.get('fd_limit') or 0) >= SANDBOX_FD_LIMIT:
                out.append(item)
        except (TypeError, ValueError):
            continue
    return out


def fds_escalation(host, items, ctx=None):
    """The escalation for processes at their open-files limit that belong to no service of the inventory: each
    process (its name as data), pid and limit, on which host. Never a restart of something unnamed."""
    named = '; '.join('%s pid %s: %s of %s open files (%.0f%%)' % (
        as_data(i.get('process') or '?', 32), i.get('pid'), i.get('fds'), i.get('fd_limit'), float(i.get('fd_pct') or 0))
        for i in list(items)[:3])
    return ('Do not restart anything for it: on %s %s, and no service of the inventory owns %s. Escalate to the owner '
            'of host %s: find what the process is and what it holds (ls -l /proc/<pid>/fd, lsof -p <pid>), then '
            'restart it by hand or raise its limit (LimitNOFILE, ulimit -n, --ulimit nofile) if it needs more.' % (
                as_data(host, 64), named, 'it' if len(items) == 1 else 'them', as_data(host, 64)))


def _memory(finding):
    ev = contract.evidence(finding)
    exceeded = ev.get('exceeded')
    if isinstance(exceeded, list):
        return any('memory' in str(x) for x in exceeded)
    return 'mem' in str(finding.get('summary') or '').lower()


def owner_of(service, ctx=None):
    owners = (ctx or {}).get('owners') or {}
    return owners.get(service) or 'the service owner (owner_team not set in the inventory)'


_KIND_WORDS = {'auth': 'authentication failed', 'authz': 'access denied', 'config': 'configuration error'}


def escalation(kind, service, finding, ctx=None):
    """The text a person reads when no action is allowed: what fails, the failing credential or setting (as data),
    and who owns it."""
    text = _error_texts(finding) if finding else ''
    named = failing_setting(text)
    what = ', '.join('%s %s' % (k.replace('_', ' '), v) for k, v in sorted(named.items()))
    return 'Do not restart %s: it is up and refuses the client (%s). Escalate to %s (owner of %s): %s%s.' % (
        service, _KIND_WORDS.get(kind, kind), owner_of(service, ctx), service, ESCALATION.get(kind, 'a person must decide'),
        ('; failing: %s' % what) if what else '')


def slot_escalation(service, slots, ctx=None):
    """The escalation for replication slots that retain WAL: the slots (as data), what dropping one breaks, who
    owns the service. Never an automated drop, never a restart."""
    named = ', '.join(as_data(s) for s in list(slots or [])[:3]) or 'an inactive slot'
    return ('Do not restart %s and do not drop slot %s automatically: dropping it frees the retained WAL but breaks '
            'the consumer that owns it (a replica, CDC or backup tool must then be rebuilt or resynced). Escalate to '
            '%s (owner of %s): find the consumer of slot %s and start it, or decide to drop the slot '
            '(pg_drop_replication_slot) and rebuild the consumer.' % (
                service, named, owner_of(service, ctx), service, named))


def save_escalation(service, finding, ctx=None):
    """The escalation for a Redis whose background save fails: the directory (as data), why a restart harms (the
    writes since the last good save are lost, and the save fails again), who owns the service."""
    ev = contract.evidence(finding) if finding else {}
    where = as_data(ev.get('dir'), 120, allow='/') if ev.get('dir') else 'its snapshot directory (CONFIG GET dir)'
    return ('Do not restart %s: its last background save failed, a restart loses every write since the last good '
            'save and the save fails again. Escalate to %s (owner of %s): make %s writable (free space, permissions, '
            'a mount that is gone), then run BGSAVE and check INFO persistence shows rdb_last_bgsave_status:ok; '
            'writes refused with MISCONF resume then.' % (service, owner_of(service, ctx), service, where))


def vacuum_escalation(service, holders, ctx=None):
    """The escalation for vacuum held back by a holder no automated action may end: the holders (already as data),
    what ending each costs, who owns the service. Never a restart."""
    named = '; '.join(list(holders or [])[:3]) or 'an old snapshot'
    return ('Do not restart %s: it would end every session to release one snapshot. Vacuum is held back by %s. '
            'Escalate to %s (owner of %s): a replication slot - start its consumer or drop it '
            '(pg_drop_replication_slot, breaks the consumer); a prepared transaction - COMMIT PREPARED or ROLLBACK '
            'PREPARED once its coordinator is known; a session - ask its owner, then pg_terminate_backend(pid); '
            'then VACUUM the table.' % (service, named, owner_of(service, ctx), service))


def temp_escalation(service, statement, work_mem, ctx=None):
    """The escalation for queries spilling to temporary files: the statement writing the most temporary blocks
    (its text as data, from pg_stat_statements), work_mem, who owns the service. Never a restart."""
    if statement:
        what = 'statement %s (queryid %s, %s temporary blocks written over %s calls)' % (
            as_data(statement.get('query'), 120, allow=' '), as_data(statement.get('queryid'), 24),
            statement.get('temp_blks_written'), statement.get('calls'))
    else:
        what = 'the statements (install pg_stat_statements to name them; log_temp_files logs each spill)'
    return ('Do not restart %s: it frees nothing and the spills come back with the queries. Escalate to %s (owner of '
            '%s): %s spills past work_mem %s; raise work_mem for that role or query (ALTER ROLE ... SET work_mem, '
            'SET LOCAL work_mem) within the memory budget, or change the query or its index.' % (
                service, owner_of(service, ctx), service, what, as_data(work_mem or '?', 16)))


def judge(action, service, findings, ctx=None, reasons=()):
    """May this action run against this service, on this evidence?

    reasons: the evidence classes the proposing rule claims (e.g. 'foreign_slots', 'blocking_sessions',
    'leaking' for a backend's own leaked sessions). A restart also needs the service's own evidence
    (own_evidence) to say down, hung, leaking or crashing. Returns {'allowed': bool, 'reason': str,
    'classes': [...], 'escalation': str or None, 'kind': the refusing class or None}.
    """
    own = own_evidence(findings, service, ctx)
    claimed = set(reasons or ())
    blocking = [k for k in ('auth', 'authz', 'config') if k in own]
    classes = sorted(set(own) | claimed)
    if action not in DESTRUCTIVE:
        return {'allowed': True, 'reason': '%s changes nothing it cannot undo' % action, 'classes': classes,
                'escalation': None, 'kind': None}
    allowed_by = [k for k in classes if action in EVIDENCE_ACTIONS.get(k, ())]
    if action == 'restart':
        # only the service's own state: a client's complaint is not a reason to restart the server
        allowed_by = [k for k in allowed_by if k in own or (k == 'leaking' and k in claimed)]
        if blocking and not [k for k in allowed_by if k in ('down', 'crashing', 'leaking')]:
            kind = blocking[0]
            return {'allowed': False, 'reason': 'the server answers (%s): a restart cannot help' % _KIND_WORDS[kind],
                    'classes': classes, 'escalation': escalation(kind, service, own[kind], ctx), 'kind': kind}
        if 'wal_retained' in own and not [k for k in allowed_by if k in ('down', 'crashing', 'leaking', 'hung')]:
            slots = contract.evidence(own['wal_retained']).get('inactive_retaining') or []
            return {'allowed': False, 'reason': 'an inactive replication slot retains WAL: a restart frees none of it',
                    'classes': classes, 'kind': 'wal_retained', 'escalation': slot_escalation(service, slots, ctx)}
        if 'vacuum_held' in own and not [k for k in allowed_by if k in ('down', 'crashing', 'hung')]:
            return {'allowed': False, 'reason': 'vacuum is held back by an old snapshot: a restart ends every session to '
                                                'release one', 'classes': classes, 'kind': 'vacuum_held',
                    'escalation': 'End the session that holds the snapshot (kill_query of its pid) or escalate its '
                                  'owner, never restart %s' % service}
        if 'save_failing' in own and not [k for k in allowed_by if k in ('down', 'crashing', 'hung')]:
            return {'allowed': False, 'reason': 'the last background save failed: a restart loses the writes since '
                                                'the last good save', 'classes': classes, 'kind': 'save_failing',
                    'escalation': save_escalation(service, own['save_failing'], ctx)}
        if 'client_slots' in own and not [k for k in allowed_by if k in ('down', 'crashing')]:
            return {'allowed': False, 'reason': 'client slots exhausted: a restart drops every client and frees '
                                                'nothing the holders will not take again',
                    'classes': classes, 'kind': 'client_slots',
                    'escalation': 'End the sessions or clients that hold the slots (kill_query; Redis: '
                                  'kill_clients), never restart %s' % service}
    if allowed_by:
        return {'allowed': True, 'reason': '%s: %s' % (action, ', '.join(allowed_by)), 'classes': classes,
                'escalation': None, 'kind': None}
    kind = blocking[0] if blocking else None
    return {'allowed': False, 'classes': classes, 'kind': kind,
            'reason': 'no evidence of %s says %s can help (own evidence: %s)' % (
                service, action, ', '.join(sorted(own)) or 'healthy'),
            'escalation': escalation(kind, service, own[kind], ctx) if kind else None}


_REFUSED_CAUSE = {'auth': 'Credential refused', 'authz': 'Access refused', 'config': 'Configuration error',
                  'client_slots': 'Client connection slots exhausted'}
_AREA_OF = {'pg': 'db', 'redis': 'redis', 'app': 'app', 'net': 'network', 'health': 'all'}


def gate(hyp, findings, ctx, investigate):
    """Ask judge() before an action that restarts, kills or deletes is printed (diagnosis.diagnose).

    hyp['_claims'] (popped): the evidence classes the rule's action rests on. A refused action becomes an
    investigation of the area (``investigate(area)`` builds the command), with the escalation (what fails, the
    failing credential or setting, who owns it) in ``escalation`` and ``then``; the verdict is kept in ``safety``.
    """
    claims = hyp.pop('_claims', ())
    action = hyp.get('action')
    if action not in DESTRUCTIVE:
        return hyp
    verdict = judge(action, hyp.get('service'), findings, ctx, claims)
    hyp['safety'] = {'allowed': verdict['allowed'], 'reason': verdict['reason'], 'classes': verdict['classes']}
    if verdict['allowed']:
        return hyp
    area = 'all'
    for item in hyp.get('evidence') or []:
        area = _AREA_OF.get(str(item).rpartition('/')[2].split('.')[0], area)
        if area != 'all':
            break
    hyp['action'] = None
    hyp['first_action'] = investigate(area)
    hyp['escalation'] = verdict['escalation'] or 'No evidence says %s of %s can help: %s' % (
        action, hyp.get('service'), verdict['reason'])
    hyp['then'] = hyp['escalation']
    if verdict['kind'] in _REFUSED_CAUSE:
        hyp['likely_cause'] = '%s by %s, which is up: a restart cannot help (%s)' % (
            _REFUSED_CAUSE[verdict['kind']], hyp.get('service'), hyp['likely_cause'])
    else:
        hyp['likely_cause'] = '%s (not %s: %s)' % (hyp['likely_cause'], action, verdict['reason'])
    return hyp
