# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: an incident directory -> the model of report.html, and report.html itself when `file` is given
(documentation in plugins/modules/incident_report.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sre.incident_response.plugins.plugin_utils.render import report as report_mod
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore, task_redactor


FILE_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*\.html$')


class ActionModule(ActionBase):
    """Reads the incident files on the controller; writes nothing but `file` (report.html) in the incident directory."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    ARGSPEC = dict(
        incident_id=dict(type='str'),
        incident_dir=dict(type='path'),
        redact_patterns=dict(type='list', elements='str', default=[]),
        file=dict(type='str'),
    )

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGSPEC)
        if args['file'] is not None and not FILE_RE.match(args['file']):
            raise AnsibleActionFail('file must be a plain *.html name inside the incident directory (got %r)' % args['file'])
        store = IncidentStore.resolve(args, task_vars)
        incident_id, path = (store.incident_id, store.path) if store else (None, None)
        if not incident_id:
            raise AnsibleActionFail('no incident_id known: run with -e incident_id=INC-... (the id triage declared)')
        if not store.exists():
            raise AnsibleActionFail('incident %s not found: %s is not a directory (give -e incident_dir=... when the '
                                    'incidents live elsewhere)' % (incident_id, path))
        try:
            model = report_mod.build(path, redactor=task_redactor(task_vars, self._templar, args['redact_patterns']))
        except (OSError, ValueError) as exc:
            raise AnsibleActionFail('cannot read incident %s: %s' % (incident_id, exc))
        timeline = model['timeline']
        result.update(changed=False, incident_id=incident_id, incident_path=os.path.abspath(path), report=model)
        if args['file']:
            try:
                written = store.write_page(args['file'], report_mod.render_html(model), check_mode=self._task.check_mode)
            except OSError as exc:
                raise AnsibleActionFail('cannot write %s of incident %s: %s' % (args['file'], incident_id, exc))
            result.update(changed=written['changed'], path=written['path'])
        result.update(
            summary='%s, %d host lane(s), %d finding event(s), %d hypothesis(es), %s' % (
                model['incident']['severity'], len(timeline['lanes']), timeline['finding_events'], len(model['hypotheses']),
                ('post-mortem %s' % model['postmortem']['file']) if model['postmortem']['file'] else 'no post-mortem yet'))
        return result
