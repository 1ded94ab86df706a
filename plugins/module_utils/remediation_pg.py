# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which PostgreSQL sessions pg_sessions may cancel or terminate (pure, unit-tested).

A session is a target only when every filter agrees; some sessions can never be targets:
the module's own session, non-client backends (autovacuum, walsender/replication, logical
replication and other background workers, checkpointer, ...), superusers unless allowed,
and sessions that only wait for a lock held by a target (they proceed once it is gone).

Pinned PIDs (an approved plan, or the lock holders triage named) stand for their whole lock
chain: every session of the same blocking tree that blocks another (a holder in an open
transaction that itself waits, up to the root, found with pg_blocking_pids) is selected too,
under the same filters. Ending only the root of A <- B <- C lets B take A's lock and keep
holding what C waits for.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch

from ansible_collections.sre.incident_response.plugins.module_utils.redact import redact

SESSIONS_SQL = """
SELECT a.pid, a.usename, a.datname, a.application_name, host(a.client_addr) AS client_addr,
       a.backend_type, a.state, left(a.query, 2000) AS query, a.wait_event_type, a.wait_event,
       extract(epoch FROM now() - a.query_start)::float AS query_age,
       extract(epoch FROM now() - a.xact_start)::float AS xact_age,
       extract(epoch FROM now() - a.state_change)::float AS state_age,
       a.backend_start::text AS backend_start, a.xact_start::text AS xact_start,
       a.query_start::text AS query_start,
       coalesce(r.rolsuper, false) AS superuser, coalesce(r.rolreplication, false) AS replication,
       pg_blocking_pids(a.pid) AS blocked_by, a.pid = pg_backend_pid() AS own
FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
ORDER BY a.pid
"""

TX_STATES = ('idle in transaction', 'idle in transaction (aborted)')
DEFAULT_STATES = ['active', 'idle in transaction', 'idle in transaction (aborted)']
QUERY_PREVIEW = 200
SQL_SECRET_PATTERNS = [r"(?i)(?<=password ')[^']*", r"(?i)(?<=password \$\$)[^$]*"]


def session_age(row):
    """Seconds that matter: the transaction's age when one is open, else the query's (active) or state's."""
    for key in ('xact_age', 'query_age' if row.get('state') == 'active' else 'state_age'):
        if row.get(key) is not None:
            return max(0.0, float(row[key]))
    return 0.0


def identity(row):
    """The same session in the same transaction/query (a re-used pid is not the same target)."""
    return (row.get('pid'), row.get('backend_start'), row.get('xact_start') or row.get('query_start'))


def annotate(rows):
    """Add `blocking` (pids this session blocks) and `age` to every row."""
    blocks = {}
    for row in rows:
        for blocker in row.get('blocked_by') or []:
            blocks.setdefault(blocker, []).append(row['pid'])
    for row in rows:
        row['blocking'] = sorted(blocks.get(row['pid'], []))
        row['blocked_by'] = list(row.get('blocked_by') or [])
        row['age'] = round(session_age(row), 1)
    return rows


def lock_tree(rows, pids):
    """The pids of the blocking trees (pg_blocking_pids edges, either way) that hold any of `pids`."""
    by_pid = dict((r.get('pid'), r) for r in rows)
    seen, todo = set(), [p for p in pids if p in by_pid]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        row = by_pid.get(pid) or {}
        todo.extend(p for p in list(row.get('blocked_by') or []) + list(row.get('blocking') or [])
                    if p in by_pid and p not in seen)
    return seen


def chain_pids(rows, pids):
    """`pids` and every session of their lock trees that blocks another (the holders a kill must end)."""
    by_pid = dict((r.get('pid'), r) for r in rows)
    return set(pids) | set(p for p in lock_tree(rows, pids) if by_pid[p].get('blocking'))


def _match_any(value, patterns):
    return any(fnmatch.fnmatchcase(str(value or ''), p) for p in patterns)


def select_sessions(rows, roles=None, databases=None, states=None, min_age=30.0, application_names=None,
                    exclude_application_names=None, pids=None, include_blockers=True, allow_superuser=False,
                    include_waiting=False):
    """Split annotated rows into (targets, skipped); skipped rows carry a `reason`."""
    states = list(states if states is not None else DEFAULT_STATES)
    targets, skipped = [], []
    tree = lock_tree(rows, pids) if pids else set()
    chain = chain_pids(rows, pids) if pids else set()

    def skip(row, reason):
        skipped.append(dict(row, reason=reason))

    for row in rows:
        if row.get('own'):
            skip(row, 'own session')
            continue
        if row.get('backend_type') not in (None, 'client backend'):
            skip(row, 'background process (%s)' % row.get('backend_type'))
            continue
        if row.get('replication') and row.get('backend_type') != 'client backend':
            skip(row, 'replication')
            continue
        if row.get('superuser') and not allow_superuser:
            skip(row, 'superuser session')
            continue
        if roles and row.get('usename') not in roles:
            skip(row, 'role %s not in %s' % (row.get('usename'), ', '.join(roles)))
            continue
        if databases and row.get('datname') not in databases:
            skip(row, 'database %s not selected' % row.get('datname'))
            continue
        if pids and row.get('pid') not in chain:
            skip(row, 'waits for a lock held by %s (proceeds once it is released)' % row['blocked_by']
                 if row.get('pid') in tree else 'pid not in the approved list')
            continue
        if application_names and not _match_any(row.get('application_name'), application_names):
            skip(row, 'application_name not selected')
            continue
        if exclude_application_names and _match_any(row.get('application_name'), exclude_application_names):
            skip(row, 'application_name excluded')
            continue
        blocker = bool(row.get('blocking'))
        in_state = row.get('state') in states or (include_blockers and blocker and row.get('state') != 'idle')
        if not in_state:
            skip(row, 'state %s not selected' % row.get('state'))
            continue
        if row['age'] < float(min_age or 0):
            skip(row, 'younger than %ss' % min_age)
            continue
        if row.get('blocked_by') and row.get('wait_event_type') == 'Lock' and not blocker and not include_waiting:
            skip(row, 'waits for a lock held by %s (proceeds once it is released)' % row['blocked_by'])
            continue
        targets.append(row)
    return targets, skipped


def public(row):
    """A session as reported: query preview redacted, no internal keys."""
    query = redact(str(row.get('query') or ''), patterns=SQL_SECRET_PATTERNS)
    if len(query) > QUERY_PREVIEW:
        query = query[:QUERY_PREVIEW - 3] + '...'
    out = dict((k, row.get(k)) for k in ('pid', 'usename', 'datname', 'application_name', 'client_addr', 'state',
                                         'age', 'wait_event_type', 'wait_event', 'blocking', 'blocked_by',
                                         'backend_start'))
    out['query'] = ' '.join(query.split())
    if 'reason' in row:
        out['reason'] = row['reason']
    return out


def no_target_lines(skipped, limit=5):
    """The plan when no session matches: nothing to do, and which sessions that look like the cause were left out
    and why (a blocker outside the filters, a session younger than min_age), so that an approver sees before
    apply that the plan will not change anything."""
    notable = [r for r in skipped if r.get('blocking') or (
        str(r.get('reason') or '').startswith('younger than')
        and not (r.get('blocked_by') and r.get('wait_event_type') == 'Lock'))]  # a waiter goes on once released
    if not notable:
        return []
    notable.sort(key=lambda r: (-len(r.get('blocking') or []), -(r.get('age') or 0)))
    lines = ['nothing to do: no session matches the filters; left out:']
    lines.extend('  %s -- %s' % (plan_line(r), r.get('reason')) for r in notable[:limit])
    if len(notable) > limit:
        lines.append('  ... and %d more' % (len(notable) - limit))
    return lines


def tree_lines(rows, targets, limit=20):
    """The blocking trees the targets belong to, roots first, for the plan: `*` marks a session the plan ends,
    a session that only waits proceeds once its blockers are gone."""
    by_pid = dict((r.get('pid'), r) for r in rows)
    ends = set(r.get('pid') for r in targets)
    tree = lock_tree(rows, [p for p in ends if by_pid.get(p, {}).get('blocking') or by_pid.get(p, {}).get('blocked_by')])
    if not tree:
        return []
    roots = sorted(p for p in tree if not [b for b in by_pid[p].get('blocked_by') or [] if b in tree])
    if not roots:  # a deadlock cycle: start anywhere
        roots = [min(tree)]
    lines, shown = ['lock tree (* = ended by this plan; the others proceed once their blockers are gone):'], set()

    def walk(pid, depth):
        if pid in shown or len(lines) > limit:
            return
        shown.add(pid)
        row = by_pid[pid]
        mark = '*' if pid in ends else '-'
        reason = str(row.get('reason') or '')
        if pid in ends:
            what = 'ended'
        elif not reason or reason.startswith('waits for a lock'):
            what = 'waits'
        else:
            what = 'left out: %s' % reason
        lines.append('%s%s pid %s user=%s app=%s state=%s age=%ss (%s) query=%s' % (
            '  ' * (depth + 1), mark, pid, row.get('usename'), row.get('application_name') or '-', row.get('state'),
            int(row.get('age') or 0), what, ' '.join(str(row.get('query') or '').split())[:80]))
        for child in sorted(row.get('blocking') or []):
            if child in tree:
                walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    if len(tree) > len(shown):
        lines.append('  ... and %d more session(s) in the tree' % (len(tree) - len(shown)))
    return lines


def plan_line(row):
    return ('pid %s user=%s db=%s app=%s state=%s age=%ss%s%s query=%s' % (
        row.get('pid'), row.get('usename'), row.get('datname'), row.get('application_name') or '-',
        row.get('state'), int(row.get('age') or 0),
        (' blocking=%s' % row['blocking']) if row.get('blocking') else '',
        (' blocked_by=%s' % row['blocked_by']) if row.get('blocked_by') else '',
        row.get('query')))
