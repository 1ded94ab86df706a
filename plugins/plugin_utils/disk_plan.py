# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""clean_disk's decisions on the controller (pure, unit-tested in tests/unit/test_disk_plan.py): which paths the
inventory lets it clean, whether what the plan would free gets each file system below the limit, and whether the
apply did what the plan said and nothing else. The engine's handler (plugins/action/remediation_run.py, CleanDisk)
runs the module disk_cleanup on the host; the module checks the scope again there, after resolving symlinks.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.sre.incident_response.plugins.module_utils.remediation import human_bytes

_DOT_SEGMENT = re.compile(r'(^|/)[.][.]?(/|$)')


def requested_paths(value):
    """disk_cleanup_paths as a list: -e disk_cleanup_paths=/a,/b (key=value) is a string, one path or several."""
    if value in (None, ''):
        return []
    items = value.split(',') if isinstance(value, str) else list(value)
    return [str(x).strip() for x in items if str(x).strip()]


def scope_refusals(paths, allowed):
    """The paths that are neither one of `allowed` nor inside one, or that have a "." or ".." segment (by name:
    the module checks again on the host after resolving symlinks)."""
    roots = [a.rstrip('/') for a in allowed if a.rstrip('/')]
    refused = []
    for path in paths:
        inside = any(path == r or path.startswith(r + '/') for r in roots)
        if (not inside or _DOT_SEGMENT.search(path)) and path not in refused:
            refused.append(path)
    return refused


def preflight_error(host, service, declared, requested, older_than_days):
    """'' when the cleanup may go on, else the refusal (nothing was listed or changed)."""
    allowed = [str(x) for x in declared or []]
    paths = requested or allowed
    bad_allowed = [a for a in allowed if not a.startswith('/') or not a.rstrip('/')]
    refused = scope_refusals(paths, allowed) if allowed and not bad_allowed else []
    try:
        age_ok = float(older_than_days) >= 0
    except (TypeError, ValueError):
        age_ok = False
    if allowed and not bad_allowed and not refused and age_ok:
        return ''
    text = 'disk_cleanup on %s: nothing was changed.' % host
    if not allowed:
        text += (' The service %s declares no disk_paths here, so nothing may be cleaned: declare its log/temp '
                 'directories in incident_services[].disk_paths.' % service)
    elif bad_allowed:
        text += (' The service %s declares disk_paths that are not absolute directories: %s.'
                 % (service, ', '.join(bad_allowed)))
    elif refused:
        text += (' Refused: %s: only the directories declared for the service %s (its disk_paths in '
                 'incident_services) or directories inside them may be cleaned, as absolute paths without "." or '
                 '"..". Allowed: %s.' % (', '.join(refused), service, ', '.join(allowed)))
    if not age_ok:
        text += ' disk_cleanup_older_than_days must be >= 0 (got %s).' % (older_than_days,)
    return text


def _inside(path, root):
    root = root.rstrip('/') or '/'
    return path == root or path.startswith(root.rstrip('/') + '/')


def file_systems(disk):
    """The module's usage per path grouped by file system: paths whose usage was read with the same total, used
    and free bytes share one (a difference in the bytes only splits them, which counts less as freed)."""
    groups = []
    for d in disk or []:
        key = (d.get('total'), d.get('used'), d.get('free'))
        for g in groups:
            if g['key'] == key:
                g['paths'].append(d['path'])
                break
        else:
            groups.append({'key': key, 'paths': [d['path']], 'total': int(d.get('total') or 0),
                           'used': int(d.get('used') or 0), 'used_percent': float(d.get('used_percent') or 0.0)})
    return groups


def _group_of(item, groups):
    path = item.get('path') or ''
    best, length = None, -1
    for i, g in enumerate(groups):
        for root in g['paths']:
            if _inside(path, root) and len(root) > length:
                best, length = i, len(root)
    if best is None and item.get('deleted') and len(groups) == 1:
        best = 0  # a deleted file held open in a container (its path is the container's): the one file system
    return best


def file_key(item):
    """What identifies a planned file: its path, and for a deleted file still open, the descriptor too."""
    return (item.get('path'), item.get('fd_path') or '')


def sufficiency(plan, limit):
    """(enough, lines, per file system) of a disk_cleanup plan: each file system already below `limit` (percent of
    its size in use, as the module reports it), or what the plan frees there gets it below."""
    groups = file_systems(plan.get('disk_before'))
    freed = [0] * len(groups)
    seen = set()
    for item in plan.get('files') or []:
        if file_key(item) in seen:
            continue
        seen.add(file_key(item))
        i = _group_of(item, groups)
        if i is not None:
            freed[i] += int(item.get('size') or 0)
    enough, lines, out = True, [], []
    for g, free in zip(groups, freed):
        after = 100.0 * max(0, g['used'] - free) / g['total'] if g['total'] else 0.0
        ok = g['used_percent'] < limit or after < limit
        enough = enough and ok
        need = max(0, g['used'] - int(g['total'] * limit / 100.0) + 1) if g['total'] else 0
        where = ', '.join(g['paths'])
        if g['used_percent'] < limit:
            text = 'disk %s: %.1f %% used, below %g %%' % (where, g['used_percent'], limit)
        elif ok:
            text = 'disk %s: %.1f %% used, %.1f %% after the plan (frees %s; limit %g %%)' % (
                where, g['used_percent'], after, human_bytes(free), limit)
        else:
            text = 'disk %s: %.1f %% used, CANNOT get below %g %%: the plan frees %s of the %s needed (%.1f %% after)' % (
                where, g['used_percent'], limit, human_bytes(free), human_bytes(need), after)
        lines.append(text)
        out.append({'paths': g['paths'], 'used_percent': g['used_percent'], 'after_percent': round(after, 1),
                    'freed': free, 'needed': need if not g['used_percent'] < limit else 0, 'enough': ok})
    return enough, lines, out


def _applied_name(item):
    """How the module names a file it acted on in `deleted`/`truncated`."""
    if item.get('deleted') and item.get('fd_path'):
        return '%s (deleted, %s)' % (item['path'], item['fd_path'])
    return item.get('path')


def judge_cleanup(planned, applied, replanned):
    """(still, beyond): the planned files a re-plan after the apply still lists as big as planned (not freed), and
    what the apply deleted or truncated that the plan did not list (touched beyond what was approved)."""
    names = set(_applied_name(f) for f in planned)
    beyond = sorted(set(list(applied.get('deleted') or []) + list(applied.get('truncated') or [])) - names)
    now = dict((file_key(f), int(f.get('size') or 0)) for f in replanned or [])
    still = []
    for f in planned:
        key = file_key(f)
        if key in now and (f.get('action') == 'delete' or now[key] >= int(f.get('size') or 0)):
            still.append(f.get('path'))
    return sorted(set(still)), beyond
