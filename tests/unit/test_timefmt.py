"""One way to write a duration or a time for a person (plugins/module_utils/timefmt.py), used by the probes'
summaries, the messages, the post-mortem, the report and the console (issue 19: there were three)."""
import ast
import datetime
import glob
import os

import pytest

from ansible_collections.sre.incident_response.plugins.module_utils import timefmt
from ansible_collections.sre.incident_response.plugins.module_utils.areas import health as area_health
from ansible_collections.sre.incident_response.plugins.plugin_utils.comms import comms
from ansible_collections.sre.incident_response.plugins.plugin_utils.render import console

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOW = datetime.datetime(2026, 11, 27, 3, 20, 5, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize('seconds,text', [
    (None, 'unknown'), (0, '0 s'), (42.4, '42 s'), (60, '60 s'), (119, '119 s'), (120, '2 min'), (750, '12 min'),
    (2700, '45 min'),
    (3599, '59 min'), (3900, '1 h 05 min'), (49 * 3600, '2 d 1 h'), (86400 + 3 * 3600 + 59, '1 d 3 h'), (-5, '0 s'),
])
def test_duration(seconds, text):
    assert timefmt.duration(seconds) == text


def test_targets_cadences_phases_and_times():
    assert [timefmt.target(m) for m in (None, 15, 240, 90)] == ['none', '15 min', '4 h', '1 h 30 min']
    assert [timefmt.minutes_words(m) for m in (30, 120, 1440, 2880)] == ['30 minutes', '2 hours', '1 day', '2 days']
    assert [timefmt.elapsed(s) for s in (4.24, 65.0)] == ['4.2 s', '1 min 05 s']
    assert timefmt.utc_minute(NOW) == '2026-11-27 03:20 UTC' and timefmt.hhmm(NOW) == '03:20'
    naive = datetime.datetime(2026, 11, 27, 3, 12)
    assert timefmt.utc_minute(naive) == '2026-11-27 03:12 UTC'


@pytest.mark.parametrize('seconds', [45, 750, 3900, 49 * 3600])
def test_a_probe_summary_and_a_message_write_one_duration_alike(seconds):
    started = NOW - datetime.timedelta(seconds=seconds)
    inc = {'started_at': started.strftime('%Y-%m-%dT%H:%M:%S.000Z')}
    assert comms.duration(inc, NOW) == timefmt.duration(seconds)
    container = {'Name': '/app-backend', 'RestartCount': 0,
                 'State': {'Running': True, 'Status': 'running', 'StartedAt': started.strftime('%Y-%m-%dT%H:%M:%SZ')}}
    dummy, summary = area_health.evaluate_container(container, now=NOW)
    assert 'up %s' % timefmt.duration(seconds) in summary, summary


def test_durations_are_formatted_in_one_place():
    """No module of the collection keeps a duration formatter of its own (human_duration, fmt_duration, _seconds)."""
    offenders = []
    for path in glob.glob(os.path.join(ROOT, 'plugins', '**', '*.py'), recursive=True):
        if path.endswith(os.path.join('module_utils', 'timefmt.py')):
            continue
        with open(path, encoding='utf-8') as handle:
            tree = ast.parse(handle.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name in ('human_duration', 'fmt_duration', 'fmt_minutes',
                                                                   'fmt_target'):
                offenders.append('%s: %s' % (os.path.relpath(path, ROOT), node.name))
    assert not offenders, offenders
    assert console.timefmt is timefmt
