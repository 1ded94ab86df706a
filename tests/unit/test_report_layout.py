"""report.html's layout ends whatever the data: marks placed side by side, axis ticks, evidence files.

Row 6 of issue 18: four messages sent together put the first diamond at x = 248.4; the old layout stepped the next
one right until it stood 15 px away, and 263.4 - 248.4 == 14.999999999999972, so it never did (100 % CPU, for
playbooks/report.yml and resolve.yml alike). Each test runs under a SIGALRM deadline: a hang fails, it does not
hang the suite.
"""
import contextlib
import json
import signal

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.render import report
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor

T0 = '2026-11-27T03:10:00.000Z'


@contextlib.contextmanager
def deadline(seconds):
    def expired(signum, frame):
        raise TimeoutError('still running after %d s: a layout loop that does not end' % seconds)
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def ev(ts, kind, summary='x', **data):
    return {'ts': ts, 'incident_id': 'INC-L', 'kind': kind, 'host': 'app-backend', 'summary': summary, 'data': data}


def incident(tmp_path, events, started=T0):
    path = tmp_path / 'INC-L'
    path.mkdir()
    (path / 'incident.json').write_text(json.dumps({'id': 'INC-L', 'title': 't', 'severity': 'SEV2', 'started_at': started}))
    (path / 'timeline.jsonl').write_text(''.join(json.dumps(e) + '\n' for e in events))
    return str(path)


def build(path):
    with deadline(10):
        return report.build(path, redactor=Redactor())


# The axis runs from 03:10:00 to 03:26:40 plus 3 % (1030 s over 890 px from x = 170): an event at 03:11:30.733
# stands at x = 248.4, one at 03:11:21.474 at x = 240.4 (where x + 16 has the same rounding trap).
AT_248_4 = '2026-11-27T03:11:30.733Z'
AT_240_4 = '2026-11-27T03:11:21.474Z'
RESOLVED = '2026-11-27T03:26:40.000Z'


def test_four_messages_sent_together_stand_side_by_side(tmp_path):
    events = [ev(T0, 'declared')] + [ev(AT_248_4, 'comms', 'message %d' % i) for i in range(4)] + [ev(RESOLVED, 'resolved')]
    model = build(incident(tmp_path, events))
    xs = [m['x'] for m in model['timeline']['messages']]
    assert xs[0] == 248.4 and len(xs) == 4
    assert all(b - a >= report.MESSAGE_GAP - 0.05 for a, b in zip(xs, xs[1:])), xs
    assert xs == sorted(xs) and xs[-1] <= 248.4 + 3 * report.MESSAGE_GAP + 0.05


def test_a_plan_approval_action_verify_chain_at_one_instant_stands_side_by_side(tmp_path):
    events = [ev(T0, 'declared')] + [ev(AT_240_4, kind) for kind in report.CHAIN] + [ev(RESOLVED, 'resolved')]
    model = build(incident(tmp_path, events))
    xs = [c['x'] for c in model['timeline']['chain']]
    assert xs[0] == 240.4 and [c['kind'] for c in model['timeline']['chain']] == list(report.CHAIN)
    assert all(b - a >= report.CHAIN_GAP - 0.05 for a, b in zip(xs, xs[1:])), xs


@pytest.mark.parametrize('count', [50, 400])
def test_many_marks_at_one_instant(tmp_path, count):
    events = [ev(T0, 'declared')] + [ev(AT_248_4, 'comms') for dummy in range(count)] + [ev(AT_240_4, 'action')] * count
    model = build(incident(tmp_path, events))
    assert len(model['timeline']['messages']) == count and len(model['timeline']['chain']) == count


def test_ticks_stay_few_over_any_span(tmp_path):
    """A time stamp centuries away (a bad clock, a crafted line) gives a wide axis, not millions of ticks."""
    events = [ev('1970-01-01T00:00:01.000Z', 'note'), ev(T0, 'declared'), ev('9999-12-31T23:59:59.000Z', 'note')]
    model = build(incident(tmp_path, events, started='1970-01-01T00:00:01.000Z'))
    ticks = model['timeline']['ticks']
    assert 1 <= len(ticks) <= 9 and [t['x'] for t in ticks] == sorted(t['x'] for t in ticks)


def test_evidence_is_read_only_from_the_evidence_directory(tmp_path):
    """Host and check names come from the incident's files: ../ or a symlink must not read a file elsewhere."""
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'secret.json').write_text('{"leaked": "outside-the-incident"}')
    (outside / 'link.txt').write_text('read through a symlink')
    events = [ev(T0, 'declared'),
              dict(ev(AT_240_4, 'finding', status='crit', check='secret'), host='../../outside'),
              dict(ev(AT_240_4, 'finding', status='crit', check='../../../outside/secret'), host='h1'),
              dict(ev(AT_240_4, 'finding', status='crit', check='link'), host='h2'),
              dict(ev(AT_240_4, 'finding', status='warn', check='own'), host='h3')]
    path = incident(tmp_path, events)
    (tmp_path / 'INC-L' / 'evidence' / 'h2').mkdir(parents=True)
    (tmp_path / 'INC-L' / 'evidence' / 'h2' / 'link.txt').symlink_to(outside / 'link.txt')
    (tmp_path / 'INC-L' / 'evidence' / 'h3').mkdir(parents=True)
    (tmp_path / 'INC-L' / 'evidence' / 'h3' / 'own.txt').write_text('the finding\'s own evidence')
    details = dict((d['key'], d) for d in build(path)['details'])
    shown = json.dumps(details)
    assert 'outside-the-incident' not in shown and 'read through a symlink' not in shown
    assert details['h3/own']['evidence'] == "the finding's own evidence"
    assert details['h3/own']['evidence_file'] == 'evidence/h3/own.txt'
