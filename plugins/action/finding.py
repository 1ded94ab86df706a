# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: record findings in the incident (documentation in plugins/modules/finding.py).

Runs on the controller: normalizes the findings, merges them into findings.json
(the latest per host and check), writes evidence/<host>/ files and appends one
`finding` event per finding to timeline.jsonl. Everything is redacted first, keys as well
as values (request paths, application names... are keys of the evidence), and so is the
result the task returns.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.files import (
    isoformat,
    make_event,
    normalize_finding,
    safe_name,
)
from ansible_collections.sre.incident_response.plugins.module_utils.findings import counts
from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import combine
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore, task_redactor


def prepare(findings, default_host, ts=None):
    """Normalize (host defaults to the task's host), then one finding per (host, check)."""
    ts = ts or isoformat()
    out = []
    for item in findings or []:
        if not isinstance(item, dict):
            raise ValueError('a finding must be a dict, got %s' % type(item).__name__)
        item = dict(item)
        item.setdefault('host', default_host)
        if not item.get('host'):
            item['host'] = default_host
        out.append(normalize_finding(item, ts=ts))
    return combine(out)


def from_probe_results(hosts, hostvars, var):
    """Findings and evidence of every host's registered `probe` result; an unreachable host is a finding.

    Returns (findings, {host: {file: content}}). A host without the result (it did not run the task)
    adds nothing; a failed probe task is an `unknown` finding naming the error.
    """
    findings, evidence = [], {}
    for host in hosts:
        try:
            res = hostvars[host].get(var)
        except (KeyError, AttributeError):
            res = None
        if not isinstance(res, dict) or res.get('skipped'):
            continue
        message = ' '.join(str(res.get('msg') or 'no answer').split())
        if res.get('unreachable'):
            findings.append({'check': 'host.reachability', 'host': host, 'service': None, 'status': 'crit',
                             'summary': 'host unreachable by Ansible: %s' % message[:240],
                             'evidence': {'error': message}})
            continue
        if res.get('failed'):
            findings.append({'check': 'health.container', 'host': host, 'service': None, 'status': 'unknown',
                             'summary': 'probe failed: %s' % message[:300], 'evidence': {'error': message}})
            continue
        for item in res.get('findings') or []:
            if isinstance(item, dict):
                item = dict(item)
                item.setdefault('host', host)
                findings.append(item)
        if res.get('evidence_files'):
            evidence[host] = res['evidence_files']
    return findings, evidence


def evidence_files(evidence, findings):
    """(host, filename, text) of the evidence argument plus one <check>.json per finding."""
    files = []
    for finding in findings:
        if finding.get('evidence') not in (None, {}, []):
            files.append((finding['host'], '%s.json' % safe_name(finding['check']), finding['evidence']))
    for host, items in (evidence or {}).items():
        if not isinstance(items, dict):
            raise ValueError('evidence must map host -> {filename: text or data}, got %s for %s'
                             % (type(items).__name__, host))
        for name, content in items.items():
            files.append((str(host), safe_name(name), content))
    return files


def finding_event(incident_id, finding):
    summary = '%s %s: %s' % (finding['check'], finding['status'].upper(), finding['summary'])
    return make_event(incident_id, 'finding', summary, host=finding['host'], ts=finding['ts'],
                      data={'check': finding['check'], 'service': finding.get('service'), 'status': finding['status'],
                            'key': '%s/%s' % (finding['host'], finding['check'])})


class ActionModule(ActionBase):
    """Record findings on the controller; changed is always false (it records, it changes no target)."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    ARGSPEC = dict(
        findings=dict(type='list', elements='raw', default=[]),
        evidence=dict(type='dict', default={}),
        probe_var=dict(type='str'),
        hosts=dict(type='list', elements='str'),
        incident_id=dict(type='str'),
        incident_dir=dict(type='path'),
        redact_patterns=dict(type='list', elements='str', default=[]),
    )

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGSPEC)
        result['changed'] = False
        if args['probe_var']:
            hosts = args['hosts'] if args['hosts'] is not None else task_vars.get('ansible_play_hosts_all') or []
            more, evidence = from_probe_results(hosts, task_vars.get('hostvars') or {}, args['probe_var'])
            args['findings'] = list(args['findings']) + more
            args['evidence'] = dict(args['evidence'], **evidence)
        try:
            findings = prepare(args['findings'], task_vars.get('inventory_hostname'))
        except ValueError as exc:
            raise AnsibleActionFail('invalid finding: %s' % exc)
        # Redacted before anything else: the result is printed at -v and registered, recorded or not.
        redactor = task_redactor(task_vars, self._templar, args['redact_patterns'])
        findings = [redactor.data(f) for f in findings]
        store = IncidentStore.resolve(args, task_vars, templar=self._templar)
        result['counts'] = counts(findings)
        if store is None:
            result.update(findings=findings, recorded=False, skipped=True,
                          msg='no incident_id known (run the incident role first, or give incident_id): '
                              '%d findings not recorded' % len(findings))
            return result
        incident_id, path = store.incident_id, store.path
        try:
            items = evidence_files(args['evidence'], findings)
        except ValueError as exc:
            raise AnsibleActionFail(str(exc))
        try:
            written = store.write_evidence(items, redactor)
            store.record_findings(findings, [finding_event(incident_id, f) for f in findings], redactor)
        except OSError as exc:
            raise AnsibleActionFail('could not record findings in %s: %s' % (path, exc))
        worst = [f for f in findings if f['status'] != 'ok']
        result.update(
            findings=findings, recorded=True, incident_id=incident_id, incident_path=path,
            findings_file=store.findings_path, evidence_written=written,
            msg='%d findings recorded in %s (%s)%s' % (
                len(findings), incident_id, ', '.join('%d %s' % (v, k) for k, v in result['counts'].items() if v),
                ''.join('\n%s/%s %s: %s' % (f['host'], f['check'], f['status'].upper(), f['summary']) for f in worst)))
        return result
