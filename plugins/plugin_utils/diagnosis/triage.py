# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What triage decides once the diagnosis is known, and the summary it prints (pure logic, unit-tested).

decide(): whom to tell (a healthy lab that nobody declared notifies no one), which messages
(INCIDENT DECLARED the first time, an UPDATE afterwards, the status page when the severity
calls for it), and whether to recommend the rollback now (an error spike after a deploy,
confident enough). summary(): the lines the on-call reads at the end of the run.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.sre.incident_response.plugins.module_utils import findings as contract

ROLLBACK_PATTERN = 'error_spike_after_deploy'
FILES = '{incident.json, timeline.jsonl, findings.json, diagnosis.json, messages/, evidence/}'
NOT_OK = ('crit', 'warn', 'unknown')


def _top(diagnosis):
    hyps = (diagnosis or {}).get('hypotheses') or []
    return hyps[0] if hyps else None


def decide(diagnosis, incident, deliver=None, mitigate_confidence=0.8, announced=False):
    """{'deliver', 'mitigate', 'kinds', 'status'} for the initial communication of a triage.

    deliver: None means the default - tell people unless the run found the system healthy and
    nobody gave a severity (explicitly or by impact facts); True/False is the caller's choice.
    """
    diagnosis = diagnosis or {}
    incident = incident or {}
    if deliver is None:
        deliver = not (diagnosis.get('healthy') is True
                       and incident.get('severity_source', 'default') not in ('explicit', 'impact'))
    top = _top(diagnosis)
    mitigate = bool(top and top.get('pattern') == ROLLBACK_PATTERN
                    and float(top.get('confidence') or 0) >= float(mitigate_confidence))
    policy = incident.get('policy') or {}
    kinds = ['update' if announced else 'declared'] + (['statuspage'] if _bool(policy.get('status_page')) else [])
    return {'deliver': bool(deliver), 'mitigate': mitigate, 'kinds': kinds, 'status': 'Investigating'}


def _bool(value):
    if isinstance(value, str):
        return value.strip().lower() in ('1', 'true', 'yes', 'on')
    return bool(value)


def finding_lines(findings, limit=8):
    return contract.finding_lines(findings, NOT_OK, limit)


def hypothesis_lines(hypotheses):
    """One line per hypothesis; one that the do-no-harm rules (diagnosis/safety.py) turned into an escalation
    says whom to escalate to and what fails, after its investigation command."""
    return ['%s. %s (confidence %.2f): %s [evidence: %s] -> first action: %s%s' % (
        hyp.get('rank', index), hyp.get('pattern'), float(hyp.get('confidence') or 0), hyp.get('likely_cause'),
        ', '.join(hyp.get('evidence') or []), hyp.get('first_action'),
        (' -> ESCALATE: %s' % hyp['escalation']) if hyp.get('escalation') else '')
        for index, hyp in enumerate(hypotheses or [], 1)]


def summary(incident_id, incident, diagnosis, findings=None, incident_path='', inventory=None):
    """The end-of-triage summary: severity and policy, what is affected, the top hypotheses, what to run next."""
    incident = incident or {}
    diagnosis = diagnosis or {}
    policy = incident.get('policy') or {}
    severity = str(incident.get('severity') or 'SEV?')
    lines = ['Incident %s - %s (%s; updates every %s min in %s)' % (
        incident_id, severity, policy.get('escalation_text', ''), policy.get('update_minutes', '?'),
        policy.get('channel', ''))]
    healthy = diagnosis.get('healthy') is True
    if healthy:
        lines.append('HEALTHY: %s' % diagnosis.get('summary', ''))
    else:
        lines.append('Affected services: %s' % (', '.join(diagnosis.get('affected_services') or []) or 'none identified'))
    unreachable = sorted(set(str(f.get('host')) for f in findings or []
                             if isinstance(f, dict) and f.get('check') == 'host.reachability' and f.get('status') != 'ok'))
    if unreachable:
        lines.append('Not probed, unreachable by Ansible (host.reachability): %s' % ', '.join(unreachable))
    hyps = diagnosis.get('hypotheses') or []
    lines.extend(hypothesis_lines(hyps[:3]))
    if not hyps and not healthy:
        lines.append('No quick-reference pattern matched; findings not ok:')
        lines.extend(finding_lines(findings))
    inventory = inventory or (diagnosis.get('context') or {}).get('inventory') or 'inventory'
    lines.append('Files: %s/%s' % (incident_path, FILES))
    lines.append('Next: ansible-playbook playbooks/sev%s.yml -i %s -e incident_id=%s  '
                 '(or playbooks/respond.yml to triage and respond in one command)' % (severity[-1], inventory, incident_id))
    return lines


def stats(incident_id, incident, diagnosis):
    """What triage publishes for AWX workflows (set_stats)."""
    top = _top(diagnosis) or {}
    return {'incident_id': incident_id, 'severity': (incident or {}).get('severity'),
            'healthy': (diagnosis or {}).get('healthy') is True,
            'top_pattern': top.get('pattern') or '', 'first_action': top.get('first_action') or '',
            'remediation_action': top.get('action') or '', 'service': top.get('service') or ''}
