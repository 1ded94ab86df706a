# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The incident store: the controller's one way into an incident directory.

Every action plugin that touches an incident goes through it: which incident a task
means and where it lives (IncidentStore.resolve - the task's arguments, then the
facts of the incident role, then the variables), the redactor of the task (its
patterns and the secret values among its variables), appending to the timeline,
recording findings with their evidence, reading findings / diagnosis / incident /
timeline back (each file read once per store), writing the diagnosis, and claiming
and settling deliveries (exactly once, under the store's lock). Every write is redacted
(keys and values): with the redactor given, else the store's own (task_redactor of the
task that opened it).

The file layout and contracts are those of docs/reference/contracts.md; the file
primitives (locking, atomic writes, torn-line repair) are in module_utils/incident_files.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible.errors import AnsibleActionFail

from ansible_collections.sre.incident_response.plugins.plugin_utils.comms import comms
from ansible_collections.sre.incident_response.plugins.module_utils import incident_files as files
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.timeline import resolve_incident, secret_literals


def task_redactor(task_vars, templar, patterns=None):
    """The redactor of a task: the collection's secret patterns, the given and the inventory's extra patterns,
    and the values of secret variables (secret-looking names, variables named by a password_var)."""
    patterns = list(patterns or []) + list((task_vars or {}).get('incident_redact_patterns') or [])
    try:
        literals = secret_literals(task_vars, resolve=templar.template if templar is not None else None)
    except Exception:  # pylint: disable=broad-except
        literals = set()
    return Redactor(patterns=patterns, literals=literals)


class IncidentStore(object):
    """One incident directory seen from the controller."""

    def __init__(self, incident_id, path, task_vars=None, templar=None, patterns=None):
        self.incident_id = str(incident_id)
        self.path = os.path.abspath(str(path))
        self._cache = {}
        self._task = (task_vars, templar, patterns)
        self._redactor = None

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

    def file(self, name):
        return os.path.join(self.path, name)

    def exists(self, name=None):
        return os.path.exists(self.file(name)) if name else os.path.isdir(self.path)

    # --- read back (once per store) -------------------------------------------------------------------

    def _read(self, name, default):
        if name not in self._cache:
            if name == files.TIMELINE:
                self._cache[name] = files.read_jsonl(self.file(name))
            else:
                value = files.read_json(self.file(name), default=default)
                self._cache[name] = default if value is None else value
        return self._cache[name]

    def incident(self):
        return self._read(files.INCIDENT, None)

    def findings(self):
        data = self._read(files.FINDINGS, [])
        if isinstance(data, dict):  # an old layout kept them under a key
            data = data.get('findings', [])
        return data or []

    def diagnosis(self):
        return self._read(files.DIAGNOSIS, None)

    def timeline(self):
        return self._read(files.TIMELINE, [])

    # --- write ----------------------------------------------------------------------------------------

    def append(self, events, redactor=None):
        """Append events (dicts made by incident_files.make_event) to the timeline, redacted, under the lock."""
        if isinstance(events, dict):
            events = [events]
        redactor = redactor or self.redactor
        files.ensure_dir(self.path)
        files.append_jsonl(self.file(files.TIMELINE), [redactor.data(e) for e in events])
        self._cache.pop(files.TIMELINE, None)

    def event(self, kind, summary, host=None, data=None, ts=None):
        return files.make_event(self.incident_id, kind, ' '.join(str(summary).split()), host=host, data=data, ts=ts)

    def write_evidence(self, items, redactor=None):
        """items: (host, filename, text or data). Each file written atomically under evidence/<host>/, redacted
        (its name too: a file may be named after outside data)."""
        redactor = redactor or self.redactor
        written = []
        for host, name, content in items:
            directory = files.ensure_dir(os.path.join(self.path, 'evidence', files.safe_name(redactor.text(str(host)))))
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
            files.update_findings(self.file(files.FINDINGS), [redactor.data(f) for f in findings])
            files.append_jsonl(self.file(files.TIMELINE), [redactor.data(e) for e in events])
        self._cache.pop(files.FINDINGS, None)
        self._cache.pop(files.TIMELINE, None)

    def write_diagnosis(self, doc, redactor=None):
        """Write diagnosis.json (redacted); returns what was written."""
        doc = (redactor or self.redactor).data(doc)
        files.write_json_atomic(self.file(files.DIAGNOSIS), doc)
        self._cache[files.DIAGNOSIS] = doc
        return doc

    # --- deliveries: exactly once ---------------------------------------------------------------------

    def claim_deliveries(self, keys, run_id, now):
        return comms.claim_deliveries(self.path, keys, run_id, now)

    def settle_deliveries(self, outcomes, run_id, now):
        return comms.settle_deliveries(self.path, outcomes, run_id, now)
