# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The incident store: the controller's one way into an incident directory.

Nothing else on the controller opens, writes or path-joins a file of an incident directory
(tests/unit/test_store_only.py holds the line). The store owns:

- which incident a task means and where it lives: resolve_incident() / IncidentStore.resolve (the task's
  arguments, then the facts of the incident role, then the variables) and IncidentStore.at (a root and an id);
- one reader and one writer for every file of the contract (docs/reference/contracts.md): incident.json (written
  under its lock: update_incident / locked_incident), timeline.jsonl (append), findings.json (record_findings,
  under its lock), diagnosis.json, evidence/<host>/, messages/, deliveries.json (claimed and settled exactly once,
  under its lock), comms_state.json, the post-mortem and report.html (write_rendered: never over a person's edits);
- the redactor of the task that opened it (its patterns and the secret values among its variables): every write
  is redacted (keys and values), with the redactor given, else the store's own.

Reads are cached once per store (a store lives for one task). The file primitives (locking, atomic writes,
torn-line repair) are in plugin_utils/incident/files.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import glob
import json
import os
import tempfile

from ansible.errors import AnsibleActionFail

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor
from ansible_collections.sre.incident_response.plugins.plugin_utils.comms import comms
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.timeline import secret_literals

# The files of an incident directory (docs/reference/contracts.md).
INCIDENT = files.INCIDENT
TIMELINE = files.TIMELINE
FINDINGS = files.FINDINGS
DIAGNOSIS = files.DIAGNOSIS
DELIVERIES = 'deliveries.json'
COMMS_STATE = 'comms_state.json'
MESSAGES = 'messages'
EVIDENCE = 'evidence'
POSTMORTEM_GLOB = 'postmortem-*.md'
# Held by the remediation gate while it checks the budget and records an intent (plugin_utils/remediation_lock.py).
REMEDIATION_LOCK = 'remediation.lock'

# A delivery claim whose run never settled it (killed mid-send) may be taken over after this long.
CLAIM_STALE_SECONDS = 600
# At most this many messages of one kind in one second get a name of their own (-2, -3, ...).
MESSAGE_NAME_TRIES = 1000


# The one file of the incidents' root directory (not of an incident): which alert group opened which incident.
ALERT_GROUPS = '.alert-groups.json'


def incident_path(incident_dir, incident_id):
    """<incident_dir>/<incident_id>, absolute; ValueError for a malformed id (it becomes a directory name)."""
    return files.incident_path(incident_dir, incident_id)


def resolve_incident(args, task_vars):
    """(incident_id, path) from task arguments, else the incident facts, else the variables; (None, None).

    Raises ValueError for a malformed incident id.
    """
    task_vars = task_vars or {}
    incident_id = args.get('incident_id') or task_vars.get('incident_id')
    fact_path = task_vars.get('incident_path')
    if not incident_id and fact_path:
        # `-e incident_id=` (empty, e.g. an AWX survey) outranks the incident role's fact: the path still knows it
        incident_id = os.path.basename(os.path.normpath(str(fact_path)))
        task_vars = dict(task_vars, incident_id=incident_id)
    if not incident_id:
        return None, None
    incident_id = str(incident_id)
    if not files.valid_incident_id(incident_id):
        raise ValueError('incident_id %r is not valid: use letters, digits, ".", "_" or "-" (at most 64)' % incident_id)
    if args.get('incident_dir'):
        return incident_id, incident_path(args['incident_dir'], incident_id)
    if fact_path and incident_id == str(task_vars.get('incident_id')) \
            and os.path.basename(os.path.normpath(str(fact_path))) == incident_id:
        return incident_id, os.path.abspath(str(fact_path))
    return incident_id, incident_path(task_vars.get('incident_dir') or 'incidents', incident_id)


def task_redactor(task_vars, templar, patterns=None):
    """The redactor of a task: the collection's secret patterns, the given and the inventory's extra patterns,
    and the values of secret variables (secret-looking names, variables named by a password_var)."""
    patterns = list(patterns or []) + list((task_vars or {}).get('incident_redact_patterns') or [])
    try:
        literals = secret_literals(task_vars, resolve=templar.template if templar is not None else None)
    except Exception:  # pylint: disable=broad-except
        literals = set()
    return Redactor(patterns=patterns, literals=literals)


def message_name(kind, now, status=None):
    """messages/<YYYYMMDDTHHMMSSZ>-<kind>[-status].md"""
    return comms.message_name(kind, now, status)


def write_message(directory, kind, text, now, status=None):
    """Write <directory>/<YYYYMMDDTHHMMSSZ>-<kind>[-status].md without overwriting an earlier one; returns the path.

    The text is written whole to a temporary file first and then hard-linked under its name (a link never
    replaces an existing file), so a full disk leaves neither an empty nor a half message, nor a `.tmp` file.
    """
    files.ensure_dir(directory)
    base = message_name(kind, now, status)
    path = os.path.join(directory, base)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % base, suffix='.tmp', dir=directory)
    try:
        try:
            files._write_all(fd, text.encode('utf-8'))  # pylint: disable=protected-access
            os.fsync(fd)
            os.fchmod(fd, 0o640)
        finally:
            os.close(fd)
        for counter in range(2, MESSAGE_NAME_TRIES + 2):
            try:
                os.link(tmp, path)
                break
            except FileExistsError:
                path = os.path.join(directory, base[:-3] + '-%d.md' % counter)
        else:
            raise OSError('%s: %d messages of this kind in this second already' % (
                os.path.join(directory, base), MESSAGE_NAME_TRIES))
    except OSError as exc:
        if exc.errno is None:
            raise
        raise files._write_error(path, exc, 'no message written')  # pylint: disable=protected-access
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return path


class IncidentStore(object):
    """One incident directory seen from the controller."""

    def __init__(self, incident_id, path, task_vars=None, templar=None, patterns=None, redactor=None):
        self.incident_id = str(incident_id)
        self.path = os.path.abspath(str(path))
        self._cache = {}
        self._task = (task_vars, templar, patterns)
        self._redactor = redactor

    @property
    def redactor(self):
        """The redactor of the task that opened the store (task_redactor), made on first use: every write that is
        given no redactor of its own goes through it."""
        if self._redactor is None:
            task_vars, templar, patterns = self._task
            self._redactor = task_redactor(task_vars, templar, patterns) if task_vars else Redactor(patterns=patterns)
        return self._redactor

    # --- which incident -------------------------------------------------------------------------------

    @classmethod
    def resolve(cls, args, task_vars, required=None, templar=None):
        """The store of the incident a task means, or None when no incident is known.

        args: the task's `incident_id` / `incident_dir`; then the incident role's facts
        (`incident_id`, `incident_path`), then the variables (`incident_dir`, default `incidents`).
        required: a message to fail with when no incident is known (instead of None).
        templar: the action's, to resolve templated secret variables for the store's redactor (without it their
        raw values are used).
        """
        try:
            incident_id, path = resolve_incident(args or {}, task_vars or {})
        except ValueError as exc:
            raise AnsibleActionFail(str(exc))
        if not incident_id:
            if required:
                raise AnsibleActionFail(required)
            return None
        return cls(incident_id, path, task_vars=task_vars, templar=templar,
                   patterns=(args or {}).get('redact_patterns'))

    @classmethod
    def at(cls, incident_dir, incident_id, redactor=None):
        """The store of <incident_dir>/<incident_id> (ValueError for a malformed id)."""
        return cls(incident_id, incident_path(incident_dir, incident_id), redactor=redactor)

    @classmethod
    def of_path(cls, path, incident_id=None, redactor=None):
        """The store of an incident directory known by its path (its id: the directory's name unless given)."""
        return cls(incident_id or os.path.basename(os.path.normpath(str(path))), path, redactor=redactor)

    def file(self, name):
        """The path of a file of the incident directory (for tests and the store itself)."""
        return os.path.join(self.path, name)

    def exists(self):
        """True when the incident directory exists."""
        return os.path.isdir(self.path)

    def has_incident(self):
        """True when incident.json exists."""
        return os.path.exists(self.file(INCIDENT))

    def has_timeline(self):
        """True when timeline.jsonl exists."""
        return os.path.exists(self.file(TIMELINE))

    @property
    def timeline_path(self):
        return self.file(TIMELINE)

    @property
    def findings_path(self):
        return self.file(FINDINGS)

    @property
    def diagnosis_path(self):
        return self.file(DIAGNOSIS)

    @property
    def remediation_lock_path(self):
        return self.file(REMEDIATION_LOCK)

    @property
    def messages_dir(self):
        return self.file(MESSAGES)

    def relpath(self, path):
        """A path inside the incident directory, relative to it (as events record files)."""
        return os.path.relpath(path, self.path)

    # --- read back (once per store) -------------------------------------------------------------------

    def _read(self, name, default, fresh=False):
        if fresh or name not in self._cache:
            if name == TIMELINE:
                self._cache[name] = files.read_jsonl(self.file(name))
            else:
                value = files.read_json(self.file(name), default=default)
                self._cache[name] = default if value is None else value
        return self._cache[name]

    def incident(self, fresh=False):
        """incident.json (None when the incident was never declared)."""
        return self._read(INCIDENT, None, fresh)

    def findings(self):
        data = self._read(FINDINGS, [])
        if isinstance(data, dict):  # an old layout kept them under a key
            data = data.get('findings', [])
        return data or []

    def diagnosis(self):
        return self._read(DIAGNOSIS, None)

    def timeline(self, fresh=False):
        """The events of timeline.jsonl (a torn last line skipped); fresh: read again, not from the cache."""
        return self._read(TIMELINE, [], fresh)

    def messages(self):
        """The names of messages/ (sorted; [] when there are none)."""
        directory = self.messages_dir
        return sorted(name for name in os.listdir(directory) if not name.startswith('.')) \
            if os.path.isdir(directory) else []

    def evidence_file(self, host, check, limit=None):
        """(path relative to the incident, text) of evidence/<host>/<check>.txt|.json, else (None, None).
        Host and check come from the files: a name that leads out of evidence/ (../, a symlink) reads nothing."""
        top = os.path.realpath(self.path)
        root = os.path.join(top, EVIDENCE)
        for ext in ('.txt', '.json'):
            candidate = os.path.realpath(os.path.join(root, str(host), str(check) + ext))
            if not candidate.startswith(root + os.sep):
                break
            if os.path.isfile(candidate):
                try:
                    with open(candidate, 'r', errors='replace') as handle:
                        return os.path.relpath(candidate, top), handle.read(-1 if limit is None else limit)
                except OSError:
                    break
        return None, None

    def postmortems(self):
        """The post-mortem drafts (postmortem-*.md), oldest first (by modification time)."""
        return sorted(glob.glob(self.file(POSTMORTEM_GLOB)), key=lambda p: (os.path.getmtime(p), p))

    def latest_postmortem(self):
        """(name, text) of the newest post-mortem draft, or (None, '')."""
        found = self.postmortems()
        if not found:
            return None, ''
        try:
            with open(found[-1], 'r', errors='replace') as handle:
                return os.path.basename(found[-1]), handle.read()
        except OSError:
            return None, ''

    def comms_state(self):
        """comms_state.json: what the status page knows of this incident ({} at first)."""
        return files.read_json(self.file(COMMS_STATE), default={}) or {}

    # --- write ----------------------------------------------------------------------------------------

    def ensure(self, messages=False):
        """Create the incident directory (and messages/)."""
        files.ensure_dir(self.path)
        if messages:
            files.ensure_dir(self.messages_dir)
        return self.path

    def append(self, events, redactor=None):
        """Append events (dicts made by event()) to the timeline, redacted, under the lock."""
        if isinstance(events, dict):
            events = [events]
        redactor = redactor or self.redactor
        files.ensure_dir(self.path)
        files.append_jsonl(self.file(TIMELINE), [redactor.data(e) for e in events])
        self._cache.pop(TIMELINE, None)

    def event(self, kind, summary, host=None, data=None, ts=None):
        return files.make_event(self.incident_id, kind, ' '.join(str(summary).split()), host=host, data=data, ts=ts)

    @contextlib.contextmanager
    def locked_incident(self):
        """Hold incident.json's lock for a read-decide-write (declare or load: concurrent runs declare once)."""
        files.ensure_dir(self.path)
        with files.lock(self.file(INCIDENT)):
            self._cache.pop(INCIDENT, None)
            yield self

    def write_incident(self, doc, redactor=None):
        """Write incident.json (redacted, atomically); the caller holds locked_incident(). Returns what was written."""
        doc = (redactor or self.redactor).data(doc)
        files.write_json_atomic(self.file(INCIDENT), doc)
        self._cache[INCIDENT] = doc
        return doc

    def update_incident(self, change, redactor=None):
        """Read incident.json, change(doc) -> doc, write it: all under its lock. Returns what was written."""
        with self.locked_incident():
            doc = change(dict(self.incident(fresh=True) or {}))
            return self.write_incident(doc, redactor)

    def write_evidence(self, items, redactor=None):
        """items: (host, filename, text or data). Each file written atomically under evidence/<host>/, redacted
        (its name too: a file may be named after outside data)."""
        redactor = redactor or self.redactor
        written = []
        for host, name, content in items:
            directory = files.ensure_dir(os.path.join(self.path, EVIDENCE, files.safe_name(redactor.text(str(host)))))
            target = os.path.join(directory, files.safe_name(redactor.text(str(name))))
            if isinstance(content, (dict, list)):
                text = json.dumps(redactor.data(content), indent=2, sort_keys=True, default=str, ensure_ascii=False) + '\n'
            else:
                text = redactor.text(str(content))
            # a temporary file of its own (concurrent runs, slices, may write the same evidence file), removed on error
            files.write_text_atomic(target, text)
            written.append(target)
        return written

    def record_findings(self, findings, events, redactor=None):
        """Merge findings into findings.json (the latest per host and check, under the lock) and append their events,
        both redacted."""
        redactor = redactor or self.redactor
        files.ensure_dir(self.path)
        if findings:
            files.update_findings(self.file(FINDINGS), [redactor.data(f) for f in findings])
            files.append_jsonl(self.file(TIMELINE), [redactor.data(e) for e in events])
        self._cache.pop(FINDINGS, None)
        self._cache.pop(TIMELINE, None)

    def write_diagnosis(self, doc, redactor=None):
        """Write diagnosis.json (redacted); returns what was written."""
        doc = (redactor or self.redactor).data(doc)
        files.write_json_atomic(self.file(DIAGNOSIS), doc)
        self._cache[DIAGNOSIS] = doc
        return doc

    def write_message(self, kind, text, now, status=None):
        """messages/<YYYYMMDDTHHMMSSZ>-<kind>[-status].md, never over an earlier one (the text as given: render and
        redact it first); returns its path."""
        return write_message(self.messages_dir, kind, text, now, status)

    def write_comms_state(self, state):
        """comms_state.json, replaced atomically."""
        files.write_json_atomic(self.file(COMMS_STATE), state)

    def write_rendered(self, name, text, check_mode=False):
        """A rendered document a person may edit (post-mortem, report): incident_files.write_rendered of <name> in
        the incident directory (never over their edits: the new text goes beside it)."""
        return files.write_rendered(self.file(name), text, check_mode=check_mode)

    def write_page(self, name, text, check_mode=False, mode=0o644):
        """A page the collection owns whole and rebuilds from the files (report.html): <name> in the incident directory,
        replaced atomically (a reader never sees half a page) unless it already holds exactly `text`.
        Returns {'path', 'changed'}; in check mode nothing is written."""
        target = self.file(name)
        try:
            with open(target, 'r', encoding='utf-8', errors='replace') as handle:
                if handle.read() == text:
                    return {'path': target, 'changed': False}
        except OSError:
            pass
        if not check_mode:
            files.write_text_atomic(target, text, mode=mode)
        return {'path': target, 'changed': True}

    # --- deliveries: exactly once ---------------------------------------------------------------------

    def claim_deliveries(self, keys, run_id, now, stale_seconds=CLAIM_STALE_SECONDS):
        """Claim each key for this run under the lock of deliveries.json.

        Returns {key: (decision, record)}: 'claimed' (ours: send the targets not yet 'sent' in record['targets']),
        'sent' (sent before: never again) or 'busy' (another run holds a fresh claim: it sends).
        A failed or stale claim is taken over.
        """
        target = self.file(DELIVERIES)
        out = {}
        with files.lock(target):
            state = files.read_json(target, default={}) or {}
            for key in keys:
                rec = state.get(key) or {}
                if rec.get('state') == 'sent':
                    out[key] = ('sent', rec)
                    continue
                if rec.get('state') == 'claimed' and rec.get('run') != run_id:
                    try:
                        age = (now - files.parse_ts(rec.get('at'))).total_seconds()
                    except (TypeError, ValueError):
                        age = stale_seconds
                    if age < stale_seconds:
                        out[key] = ('busy', rec)
                        continue
                rec = {'state': 'claimed', 'run': run_id, 'at': files.isoformat(now),
                       'targets': dict(rec.get('targets') or {}),
                       'first_claimed_at': rec.get('first_claimed_at') or files.isoformat(now)}
                state[key] = rec
                out[key] = ('claimed', rec)
            files.write_json_atomic(target, state)
        return out

    def settle_deliveries(self, outcomes, run_id, now):
        """Record what this run's claimed keys did: outcomes {key: {target: True/False}}. A key is 'sent' when none of
        its targets failed (targets already sent stay sent), else 'failed' (the next run retries the failed ones)."""
        target = self.file(DELIVERIES)
        with files.lock(target):
            state = files.read_json(target, default={}) or {}
            for key, targets in outcomes.items():
                rec = state.get(key) or {}
                if rec.get('run') not in (None, run_id) and rec.get('state') == 'sent':
                    continue
                merged = dict(rec.get('targets') or {})
                for name, ok in targets.items():
                    if merged.get(name) != 'sent':
                        merged[name] = 'sent' if ok else 'failed'
                rec.update(targets=merged, run=run_id, at=files.isoformat(now),
                           state='failed' if any(v == 'failed' for v in merged.values()) else 'sent')
                state[key] = rec
            files.write_json_atomic(target, state)


class IncidentRoot(object):
    """The directory that holds the incidents (-e incident_dir) and its one shared file, the alert-group registry
    (.alert-groups.json: {'groups': {group_key: {'incident_id', ...}}}), read and written under its lock."""

    def __init__(self, incident_dir):
        self.path = os.path.abspath(os.path.expanduser(str(incident_dir)))

    def store(self, incident_id, redactor=None):
        """The store of one incident under this root."""
        return IncidentStore.at(self.path, incident_id, redactor=redactor)

    def alert_groups(self):
        """The registry as it is now (no lock: for tests and the docs' one-liner)."""
        return files.read_json(os.path.join(self.path, ALERT_GROUPS), default={}) or {}

    @contextlib.contextmanager
    def locked_alert_groups(self):
        """Hold the registry's lock for a read-decide-write; yields (registry, write) where write(registry) replaces
        it atomically. Concurrent alert batches of one group therefore open one incident."""
        files.ensure_dir(self.path)
        target = os.path.join(self.path, ALERT_GROUPS)
        with files.lock(target):
            yield files.read_json(target, default={}) or {}, lambda registry: files.write_json_atomic(target, registry)
