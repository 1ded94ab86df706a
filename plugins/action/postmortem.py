# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: render the post-mortem, and mark the incident resolved (documentation in plugins/modules/postmortem.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files
from ansible_collections.sre.incident_response.plugins.module_utils import timefmt
from ansible_collections.sre.incident_response.plugins.plugin_utils.render.postmortem import (
    IncidentRecord,
    PostmortemRenderer,
    compute_metrics,
    postmortem_filename,
)
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore, task_redactor


def mark_resolved(store, record, resolved_at, resolved_by, root_cause, redactor, check_mode=False):
    """Append the `resolved` event and set incident.json status once (under its lock); returns True when it changed
    something."""
    if any(e.get('kind') == 'resolved' for e in record.events) and \
            str(record.incident.get('status', '')).lower() == 'resolved':
        return False
    if check_mode:
        return True
    stamp = files.isoformat(files.parse_ts(resolved_at)) if resolved_at else files.isoformat()
    if not any(e.get('kind') == 'resolved' for e in record.events):
        summary = 'Incident resolved%s' % ((' by %s' % resolved_by) if resolved_by else '')
        if root_cause:
            summary += '; root cause: %s' % root_cause
        event = redactor.data(files.make_event(record.incident_id, 'resolved', summary, host=None,
                                               data={'resolved_by': resolved_by or None,
                                                     'root_cause': root_cause or None}, ts=stamp))
        store.append(event, redactor)
        record.events.append(event)

    def resolve(incident):
        incident.setdefault('id', record.incident_id)
        incident['status'] = 'Resolved'
        incident['resolved_at'] = next((e['ts'] for e in record.events if e.get('kind') == 'resolved'), stamp)
        if resolved_by:
            incident['resolved_by'] = resolved_by
        incident['updated_at'] = files.isoformat()
        return incident

    record.incident = store.update_incident(resolve, redactor)
    return True


class ActionModule(ActionBase):
    """Runs on the controller: the incident directory lives where the playbook runs."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    ARGSPEC = dict(
        incident_id=dict(type='str'),
        incident_dir=dict(type='path'),
        state=dict(type='str', default='draft', choices=['draft', 'final']),
        resolved_at=dict(type='str', default=''),
        resolved_by=dict(type='str', default=''),
        title=dict(type='str', default=''),
        impact=dict(type='str', default=''),
        summary=dict(type='str', default=''),
        root_cause=dict(type='str', default=''),
        five_whys=dict(type='list', elements='str', default=[]),
        contributing_factors=dict(type='list', elements='str', default=[]),
        went_well=dict(type='list', elements='str', default=[]),
        could_be_improved=dict(type='list', elements='raw', default=[]),
        action_items=dict(type='list', elements='raw', default=[]),
        default_owner=dict(type='str', default='@oncall'),
        redact_patterns=dict(type='list', elements='str', default=[]),
    )

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGSPEC)
        store = IncidentStore.resolve(args, task_vars)
        incident_id, path = (store.incident_id, store.path) if store else (None, None)
        if not incident_id:
            result.update(changed=False, skipped=True, msg='no incident_id known: nothing to render')
            return result
        if not store.has_timeline() and not store.has_incident():
            raise AnsibleActionFail('incident %s: no timeline.jsonl or incident.json in %s (wrong incident_id or '
                                    'incident_dir?)' % (incident_id, path))
        if args['resolved_at']:
            try:
                files.parse_ts(args['resolved_at'])
            except ValueError:
                raise AnsibleActionFail('resolved_at %r is not an ISO 8601 time (e.g. 2026-11-27T15:15:00Z)'
                                        % args['resolved_at'])
        redactor = task_redactor(task_vars, self._templar, args['redact_patterns'])
        check = bool(self._task.check_mode)
        record = IncidentRecord.from_store(store, incident_id=incident_id)
        final = args['state'] == 'final'
        resolved_changed = False
        if final:
            resolved_changed = mark_resolved(store, record, args['resolved_at'], args['resolved_by'],
                                             args['root_cause'], redactor, check_mode=check)
        inputs = dict((k, args[k]) for k in ('title', 'impact', 'summary', 'root_cause', 'five_whys',
                                             'contributing_factors', 'went_well', 'could_be_improved',
                                             'action_items', 'default_owner'))
        text = PostmortemRenderer(redactor=redactor).render(record, inputs=inputs, final=final)
        metrics = compute_metrics(record)
        name = postmortem_filename(metrics['started_at']) if metrics['started_at'] else 'postmortem-undated.md'
        # A person may have edited the document since it was rendered: never overwrite it, write beside it.
        outcome = store.write_rendered(name, text, check_mode=check)
        dest = store.file(name)
        file_changed = outcome['changed']
        edited_note = None
        if outcome['status'] == 'edited':
            edited_note = ('%s was edited since it was rendered: left as it is; the new %s is %s - merge by hand'
                           % (os.path.basename(dest), 'final' if final else 'draft', os.path.basename(outcome['path'])))
            if file_changed and not check:
                store.append(files.make_event(record.incident_id, 'note', edited_note, host=None,
                                              data={'postmortem': name, 'draft': os.path.basename(outcome['path']),
                                                    'edited': True}), redactor)
        measures = ('time_to_acknowledge', 'time_to_mitigate', 'time_to_resolve', 'duration')
        human = dict((k, timefmt.duration(metrics[k])) for k in measures if metrics.get(k) is not None)
        result.update(
            changed=bool(resolved_changed or file_changed),
            path=outcome['path'],
            postmortem=dest,
            edited=outcome['status'] == 'edited',
            incident_id=incident_id,
            incident_path=path,
            state=args['state'],
            resolved=bool(metrics['resolved']),
            metrics=dict((k, v) for k, v in metrics.items() if not isinstance(v, (dict, list))),
            durations=human,
            msg=edited_note or '%s post-mortem %s (%s)' % ('final' if final else 'draft', dest,
                                                           'updated' if file_changed else 'unchanged'),
        )
        return result
