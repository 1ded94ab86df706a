# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The safety model shared by every remediation: plan, approve, apply, verify.

Pure Python (standard library only) so that the action plugin ``remediation_gate``,
the remediation modules and the unit tests use the same rules:

- ``decide()``: plan or apply, and why an apply is refused (no approver, no reason,
  four-eyes for destructive classes, a launcher that is not established, the per-incident action budget).
- ``ledger()`` / ``count_actions()`` / ``find_action()``: the incident's changing attempts (intents and their
  settles), the budget they use, the attempt an approval already made.
- ``approval_token()``: the identity of one approval (single-use for actions that are
  not naturally idempotent, such as a restart).
- ``redis_glob_to_regex()`` / ``pattern_errors()``: Redis glob semantics for redis_evict.
- ``version_key()`` / ``pick_previous_tag()``: choosing the image to roll back to.
- ``hostname_matches()``: does a certificate name cover a host name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import re

# action -> (role, class). Destructive classes need four eyes.
ACTIONS = {
    'rollback': {'role': 'rollback', 'class': 'redeploy'},
    'restart': {'role': 'restart', 'class': 'restart'},
    'kill_query': {'role': 'pg_terminate', 'class': 'terminate'},
    'flush_keys': {'role': 'redis_evict', 'class': 'evict'},
    'apply_cert': {'role': 'tls_cert', 'class': 'replace'},
    'clean_disk': {'role': 'disk_cleanup', 'class': 'delete'},
    'raise_maxmemory': {'role': 'redis_maxmemory', 'class': 'resize'},
    'kill_clients': {'role': 'redis_kill_clients', 'class': 'terminate'},
}
DESTRUCTIVE_CLASSES = ('terminate', 'evict', 'delete')
DEFAULT_BUDGET = {'rollback': 2, 'restart': 3, 'kill_query': 5, 'flush_keys': 3, 'apply_cert': 2, 'clean_disk': 5,
                  'raise_maxmemory': 2, 'kill_clients': 5}


def is_destructive(action):
    info = ACTIONS.get(action)
    return bool(info) and info['class'] in DESTRUCTIVE_CLASSES


def same_person(a, b):
    """Approver and launcher are compared case-insensitively, ignoring a domain or e-mail suffix."""
    def norm(x):
        x = str(x or '').strip().lower()
        for sep in ('@', '\\'):
            if sep == '@' and sep in x:
                x = x.split('@', 1)[0]
            elif sep == '\\' and sep in x:
                x = x.split('\\', 1)[1]
        return x
    return bool(norm(a)) and norm(a) == norm(b)


# --- the action ledger: intents, settles, the budget -------------------------------------------------------------
#
# An apply writes an `action` event with data.status `started` (the intent) under the incident's remediation lock
# before it changes anything, and a second `action` event with the same data.intent_id and status `done` or
# `failed` (the settle) after. Older timelines hold only settle-like events (no status, no intent_id).

STARTED = 'started'


def ledger(events):
    """One entry per changing attempt: {'event', 'action', 'service', 'host', 'approval_id', 'intent_id', 'state',
    'changed', 'owner', 'ts'}; state is 'open' (an intent without a settle: still running, or killed), 'done' or
    'failed'. A settled intent is represented by its (last) settle event."""
    actions = [e for e in (events or []) if e.get('kind') == 'action']
    last_settle = {}
    for index, event in enumerate(actions):
        data = event.get('data') or {}
        if data.get('intent_id') and data.get('status') != STARTED:
            last_settle[data['intent_id']] = index
    out = []
    for index, event in enumerate(actions):
        data = event.get('data') or {}
        intent_id = data.get('intent_id')
        if data.get('status') == STARTED:
            if intent_id in last_settle:
                continue
            state = 'open'
        elif intent_id and last_settle.get(intent_id) != index:
            continue  # settled twice: the last settle speaks
        else:
            state = 'failed' if data.get('status') == 'failed' else 'done'
        out.append({'event': event, 'action': data.get('action'), 'service': data.get('service'),
                    'host': event.get('host'), 'approval_id': data.get('approval_id'), 'intent_id': intent_id,
                    'state': state, 'changed': data.get('changed'), 'owner': data.get('owner') or {},
                    'ts': event.get('ts')})
    return out


def counts(entry):
    """Does an attempt use budget: a change, a failure (it may have changed part of the target) or an intent that
    was never settled (the run is still acting, or was killed - possibly after the change)."""
    return entry['state'] in ('open', 'failed') or bool(entry['changed'])


def count_actions(events, action, service=None):
    """The budget already used by this action (and service) in a timeline."""
    return sum(1 for e in ledger(events) if e['action'] == action and counts(e)
               and not (service and e['service'] not in (None, service)))


def find_action(events, approval_id, host=None):
    """The last attempt under an approval id (on this host) that changed something or was interrupted, or None.

    A `failed` settle is not one: the module said the change did not complete, a retry under the same approval
    may run (and it still counts against the budget)."""
    found = None
    for entry in ledger(events):
        if entry['approval_id'] != approval_id or (host and entry['host'] and entry['host'] != host):
            continue
        if entry['state'] == 'open' or (entry['state'] == 'done' and entry['changed']):
            found = entry
    return found


def approval_token(incident_id, action, service, approved_by, reason, change_ref):
    raw = '\x1f'.join(str(x or '') for x in (incident_id, action, service, approved_by, reason, change_ref))
    return hashlib.sha256(raw.encode('utf-8')).hexdigest()[:16]


def decide(action, service=None, apply=False, check_mode=False, approved_by='', reason='', change_ref='',
           launcher='', allow_self_approval=False, budget=None, used=0, incident_id=None, identities=None,
           identity_problems=None):
    """The gate: returns a dict with mode ('plan' or 'apply'), refused (bool) and msg.

    identities: every account of the run (the launcher, the OS accounts it runs as or was started from); the
    approver of a destructive class must be none of them. identity_problems: why the launcher is not established;
    a destructive class is then refused (four eyes cannot be checked). Refusals happen before anything changes;
    the caller records them as `approval` events.
    """
    if action not in ACTIONS:
        raise ValueError('unknown action %r: one of %s' % (action, ', '.join(sorted(ACTIONS))))
    destructive = is_destructive(action)
    out = {
        'action': action, 'service': service, 'class': ACTIONS[action]['class'], 'destructive': destructive,
        'apply_requested': bool(apply), 'check_mode': bool(check_mode), 'approved_by': approved_by or '',
        'reason': reason or '', 'change_ref': change_ref or '', 'launcher': launcher or '',
        'four_eyes': destructive and not allow_self_approval,
        'identities': list(identities or []), 'identity_problems': list(identity_problems or []),
        'budget': {'limit': budget, 'used': int(used or 0)},
        'approval_id': approval_token(incident_id, action, service, approved_by, reason, change_ref),
        'mode': 'plan', 'apply': False, 'refused': False, 'decision': 'plan', 'msg': '',
    }
    if check_mode:
        out['msg'] = 'check mode: plan only, nothing is changed'
        return out
    if not apply:
        out['msg'] = ('plan only: nothing was changed. To apply, re-run with -e apply=true -e approved_by=<approver> '
                      '-e approval_reason="<why>" (or -e change_ref=<ticket>)')
        return out
    problems = []
    if not (approved_by or '').strip():
        problems.append('approved_by is missing (who approved this change)')
    if not (reason or '').strip() and not (change_ref or '').strip():
        problems.append('approval_reason or change_ref is missing (why, or the change ticket)')
    if not problems and out['four_eyes']:
        accounts = [launcher] + [i for i in (identities or []) if i and not same_person(i, launcher)]
        match = [i for i in accounts if same_person(approved_by, i)]
        if match:
            problems.append('four-eyes rule: %s is a destructive action (%s) and the approver %r is the launcher%s; '
                            'another person must approve (or set remediation_allow_self_approval by policy)'
                            % (action, out['class'], approved_by,
                               '' if same_person(match[0], launcher) else ' (%s runs or started this run)' % match[0]))
        if identity_problems:
            problems.append('the launcher cannot be established, so four eyes cannot be checked for %s (%s): %s'
                            % (action, out['class'], '; '.join(identity_problems)))
    if not problems and budget is not None and int(budget) >= 0 and int(used or 0) >= int(budget):
        problems.append('action budget exhausted: %d of %d %s actions already applied in incident %s; '
                        'raise remediation_budget deliberately if more are needed'
                        % (int(used), int(budget), action, incident_id))
    if problems:
        out.update(refused=True, decision='refused',
                   msg='REFUSED: %s on %s was not applied, nothing changed: %s.' % (action, service or '-', '; '.join(problems)))
        return out
    out.update(mode='apply', apply=True, decision='granted',
               msg='approved by %s (%s), launched by %s' % (approved_by, reason or change_ref, launcher))
    return out


# --- Redis glob patterns -----------------------------------------------------------------

def redis_glob_to_regex(pattern):
    """Translate a Redis glob (*, ?, [...], [^...], backslash escapes) to an anchored regex."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == '\\' and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == '*':
            out.append('.*')
        elif c == '?':
            out.append('.')
        elif c == '[':
            j = pattern.find(']', i + 1)
            if j == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:j]
                neg = body.startswith('^')
                if neg:
                    body = body[1:]
                body = body.replace('\\', '\\\\')
                out.append('[%s%s]' % ('^' if neg else '', body))
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile('^' + ''.join(out) + '$', re.DOTALL)


def literal_prefix(pattern):
    """The characters before the first glob metacharacter."""
    m = re.match(r'^([^*?\[\\]*)', pattern)
    return m.group(1) if m else ''


def pattern_errors(evictable, protected):
    """Refuse allow-list patterns that are too broad or that could reach a protected pattern."""
    errors = []
    if not evictable:
        errors.append('no evictable patterns given')
    for pat in evictable or []:
        if not pat or not literal_prefix(pat):
            errors.append('pattern %r has no literal prefix (e.g. "cache:*"); refusing to scan-and-delete everything' % pat)
            continue
        regex = redis_glob_to_regex(pat)
        for prot in protected or []:
            # a protected pattern with its wildcards filled in: if the evictable pattern matches it, they overlap
            sample = re.sub(r'\[[^\]]*\]', 'x', prot).replace('*', 'x').replace('?', 'x').replace('\\', '')
            if regex.match(sample) or redis_glob_to_regex(prot).match(literal_prefix(pat)):
                errors.append('pattern %r overlaps the protected pattern %r' % (pat, prot))
    return errors


# --- Image versions ------------------------------------------------------------------------

def version_key(tag):
    """Sort key for image tags: numeric dotted versions compare numerically; others sort before them."""
    text = str(tag or '').lstrip('vV')
    parts = re.split(r'[.\-+_]', text)
    key = []
    for p in parts:
        if p.isdigit():
            key.append((1, int(p), ''))
        else:
            key.append((0, 0, p))
    return (1 if re.match(r'^\d', text) else 0, key)


def pick_previous_tag(current_tag, images):
    """The image to roll back to among local images of the same repository.

    images: [{'tag': str, 'id': str, 'created': str (ISO)}]. Versioned tags: the highest
    version below the current one. Otherwise: the newest image created before the current.
    Returns (tag or None, reason).
    """
    current = [i for i in images if i.get('tag') == current_tag]
    others = [i for i in images if i.get('tag') != current_tag and i.get('tag') not in ('latest', '<none>')]
    if current:
        others = [i for i in others if i.get('id') != current[0].get('id')]
    if not others:
        return None, 'no other local tag of the repository'
    if version_key(current_tag)[0] == 1:
        lower = [i for i in others if version_key(i['tag'])[0] == 1 and version_key(i['tag']) < version_key(current_tag)]
        if lower:
            best = max(lower, key=lambda i: version_key(i['tag']))
            return best['tag'], 'highest local version below %s' % current_tag
    if current and current[0].get('created'):
        older = [i for i in others if i.get('created') and i['created'] < current[0]['created']]
        if older:
            best = max(older, key=lambda i: i['created'])
            return best['tag'], 'newest local image created before %s' % current_tag
    return None, 'no local tag older than %s' % current_tag


def split_image(ref):
    """'repo/name:tag' -> ('repo/name', 'tag'); a digest reference keeps tag None."""
    if '@' in ref:
        return ref.split('@', 1)[0], None
    last = ref.rsplit('/', 1)[-1]
    if ':' in last:
        repo, tag = ref.rsplit(':', 1)
        return repo, tag
    return ref, 'latest'


# --- TLS -------------------------------------------------------------------------------------

def hostname_matches(hostname, names):
    """RFC 6125 matching of a DNS name against certificate names (one left-most wildcard label)."""
    host = str(hostname or '').lower().rstrip('.')
    for name in names or []:
        name = str(name).lower().rstrip('.')
        if name == host:
            return True
        if name.startswith('*.'):
            suffix = name[1:]
            if host.endswith(suffix) and '.' not in host[:-len(suffix)] and host[:-len(suffix)]:
                return True
    return False


def flush_sufficiency(used, maxmemory, planned, max_used_percent=90.0):
    """Can removing `planned` bytes bring `used` below max_used_percent of maxmemory? Said up front."""
    if not maxmemory:
        return {'enough': True, 'needed_bytes': 0,
                'sufficiency': 'maxmemory is not set: plans %s' % human_bytes(planned)}
    limit = int(maxmemory) * float(max_used_percent) / 100.0
    needed = max(0, int(used - limit) + 1) if used >= limit else 0
    enough = planned >= needed
    if enough:
        text = 'enough: plans %s, %s needed to get below %d %% of maxmemory %s' % (
            human_bytes(planned), human_bytes(needed), round(max_used_percent), human_bytes(maxmemory))
    else:
        text = ('CANNOT free enough: plans %s of the %s needed to get below %d %% of maxmemory %s; the rest is held by '
                'keys no evictable pattern marks (never deleted here): see the top prefixes of redis.memory and '
                'consider -e remediation_action=raise_maxmemory' % (
                    human_bytes(planned), human_bytes(needed), round(max_used_percent), human_bytes(maxmemory)))
    return {'enough': enough, 'needed_bytes': needed, 'sufficiency': text}


def maxmemory_plan(used, maxmemory, available, target_used_percent=75.0, max_free_fraction=0.5):
    """The maxmemory at which `used` is `target_used_percent` of it (MiB-rounded), and whether the host has room.

    Never lowers maxmemory; the increase must fit in max_free_fraction of the host's available memory
    (unknown available memory does not fit: the plan cannot promise the host survives it).
    """
    mib = 1024 * 1024
    new = int(-(-int(used) * 100 // int(max(1, target_used_percent * 100)) * 100 // mib) * mib)
    new = max(new, int(maxmemory or 0))
    increase = new - int(maxmemory or 0)
    needed = increase > 0 and int(maxmemory or 0) > 0
    if not maxmemory:
        line = 'maxmemory is not set (no limit): nothing to raise'
        return {'new': int(maxmemory or 0), 'needed': False, 'fits': True, 'increase': 0, 'line': line}
    room = None if available is None else int(available * max_free_fraction)
    fits = not needed or (room is not None and increase <= room)
    line = '%s maxmemory %s -> %s (used %s = %d %% of the new limit); host memory available %s, %s' % (
        'raise' if needed else 'keep', human_bytes(maxmemory), human_bytes(new), human_bytes(used),
        round(100.0 * used / new) if new else 0, human_bytes(available) if available is not None else 'unknown',
        ('the increase of %s fits within %d %% of it' % (human_bytes(increase), round(max_free_fraction * 100))) if fits
        else ('the increase of %s does NOT fit within %d %% of it' % (human_bytes(increase), round(max_free_fraction * 100))))
    return {'new': new, 'needed': needed, 'fits': fits, 'increase': increase, 'line': line}


def human_bytes(num):
    num = float(num or 0)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(num) < 1024 or unit == 'TiB':
            return ('%d %s' % (num, unit)) if unit == 'B' else ('%.1f %s' % (num, unit))
        num /= 1024.0
    return '%.1f TiB' % num
