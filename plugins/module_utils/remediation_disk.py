# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What disk_cleanup may delete or truncate (pure apart from the walk, unit-tested).

Only regular files under the configured roots, never through a symlink, never across a
mount point; rotated logs and temp files older than N days are deleted, unless a process
holds them open (then they are truncated, or deleting would free nothing); active log files
that a process holds open are truncated when they exceed a size, never deleted.

Files deleted while a process still holds them open (what ``lsof +L1`` lists) keep their space
until the last descriptor closes, and no directory walk finds them: ``deleted_open()`` finds
them through ``/proc/*/fd`` (host processes and containers' processes alike, on the file systems
of the roots); a log or temp file by name is truncated through ``/proc/PID/fd/N``, anything
else is reported with a recommendation to restart its holder, never truncated.

What may be cleaned at all is what the inventory declares (``scope_errors``): every path asked
for must resolve (symlinks and ``..`` resolved on the host) to one of the service's declared
directories or inside one, and no declared directory may be a system or shared directory.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import os
import re
import stat

# Never cleaned as a whole, whatever an inventory declares: system directories and directories shared by every
# service on a host (a service's own directory below them is fine: /var/log/app, /var/lib/docker/volumes/x/_data).
FORBIDDEN_ROOTS = ('/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/libx32', '/media', '/mnt',
                   '/opt', '/proc', '/root', '/run', '/sbin', '/srv', '/sys', '/tmp', '/usr', '/usr/local', '/var',
                   '/var/cache', '/var/lib', '/var/lib/docker', '/var/lib/docker/volumes', '/var/log', '/var/spool',
                   '/var/tmp', '/dev/shm', '/run/user')
DEFAULT_ROTATED = ['*.log.[0-9]*', '*.log.gz', '*.log.*.gz', '*.[0-9].gz', '*.old']
DEFAULT_TEMP = ['*.tmp', 'tmp*', '*.temp', '*.swp', 'core.[0-9]*']
DEFAULT_ACTIVE = ['*.log']


def root_error(path):
    """Why a configured path may not be cleaned, or None."""
    if not path or not os.path.isabs(path):
        return '%r is not an absolute path' % (path,)
    real = os.path.realpath(path)
    if real.rstrip('/') in [r.rstrip('/') for r in FORBIDDEN_ROOTS] or real == '/':
        shown = path if real == (path.rstrip('/') or '/') else '%s (resolves to %s)' % (path, real)
        return '%s is a system or shared directory; configure the service\'s own log/temp directory' % shown
    if not os.path.isdir(real):
        return '%s is not a directory' % path
    return None


def _inside(real, root):
    return real == root or real.startswith(root.rstrip('/') + '/')


def scope_errors(paths, allowed):
    """Why `paths` may not be cleaned given the directories the inventory declares (`allowed`); [] when all may.

    Both sides are resolved on the host first (os.path.realpath: symlinks, `.` and `..`), so a link or a `..`
    inside a declared directory cannot lead out of it. A declared directory that is itself refused by root_error
    (a system or shared directory, missing) allows nothing.
    """
    errors = []
    usable = []
    for root in allowed or []:
        if not root_error(root):
            usable.append(os.path.realpath(root))
    if not usable:
        return ['no usable directory is declared for cleaning (declared: %s)'
                % (', '.join(str(a) for a in allowed or []) or 'none')]
    for path in paths or []:
        problem = root_error(path)
        if problem:
            errors.append(problem)
            continue
        real = os.path.realpath(path)
        if not any(_inside(real, root) for root in usable):
            shown = path if real == (path.rstrip('/') or '/') else '%s (resolves to %s)' % (path, real)
            errors.append('%s is outside the declared directories' % shown)
    return errors


def mount_namespace(pid='self', proc='/proc'):
    try:
        return os.readlink(os.path.join(proc, str(pid), 'ns', 'mnt'))
    except OSError:
        return None


def attributable(item, roots, proc='/proc'):
    """Whether a deleted-open file (from deleted_open) belongs to the directories being cleaned.

    True when a root is the top of the file system it is on (a volume, a tmpfs: every file there is the
    service's), or when the holder sees the host's mounts and the file's former path is inside a root. A file
    elsewhere on a shared file system (a root inside /, say) belongs to someone else: it is not touched.
    """
    for root in roots:
        try:
            if os.lstat(root).st_dev == item['dev'] and os.path.ismount(root):
                return True
        except (OSError, KeyError):
            continue
    if mount_namespace(item['pid'], proc) != mount_namespace('self', proc):
        return False
    return any(_inside(os.path.normpath(item['path']), root) for root in roots)


def classify(name, rotated, temp, active):
    """'rotated', 'temp', 'active' or None for a file name."""
    for kind, pats in (('rotated', rotated), ('temp', temp), ('active', active)):
        if any(fnmatch.fnmatchcase(name, p) for p in pats):
            return kind
    return None


def open_files(proc='/proc'):
    """{(st_dev, st_ino): [pid, ...]} of every file a process holds open (readable /proc only)."""
    held = {}
    try:
        pids = [d for d in os.listdir(proc) if d.isdigit()]
    except OSError:
        return held
    for pid in pids:
        fd_dir = os.path.join(proc, pid, 'fd')
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                held.setdefault((st.st_dev, st.st_ino), []).append(int(pid))
    return held


def _container_of(pid, proc='/proc'):
    """The container id (12 characters) a process runs in, from its cgroup, or None on the host."""
    try:
        with open(os.path.join(proc, str(pid), 'cgroup')) as handle:
            text = handle.read()
    except OSError:
        return None
    match = re.search(r'(?:docker-|/docker/|containerd-|/libpod-|libpod-)([0-9a-f]{64})', text)
    return match.group(1)[:12] if match else None


def _comm(pid, proc='/proc'):
    try:
        with open(os.path.join(proc, str(pid), 'comm')) as handle:
            return handle.read().strip()
    except OSError:
        return '?'


def deleted_open(devices, rotated, temp, active, proc='/proc'):
    """Unlinked regular files still held open, on the given st_dev values (one entry per file).

    [{pid, fd, fd_path, process, container, path, size, kind, action, held_by}] where action is
    'truncate' (a log or temp file by name) or 'restart_holder' (truncating it could corrupt it).
    """
    found = {}
    try:
        pids = sorted((d for d in os.listdir(proc) if d.isdigit()), key=int)
    except OSError:
        return []
    for pid in pids:
        fd_dir = os.path.join(proc, pid, 'fd')
        try:
            fds = sorted(os.listdir(fd_dir), key=lambda x: int(x) if x.isdigit() else -1)
        except OSError:
            continue
        for fd in fds:
            fd_path = os.path.join(fd_dir, fd)
            try:
                target = os.readlink(fd_path)
            except OSError:
                continue
            if not target.endswith(' (deleted)') or not target.startswith('/'):
                continue
            try:
                st = os.stat(fd_path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 0 or st.st_dev not in devices:
                continue
            ident = (st.st_dev, st.st_ino)
            if ident in found:
                if int(pid) not in found[ident]['held_by']:
                    found[ident]['held_by'].append(int(pid))
                continue
            path = target[:-len(' (deleted)')]
            kind = classify(os.path.basename(path), rotated, temp, active)
            found[ident] = {'pid': int(pid), 'fd': int(fd), 'fd_path': fd_path, 'process': _comm(pid, proc),
                            'container': _container_of(pid, proc), 'path': path, 'size': st.st_size,
                            'allocated': getattr(st, 'st_blocks', 0) * 512, 'kind': kind or 'other',
                            'action': 'truncate' if kind else 'restart_holder', 'held_by': [int(pid)],
                            'deleted': True, 'dev': st.st_dev}
    return [f for f in found.values() if f['size'] > 0 or f['allocated'] > 0]


def walk(root, rotated, temp, active, older_than_seconds, truncate_over, now, held):
    """Candidate actions under one root: [{path, size, mtime, age_days, kind, held_by, action}]."""
    out = []
    root_dev = os.lstat(root).st_dev
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        keep = []
        for d in dirnames:
            full = os.path.join(dirpath, d)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) and not stat.S_ISLNK(st.st_mode) and st.st_dev == root_dev:
                keep.append(d)
        dirnames[:] = keep
        for name in filenames:
            full = os.path.join(dirpath, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_dev != root_dev:
                continue
            kind = classify(name, rotated, temp, active)
            if kind is None:
                continue
            held_by = sorted(held.get((st.st_dev, st.st_ino), []))
            age = now - st.st_mtime
            item = {'path': full, 'size': st.st_size, 'mtime': st.st_mtime, 'age_days': round(age / 86400.0, 3),
                    'kind': kind, 'held_by': held_by, 'action': None}
            if kind in ('rotated', 'temp'):
                if age < older_than_seconds:
                    continue
                item['action'] = 'truncate' if held_by else 'delete'
                if held_by and st.st_size == 0:
                    continue
            else:
                if not held_by or st.st_size <= truncate_over:
                    continue
                item['action'] = 'truncate'
            out.append(item)
    return out


def planned_key(item):
    """How a plan names one thing to free: the descriptor of a deleted file held open, else the file's path."""
    return item.get('fd_path') or item.get('path')


def pin(files, fixable, planned):
    """Keep only what the plan listed (``planned``: the plan's keys, see ``planned_key``).

    -> (files, fixable, not_planned): an apply acts on what was approved, never on what a fresh scan finds on top
    (a rotated log that became old enough between the plan and the apply is left, and named).
    ``planned`` None means no pin (the module's own plan run)."""
    if planned is None:
        return files, fixable, []
    wanted = set(planned)
    keep_files = [f for f in files if planned_key(f) in wanted]
    keep_fixable = [d for d in fixable if planned_key(d) in wanted]
    not_planned = sorted(planned_key(x) for x in list(files) + list(fixable) if planned_key(x) not in wanted)
    return keep_files, keep_fixable, not_planned


def usage(path):
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    used = total - st.f_bfree * st.f_frsize
    return {'path': path, 'total': total, 'used': used, 'free': free,
            'used_percent': round(100.0 * used / total, 1) if total else 0.0}
