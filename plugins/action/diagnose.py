# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: match findings.json against the quick-reference patterns (documentation in plugins/modules/diagnose.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import diagnosis as logic
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import incident as incident_logic
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore


def _relative(path, cwd):
    """A path relative to the working directory when it lies below it (commands stay short and copy-pastable)."""
    if not path:
        return path
    path = os.path.abspath(str(path))
    if path == cwd:
        return '.'
    if path.startswith(cwd.rstrip('/') + '/'):
        return os.path.relpath(path, cwd)
    return path


def build_context(args, task_vars, cwd):
    services = args.get('services') or {}
    backends, endpoints, backend_service, tls_service, backend_services, critical_paths = [], [], None, None, [], []
    backend_identities = []
    owners = {}
    app_roles = {}
    for host, items in sorted(services.items()):
        for svc in items or []:
            if not isinstance(svc, dict):
                continue
            if svc.get('name') and svc.get('owner_team') and svc['name'] not in owners:
                owners[str(svc['name'])] = str(svc['owner_team'])
            pg = svc.get('postgres') if isinstance(svc.get('postgres'), dict) else {}
            if svc.get('name') and isinstance(pg.get('app_roles'), list) and svc['name'] not in app_roles:
                app_roles[str(svc['name'])] = [str(r) for r in pg['app_roles']]
            kind = svc.get('kind')
            if kind in args['backend_kinds']:
                if host not in backends:
                    backends.append(host)
                backend_service = backend_service or svc.get('name')
                if svc.get('name') and svc.get('name') not in backend_services:
                    backend_services.append(svc.get('name'))
                deploy = svc.get('deploy') if isinstance(svc.get('deploy'), dict) else {}
                for ident in (svc.get('name'), deploy.get('container'), deploy.get('unit')):
                    if ident and str(ident) not in backend_identities:
                        backend_identities.append(str(ident))
                endpoints.extend(p for p in (svc.get('endpoints') or []) if p not in endpoints)
                critical_paths.extend(p for p in (svc.get('critical_paths') or []) if p not in critical_paths)
            elif kind == 'proxy':
                tls_service = tls_service or svc.get('name')
    inventory = args.get('inventory')
    if not inventory:
        sources = task_vars.get('ansible_inventory_sources') or []
        if isinstance(sources, str):
            sources = [sources]
        inventory = ','.join(_relative(s, cwd) for s in sources) if sources else None
    playbook_dir = args.get('playbook_dir') or _relative(task_vars.get('playbook_dir') or 'playbooks', cwd)
    return {
        'incident_id': args['incident_id'],
        'backends': backends,
        'endpoints': endpoints,
        'backend_service': backend_service,
        'backend_services': backend_services,
        'backend_identities': backend_identities,
        'critical_paths': critical_paths,
        'tls_service': tls_service,
        'owners': owners,
        'app_roles': app_roles,
        'inventory': inventory,
        'playbook_dir': playbook_dir,
    }


class ActionModule(ActionBase):
    """Runs on the controller, next to the incident directory."""

    TRANSFERS_FILES = False
    _requires_connection = False

    ARGSPEC = dict(
        incident_id=dict(type='str', default=''),
        incident_dir=dict(type='path'),
        services=dict(type='dict', default={}),
        backend_kinds=dict(type='list', elements='str', default=['backend']),
        inventory=dict(type='str', default=''),
        playbook_dir=dict(type='str', default=''),
        record=dict(type='bool', default=True),
        raise_severity=dict(type='bool', default=True),
    )

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGSPEC)
        store = IncidentStore.resolve(args, task_vars, templar=self._templar)
        if store is None:
            result.update(changed=False, skipped=True,
                          msg='no incident_id known (run the incident role first, or give incident_id): nothing to diagnose')
            return result
        args['incident_id'] = store.incident_id
        findings = store.findings()
        context = build_context(args, task_vars, os.getcwd())
        doc = logic.diagnose(findings, context)
        doc['generated_at'] = files.isoformat()
        doc['context'] = dict((k, context[k]) for k in ('backends', 'inventory', 'playbook_dir'))
        target = store.diagnosis_path
        doc = store.write_diagnosis(doc)  # redacted with the task's secrets
        top = doc['hypotheses'][0] if doc['hypotheses'] else None
        if args['record']:
            summary = ('Diagnosis: %s (confidence %.2f) - %s; first action: %s'
                       % (top['pattern'], top['confidence'], top['likely_cause'], top['first_action'])
                       if top else 'Diagnosis: %s' % doc['summary'])
            event = store.event('diagnosis', summary, host=task_vars.get('inventory_hostname'),
                                data={'healthy': doc['healthy'], 'severity_floor': doc['severity_floor'],
                                      'affected_services': doc['affected_services'],
                                      'hypotheses': [dict((k, h[k]) for k in ('rank', 'pattern', 'likely_cause',
                                                                              'confidence', 'evidence', 'first_action'))
                                                     for h in doc['hypotheses'][:5]]})
            store.append(event)
        facts = {'diagnosis': doc}
        raised = None
        if args['raise_severity'] and (doc['severity_floor'] or doc.get('title')) and store.has_incident():
            # The findings may raise the severity (never lower it): incident.json and a `severity` event;
            # a generated title becomes the diagnosis' title.
            try:
                outcome = incident_logic.declare_or_load(
                    store=store, must_exist=True,
                    severity_floor=doc['severity_floor'] or '', severity_floor_reasons=doc['severity_reasons'],
                    auto_title=doc.get('title') or '', host=task_vars.get('inventory_hostname'))
            except ValueError as exc:
                raise AnsibleActionFail(str(exc))
            facts['incident'] = outcome['incident']
            if outcome['severity_changed']:
                raised = outcome['incident']['severity']
        report = [doc['summary']]
        if raised:
            report.append('Severity raised to %s: %s' % (raised, '; '.join(doc['severity_reasons'])))
        for hyp in doc['hypotheses'][:3]:
            report.append('%d. %s (confidence %.2f): %s [evidence: %s]' % (
                hyp['rank'], hyp['pattern'], hyp['confidence'], hyp['likely_cause'], ', '.join(hyp['evidence'])))
            report.append('   first action: %s' % hyp['first_action'])
        result.update(changed=False, diagnosis=doc, report=report, ansible_facts=facts, severity_raised_to=raised, path=target, top=top, healthy=doc['healthy'],
                      severity_floor=doc['severity_floor'] or '', severity_reasons=doc['severity_reasons'],
                      msg=doc['summary'])
        return result
