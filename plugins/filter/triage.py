# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters: the decisions and the summary of a triage (logic in plugin_utils/diagnosis/triage.py).

- triage_decision: whom to tell, which messages, whether to recommend the rollback now.
- triage_summary: the lines printed at the end of a triage.
- triage_stats: what triage publishes for AWX workflows.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import triage


def triage_decision(diagnosis, incident, deliver=None, mitigate_confidence=0.8, announced=False):
    try:
        return triage.decide(diagnosis, incident, deliver=deliver, mitigate_confidence=float(mitigate_confidence),
                             announced=bool(announced))
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError('triage_decision: %s' % exc)


def triage_summary(diagnosis, incident_id, incident, findings=None, incident_path='', inventory=None):
    return triage.summary(incident_id, incident, diagnosis, findings=findings, incident_path=incident_path,
                          inventory=inventory)


def triage_stats(diagnosis, incident_id, incident):
    return triage.stats(incident_id, incident, diagnosis)


class FilterModule(object):
    def filters(self):
        return {'triage_decision': triage_decision, 'triage_summary': triage_summary, 'triage_stats': triage_stats}
