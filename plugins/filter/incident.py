# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters: severity classification and quick-reference pattern helpers for playbooks and templates.

- severity_info: the severity table's row (response time, update cadence, escalation, channel, status page).
- severity_normalize: SEV1..SEV4 from SEVn, Pn or n.
- severity_max: the more severe of two severities.
- severity_from_impact: the severity impact facts imply through the rules ('' when none decides).
- severity_from_findings: the severity floor findings imply, given the backend hosts.
- pattern_info: symptom of a quick-reference pattern.
- hypothesis_lines: one printable line per hypothesis of a diagnosis.

Example: "{{ (incident.severity | sre.incident_response.severity_info).update_minutes }}"
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import classify
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import diagnosis
from ansible_collections.sre.incident_response.plugins.module_utils.findings import finding_lines as contract_finding_lines
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import severity as sevtable


def _wrap(func):
    def inner(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ValueError as exc:
            raise AnsibleFilterError(str(exc))
    inner.__name__ = func.__name__
    return inner


def severity_info(severity):
    return sevtable.info(severity)


def severity_normalize(severity):
    return sevtable.normalize(severity)


def severity_max(a, b):
    if not a:
        return sevtable.normalize(b)
    if not b:
        return sevtable.normalize(a)
    return sevtable.more_severe(a, b)


def severity_from_impact(facts, thresholds=None):
    sev, dummy = classify.classify_impact(facts, thresholds)
    return sev or ''


def severity_from_findings(findings, backends=None):
    sev, dummy = classify.severity_from_findings(findings, backends)
    return sev or ''


def pattern_info(pattern):
    if pattern not in diagnosis.SYMPTOMS:
        raise ValueError('pattern %r is not one of %s' % (pattern, ', '.join(diagnosis.PATTERNS)))
    return {'pattern': pattern, 'symptom': diagnosis.SYMPTOMS[pattern]}


def hypothesis_lines(hypotheses):
    lines = []
    for index, hyp in enumerate(hypotheses or [], 1):
        lines.append('%s. %s (confidence %.2f): %s [evidence: %s] -> first action: %s' % (
            hyp.get('rank', index), hyp.get('pattern'), float(hyp.get('confidence') or 0), hyp.get('likely_cause'),
            ', '.join(hyp.get('evidence') or []), hyp.get('first_action')))
    return lines


def finding_lines(findings, statuses=('crit', 'warn', 'unknown'), limit=8):
    """Printable lines of the findings that are not ok, worst first: 'CRIT host/check: summary'."""
    return contract_finding_lines(findings, statuses, limit)


def hypothesis_evidence(doc, action, service=None):
    """The symptom checks ({host, check}) of the hypothesis an action came from (see diagnosis.evidence_of)."""
    return diagnosis.evidence_of(doc, action, service)


class FilterModule(object):
    def filters(self):
        return dict((f.__name__, _wrap(f)) for f in (
            severity_info, severity_normalize, severity_max, severity_from_impact, severity_from_findings,
            pattern_info, hypothesis_lines, finding_lines, hypothesis_evidence))
