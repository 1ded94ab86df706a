# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rank live over stale: a signal that is not happening now ranks below one that is.

A finding is *live* when what it reports is going on at probe time (a down container, connection slots held
now, errors of the last requests) and *stale* when it only reports something that happened earlier in the
window and stopped (a slowlog entry minutes old). ``rank_key()`` orders hypotheses by confidence after the
stale penalty, then by how many of their symptoms are failing now, then by the pattern's urgency.
Pure Python, standard library only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from ansible_collections.sre.incident_response.plugins.module_utils import findings as contract
from ansible_collections.sre.incident_response.plugins.module_utils.areas import redis as area_redis

# A signal whose newest event is older than this (seconds before the probe) is not happening now.
LIVE_SECONDS = 120
# What a hypothesis whose every symptom is stale loses.
STALE_PENALTY = 0.3


def _epoch(ts):
    """The finding's ts (ISO 8601, UTC, 'Z') as epoch seconds, or None."""
    try:
        text = str(ts).replace('Z', '+00:00')
        return datetime.datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return None


def newest_event_age(finding):
    """Seconds between the newest event a finding rates and its probe time, when the evidence dates its events
    (redis.slowlog entries, redis.latency events of the window); None when it does not (the finding describes the
    state at probe time)."""
    if finding.get('check') == 'redis.latency':
        events = contract.evidence(finding).get('events')
        ages = [e.get('age_s') for e in events or [] if isinstance(e, dict) and e.get('within_window')
                and isinstance(e.get('age_s'), (int, float))]
        return float(min(ages)) if ages else None
    if finding.get('check') != 'redis.slowlog':
        return None
    now = _epoch(finding.get('ts'))
    entries = contract.evidence(finding).get('entries')
    if now is None or not isinstance(entries, list):
        return None
    times = []
    for entry in entries:
        if isinstance(entry, dict) and not area_redis.is_admin_command(entry.get('command')):
            try:
                times.append(float(entry.get('start_time')))
            except (TypeError, ValueError):
                continue
    if not times:
        return None
    return max(0.0, now - max(times))


def errors_stopped(finding):
    """An app.errors finding whose paths all recovered (the latest requests of each succeed: area app_logs
    recovered_paths) and none fails now: its errors, and the latency of its window, are history."""
    if finding.get('check') != 'app.errors':
        return False
    ev = contract.evidence(finding)
    return bool(ev.get('recovered_paths')) and not ev.get('failing_paths')


def is_live(finding):
    """Is what this (non-ok) finding reports happening now?"""
    if errors_stopped(finding):
        return False
    age = newest_event_age(finding)
    return age is None or age <= LIVE_SECONDS


def live_count(hypothesis, findings):
    """How many of the hypothesis' symptom findings are bad and live now."""
    keys = set(hypothesis.get('symptom_checks') or hypothesis.get('evidence') or [])
    return sum(1 for f in findings if '%s/%s' % (f.get('host'), f.get('check')) in keys
               and contract.is_bad(f) and is_live(f))


def adjust(hypothesis, findings):
    """Lower the confidence of a hypothesis whose every symptom is stale (STALE_PENALTY); returns it."""
    keys = set(hypothesis.get('symptom_checks') or hypothesis.get('evidence') or [])
    bad = [f for f in findings if '%s/%s' % (f.get('host'), f.get('check')) in keys and contract.is_bad(f)]
    if bad and not any(is_live(f) for f in bad):
        ages = [a for a in (newest_event_age(f) for f in bad) if a is not None]
        hypothesis['confidence'] = round(max(0.05, float(hypothesis['confidence']) - STALE_PENALTY), 2)
        hypothesis['likely_cause'] = '%s (stale: %s, not happening now)' % (
            hypothesis['likely_cause'], ('the newest event is %d s old' % int(min(ages))) if ages
            else 'every failing path has recovered')
    return hypothesis


def rank_key(hypothesis, findings, priority):
    """Sort key: confidence (after adjust), then live symptoms, then the pattern's urgency."""
    return (-float(hypothesis['confidence']), -live_count(hypothesis, findings), priority.get(hypothesis['pattern'], 9))
