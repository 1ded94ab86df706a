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
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import os
import re
import stat

FORBIDDEN_ROOTS = ('/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib64', '/proc', '/root', '/run',
                   '/sbin', '/sys', '/usr', '/var', '/var/lib', '/var/lib/docker', '/var/lib/docker/volumes')
DEFAULT_ROTATED = ['*.log.[0-9]*', '*.log.gz', '*.log.*.gz', '*.[0-9].gz', '*.old']
DEFAULT_TEMP = ['*.tmp', 'tmp*', '*.temp', '*.swp', 'core.[0-9]*']
DEFAULT_ACTIVE = ['*.log']


def root_error(path):
    """Why a configured path may not be cleaned, or None."""
    if not path or not os.path.isabs(path):
        return '%r is not an absolute path' % (path,)
    real = os.path.realpath(path)
    if real.rstrip('/') in [r.rstrip('/') for r in FORBIDDEN_ROOTS] or real == '/':
        return '%s is a system directory; configure the service\'s own log/temp directory' % path
    if not os.path.isdir(real):
        return '%s is not a directory' % path
    return None


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
                            'deleted': True}
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


def usage(path):
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    used = total - st.f_bfree * st.f_frsize
    return {'path': path, 'total': total, 'used': used, 'free': free,
            'used_percent': round(100.0 * used / total, 1) if total else 0.0}
