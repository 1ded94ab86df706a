# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The severity table of the practice, as data. One source for rules, comms and post-mortems."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

SEVERITIES = ('SEV1', 'SEV2', 'SEV3', 'SEV4')

SEVERITY_TABLE = {
    'SEV1': {
        'priority': 'P1',
        'impact': 'Complete outage, all users affected',
        'examples': 'Service down, data loss, security breach',
        'response_minutes': 5,
        'update_minutes': 15,
        'escalation': ['oncall', 'engineering_manager'],
        'escalation_text': 'Page the on-call engineer and the engineering manager immediately',
        'page': True,
        'channel': '#incidents',
        'status_page': True,
        'postmortem': 'required within 48 hours',
    },
    'SEV2': {
        'priority': 'P2',
        'impact': 'Major degradation, most users affected',
        'examples': 'Core feature broken, severe latency',
        'response_minutes': 15,
        'update_minutes': 30,
        'escalation': ['oncall'],
        'notify': ['engineering_manager'],
        'escalation_text': 'Page on-call, notify the engineering manager',
        'page': True,
        'channel': '#incidents',
        'status_page': True,
        'postmortem': 'required within 48 hours',
    },
    'SEV3': {
        'priority': 'P3',
        'impact': 'Partial degradation, some users affected',
        'examples': 'Non-critical feature broken, intermittent errors',
        'response_minutes': 60,
        'update_minutes': 120,
        'escalation': [],
        'notify': ['oncall'],
        'escalation_text': 'Notify on-call via Slack',
        'page': False,
        'channel': '#incidents-low',
        'status_page': False,
        'postmortem': 'lightweight review',
    },
    'SEV4': {
        'priority': 'P4',
        'impact': 'Minor issue, few users affected',
        'examples': 'Cosmetic bug, edge-case error',
        'response_minutes': 240,
        'update_minutes': 1440,
        'escalation': [],
        'notify': [],
        'escalation_text': 'Create a ticket, handle in working hours',
        'page': False,
        'channel': '#incidents-low',
        'status_page': False,
        'postmortem': 'not required',
    },
}


def normalize(severity):
    """Accept SEV1..SEV4, P1..P4, 1..4 (any case); return SEVn or raise ValueError."""
    text = str(severity).strip().upper()
    if text in SEVERITIES:
        return text
    if text.startswith('P') and text[1:] in ('1', '2', '3', '4'):
        return 'SEV' + text[1:]
    if text in ('1', '2', '3', '4'):
        return 'SEV' + text
    raise ValueError('severity %r is not one of SEV1, SEV2, SEV3, SEV4 (or P1..P4)' % (severity,))


def info(severity):
    sev = normalize(severity)
    out = dict(SEVERITY_TABLE[sev])
    out['severity'] = sev
    return out


def more_severe(a, b):
    """The more severe of two severities (SEV1 is the most severe)."""
    return min(normalize(a), normalize(b))
