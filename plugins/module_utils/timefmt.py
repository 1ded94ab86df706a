# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the collection writes a duration or a time for a person: probe summaries, messages, post-mortems, the
report and the console all use these, so one incident reads the same everywhere.

- duration(seconds): 42 s, 95 s, 12 min, 1 h 05 min, 1 d 3 h (unknown for None; never negative)
- target(minutes): a response target or cadence: 15 min, 4 h, else as duration()
- minutes_words(minutes): a cadence in words for messages: 30 minutes, 2 hours, 1 day
- elapsed(seconds): the run time of a phase: 4.2 s, 1 min 05 s
- utc_minute(dt): 2026-11-27 03:12 UTC;  hhmm(dt): 03:12 (UTC)

- utcnow(), isoformat(dt): the machine-readable time of the incident's files (UTC ISO 8601, ms, Z); parse_ts(text)
Pure Python (standard library only): probes on managed hosts and the controller import it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime


def duration(seconds):
    """42 s, 95 s (seconds below two minutes), 12 min, 1 h 05 min, 1 d 3 h; 'unknown' for None; never negative."""
    if seconds is None:
        return 'unknown'
    seconds = int(round(max(float(seconds), 0)))
    if seconds < 120:
        return '%d s' % seconds
    minutes = seconds // 60
    if minutes < 60:
        return '%d min' % minutes
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return '%d h %02d min' % (hours, minutes)
    days, hours = divmod(hours, 24)
    return '%d d %d h' % (days, hours)


def target(minutes):
    """A target or cadence in minutes: 15 min, 4 h, 1 h 30 min; 'none' for None."""
    if minutes is None:
        return 'none'
    if minutes < 60:
        return '%d min' % minutes
    if minutes % 60 == 0:
        return '%d h' % (minutes // 60)
    return duration(minutes * 60)


def minutes_words(minutes):
    """A cadence in words, for messages: 30 minutes, 2 hours, 1 day."""
    minutes = int(minutes)
    if minutes % 1440 == 0:
        days = minutes // 1440
        return '%d day%s' % (days, '' if days == 1 else 's')
    if minutes % 60 == 0:
        hours = minutes // 60
        return '%d hour%s' % (hours, '' if hours == 1 else 's')
    return '%d minutes' % minutes


def elapsed(seconds):
    """The run time of a phase: 4.2 s below a minute, else 1 min 05 s."""
    if seconds < 60:
        return '%.1f s' % seconds
    return '%d min %02d s' % (int(seconds) // 60, int(seconds) % 60)


def _utc(dt):
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.astimezone(datetime.timezone.utc)


def utc_minute(dt):
    """2026-11-27 03:12 UTC"""
    return _utc(dt).strftime('%Y-%m-%d %H:%M UTC')


def hhmm(dt):
    """03:12 (UTC)"""
    return _utc(dt).strftime('%H:%M')


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def isoformat(dt=None):
    """UTC ISO 8601 with a Z suffix and millisecond precision."""
    dt = dt or utcnow()
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    dt = dt.astimezone(datetime.timezone.utc)
    return dt.strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (dt.microsecond // 1000)


def parse_ts(value):
    """Parse an ISO 8601 timestamp (Z or offset, with or without fraction) to an aware UTC datetime."""
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    text = str(value).strip()
    if text.endswith('Z') or text.endswith('z'):
        text = text[:-1] + '+00:00'
    dt = datetime.datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.astimezone(datetime.timezone.utc)
