# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The incident directory contracts, shared by modules, action plugins and the callback.

Layout of one incident (see docs/reference/contracts.md):

    <incident_dir>/<incident_id>/
        incident.json       the incident context (id, title, severity, commander, start)
        timeline.jsonl      one event a line, append-only, flushed and fsynced
        findings.json       the latest finding per (host, check)
        diagnosis.json      ranked hypotheses
        messages/           rendered communications
        evidence/<host>/    raw outputs behind findings

Pure Python (standard library only) so that the callback, action plugins and
unit tests use the very same code.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import hashlib
import json
import os
import re
import tempfile

# Finding statuses, their order and the form of a check name are the findings contract.
from ansible_collections.sre.incident_response.plugins.module_utils.findings import CHECK_RE, STATUSES, worst_first
# Machine-readable times: one home (module_utils/timefmt.py, which probes on hosts use too).
from ansible_collections.sre.incident_response.plugins.module_utils.timefmt import isoformat, parse_ts, utcnow  # noqa: F401 pylint: disable=unused-import

TIMELINE = 'timeline.jsonl'
FINDINGS = 'findings.json'
DIAGNOSIS = 'diagnosis.json'
INCIDENT = 'incident.json'

EVENT_KINDS = (
    'declared', 'severity', 'play', 'task', 'finding', 'diagnosis', 'plan',
    'approval', 'action', 'verify', 'comms', 'note', 'resolved',
)
# The one rule of an incident id (the incident directory's name); roles check it with the test
# sre.incident_response.incident_id, incident_input and incident.py with valid_incident_id.
INCIDENT_ID_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$')


def valid_incident_id(incident_id):
    """1 to 64 letters, digits, '.', '_' or '-', starting with a letter or a digit."""
    return bool(incident_id) and bool(INCIDENT_ID_RE.match(str(incident_id)))


def incident_path(incident_dir, incident_id):
    if not valid_incident_id(incident_id):
        raise ValueError('incident_id %r is not valid: use letters, digits, ".", "_" or "-" (at most 64), '
                         'e.g. INC-20261127-0312-a1b2' % (incident_id,))
    return os.path.join(os.path.abspath(os.path.expanduser(str(incident_dir))), str(incident_id))


def ensure_dir(path, mode=0o750):
    try:
        os.makedirs(path, mode)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise
    return path


class _Locked(object):
    """An exclusive advisory lock on <path>.lock, held for a read-modify-write."""

    def __init__(self, path):
        self.lock_path = path + '.lock'
        self.fd = None

    def __enter__(self):
        ensure_dir(os.path.dirname(self.lock_path) or '.')
        self.fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o640)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        return False


def lock(path):
    """An exclusive advisory lock on <path>.lock for a read-modify-write (context manager)."""
    return _Locked(path)


class StoreWriteError(OSError):
    """A file of the incident store could not be written (e.g. ENOSPC); what was there before is unchanged."""


def _write_error(path, exc, kept):
    hint = ' (the file system is full)' if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ''
    return StoreWriteError(exc.errno, 'cannot write %s: %s%s; %s' % (path, exc.strerror or exc, hint, kept))


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def append_jsonl(path, records):
    """Append records as JSON lines under a lock, then fsync.

    A process killed mid-write can leave a partial last line; readers skip it
    (read_jsonl) and the next append cuts it off first, so the file is whole
    lines again with every complete event kept. A write that fails (a full disk)
    is cut off at once and raises StoreWriteError: the file keeps its events.
    """
    if isinstance(records, dict):
        records = [records]
    ensure_dir(os.path.dirname(path) or '.')
    payload = ''.join(json.dumps(r, sort_keys=True, default=str, ensure_ascii=False) + '\n' for r in records)
    if not payload:
        return 0
    with _Locked(path):
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            _drop_torn_tail(fd)
            size = os.fstat(fd).st_size
            try:
                _write_all(fd, payload.encode('utf-8'))
                os.fsync(fd)
            except OSError as exc:
                try:
                    os.ftruncate(fd, size)
                except OSError:
                    pass
                raise _write_error(path, exc, 'the events before are kept, these %d were not appended' % len(records))
        finally:
            os.close(fd)
    return len(records)


def _drop_torn_tail(fd):
    """Cut a partial last line left by a writer killed mid-write (the kernel may stop a write at a page).

    Called under the lock before appending, so the file stays whole lines: the torn event was never
    complete, every complete event before it stays.
    """
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b'\n':
        return
    end = size
    while end > 0:
        start = max(0, end - 65536)
        chunk = os.pread(fd, end - start, start)
        nl = chunk.rfind(b'\n')
        if nl >= 0:
            os.ftruncate(fd, start + nl + 1)
            return
        end = start
    os.ftruncate(fd, 0)


def read_jsonl(path):
    """Read a JSON Lines file; a torn last line (from a crash) is skipped."""
    events = []
    if not os.path.exists(path):
        return events
    with open(path, 'r', encoding='utf-8') as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


def write_text_atomic(path, text, mode=0o640):
    """Write text through a temporary file beside `path` and a rename, so readers never see half a file.

    The one atomic write of the incident store (JSON files, evidence, rendered documents). On any error (ENOSPC
    while writing or at fsync, a failed rename) the temporary file is removed and StoreWriteError names the file:
    the previous `path`, if any, is unchanged and no `.tmp` file is left behind.
    """
    directory = os.path.dirname(path) or '.'
    ensure_dir(directory)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=directory)
    try:
        try:
            _write_all(fd, text.encode('utf-8'))
            os.fsync(fd)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, StoreWriteError):
            raise _write_error(path, exc, 'the previous file is unchanged')
        raise


def write_json_atomic(path, data):
    """Write JSON through a temporary file and rename, so readers never see half a file (write_text_atomic)."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False) + '\n')


def read_json(path, default=None):
    if not os.path.exists(path):
        return default
    with open(path, 'r', encoding='utf-8') as handle:
        return json.load(handle)


def make_event(incident_id, kind, summary, host=None, data=None, ts=None):
    if kind not in EVENT_KINDS:
        raise ValueError('event kind %r is not one of %s' % (kind, ', '.join(EVENT_KINDS)))
    return {
        'ts': ts or isoformat(),
        'incident_id': incident_id,
        'kind': kind,
        'host': host,
        'summary': summary,
        'data': data if data is not None else {},
    }


def finding_key(finding):
    return '%s/%s' % (finding.get('host'), finding.get('check'))


def normalize_finding(finding, ts=None):
    """Validate a finding and fill its defaults; raises ValueError naming the bad field."""
    if not isinstance(finding, dict):
        raise ValueError('a finding must be a dict, got %s' % type(finding).__name__)
    out = dict(finding)
    for field in ('check', 'host', 'status', 'summary'):
        if not out.get(field):
            raise ValueError('finding is missing %r: %r' % (field, finding))
    if not CHECK_RE.match(str(out['check'])):
        raise ValueError('finding check %r is not of the form area.name' % (out['check'],))
    if out['status'] not in STATUSES:
        raise ValueError('finding %s has status %r, expected one of %s'
                         % (out['check'], out['status'], ', '.join(STATUSES)))
    out.setdefault('service', None)
    out.setdefault('evidence', {})
    out['ts'] = out.get('ts') or ts or isoformat()
    out['summary'] = ' '.join(str(out['summary']).split())
    return out


def merge_findings(existing, new):
    """The latest finding per (host, check): new ones replace old ones with the same key."""
    merged = {}
    for finding in list(existing or []) + list(new or []):
        merged[finding_key(finding)] = finding
    return sorted(merged.values(), key=worst_first)


def update_findings(path, new):
    """Merge findings into findings.json under a lock; returns the merged list."""
    with _Locked(path):
        existing = read_json(path, default=[]) or []
        if isinstance(existing, dict):
            existing = existing.get('findings', [])
        merged = merge_findings(existing, new)
        write_json_atomic(path, merged)
    return merged


def safe_name(text):
    """A file-name-safe form of a host or check name."""
    return re.sub(r'[^A-Za-z0-9._-]+', '_', str(text)).strip('_') or 'unnamed'


# --- files a person may edit: never overwritten ---------------------------------------------------------------

def rendered_hash_path(path):
    """The sidecar beside a rendered file: `.<name>.sha256`, in `sha256sum` format (`sha256sum -c` tells edits)."""
    return os.path.join(os.path.dirname(path), '.%s.sha256' % os.path.basename(path))


def _sha256(text):
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def draft_path(path):
    """Where a new rendering goes when a person edited `path`: `name.new.md` beside it."""
    root, ext = os.path.splitext(path)
    return '%s.new%s' % (root, ext or '')


def rendered_state(path):
    """'absent', 'ours' (what we rendered last, per its sidecar) or 'edited' (changed since, or no sidecar)."""
    if not os.path.exists(path):
        return 'absent'
    sidecar = rendered_hash_path(path)
    try:
        with open(sidecar, 'r', encoding='utf-8') as handle:
            recorded = handle.read().split()[0]
    except (OSError, IndexError):
        return 'edited'
    with open(path, 'r', encoding='utf-8') as handle:
        current = handle.read()
    return 'ours' if _sha256(current) == recorded else 'edited'


def write_rendered(path, text, mode=0o640, check_mode=False):
    """Write a rendered document a person may edit, never over their edits.

    Returns {'path': where the text went, 'status': 'created' | 'updated' | 'unchanged' | 'edited', 'changed'}.
    'edited': `path` differs from what was rendered there last (or was not rendered by us): it is left alone and
    the new rendering goes to draft_path(path) instead. The sidecar `.<name>.sha256` records what we rendered.
    """
    sidecar = rendered_hash_path(path)
    state = rendered_state(path)
    if state == 'edited':
        with open(path, 'r', encoding='utf-8') as handle:
            if handle.read() == text:  # same as ours (an old rendering without a sidecar): adopt it
                if not check_mode:
                    write_text_atomic(sidecar, '%s  %s\n' % (_sha256(text), os.path.basename(path)), 0o644)
                return {'path': path, 'status': 'unchanged', 'changed': False}
        new = draft_path(path)
        changed = True
        if os.path.exists(new):
            with open(new, 'r', encoding='utf-8') as handle:
                changed = handle.read() != text
        if changed and not check_mode:
            write_text_atomic(new, text, mode)
        return {'path': new, 'status': 'edited', 'changed': changed, 'edited': path}
    if state == 'ours':
        with open(path, 'r', encoding='utf-8') as handle:
            if handle.read() == text:
                return {'path': path, 'status': 'unchanged', 'changed': False}
    if not check_mode:
        write_text_atomic(path, text, mode)
        write_text_atomic(sidecar, '%s  %s\n' % (_sha256(text), os.path.basename(path)), 0o644)
    return {'path': path, 'status': 'created' if state == 'absent' else 'updated', 'changed': True}
