"""scripts/generate-incident-report.py: the post-mortem from arguments alone, and clear rejections (exit 2)."""
import os
import subprocess
import sys

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.render.postmortem import SECTIONS

from test_postmortem import ACTION_ITEM_RE, TIMELINE_RE, parse_sections

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, 'scripts', 'generate-incident-report.py')
GOOD = ['--title', 'Database connection pool exhaustion', '--severity', 'SEV2',
        '--start-time', '2024-01-15T14:30:00Z', '--end-time', '2024-01-15T15:15:00Z']


def run(args, cwd):
    # run from elsewhere with a bare interpreter: the script finds the collection on its own
    return subprocess.run([sys.executable, SCRIPT] + args, cwd=str(cwd), capture_output=True, text=True, timeout=60, check=False)


def test_practice_example_writes_the_full_structure(tmp_path):
    out = tmp_path / 'post-mortems'
    proc = run(GOOD + ['--output-dir', str(out), '--impact', 'Checkout failed for most users',
                       '--acknowledged-time', '2024-01-15T14:34:00Z', '--mitigated-time', '2024-01-15T14:58:00Z'],
               tmp_path)
    assert proc.returncode == 0, proc.stderr
    path = out / 'postmortem-2024-01-15.md'
    assert str(path) in proc.stdout
    title, sections = parse_sections(path.read_text())
    assert title == 'Post-mortem: Database connection pool exhaustion'
    assert list(sections) == list(SECTIONS)
    assert all(blocks for blocks in sections.values())
    summary = ' | '.join(b[1] for b in sections['Summary'])
    for needle in ('**Date:** 2024-01-15', '**Severity:** SEV2 (P2)', '**Duration:** 45 min',
                   '**Impact:** Checkout failed for most users', '**Start:** 2024-01-15 14:30 UTC',
                   '**End:** 2024-01-15 15:15 UTC'):
        assert needle in summary
    timeline = [b[1] for b in sections['Timeline']]
    assert [line for line in timeline if TIMELINE_RE.match(line)][0].startswith('14:30 - ')
    assert timeline[-1] == '15:15 - Incident resolved'
    response = ' '.join(b[1] for b in sections['Response times'])
    assert 'Time to acknowledge: 4 min' in response and '- met' in response
    assert 'Time to mitigate: 28 min' in response and 'Time to resolve: 45 min' in response
    assert all(ACTION_ITEM_RE.match(b[1]) for b in sections['Action items'])
    assert 'within 48 hours' in sections['Post-mortem requirement'][0][1]
    assert '--root-cause' in ' '.join(b[1] for b in sections['Root cause'])
    # same arguments, same bytes: the second run changes nothing
    again = run(GOOD + ['--output-dir', str(out), '--impact', 'Checkout failed for most users',
                        '--acknowledged-time', '2024-01-15T14:34:00Z', '--mitigated-time', '2024-01-15T14:58:00Z'],
                tmp_path)
    assert again.returncode == 0 and again.stdout.startswith('unchanged')


def test_sev3_and_root_cause(tmp_path):
    proc = run(['--title', 'Slow products', '--severity', 'p3', '--start-time', '2024-03-01T23:50:00+00:00',
                '--end-time', '2024-03-02T01:05:00Z', '--output-dir', str(tmp_path), '--root-cause', 'Missing index'],
               tmp_path)
    assert proc.returncode == 0, proc.stderr
    _title, sections = parse_sections((tmp_path / 'postmortem-2024-03-01.md').read_text())
    assert sections['Root cause'] == [('paragraph', 'Missing index')]
    assert 'lightweight review' in sections['Post-mortem requirement'][0][1]
    assert '**Duration:** 1 h 15 min' in ' '.join(b[1] for b in sections['Summary'])


@pytest.mark.parametrize('change,message', [
    ({'--severity': 'SEV9'}, "--severity 'SEV9' is unknown: use one of SEV1, SEV2, SEV3, SEV4"),
    ({'--end-time': '2024-01-15T14:00:00Z'}, '--end-time (2024-01-15T14:00:00Z) must be after --start-time'),
    ({'--end-time': '2024-01-15T14:30:00Z'}, 'must be after --start-time'),
    ({'--start-time': 'yesterday'}, "--start-time 'yesterday' is not an ISO 8601 time"),
    ({'--title': '  '}, '--title must not be empty'),
    ({'--severity': None}, 'the following arguments are required: --severity'),
])
def test_bad_arguments_exit_2_with_a_clear_message(tmp_path, change, message):
    args = dict(zip(GOOD[::2], GOOD[1::2]))
    args.update(change)
    argv = [item for key, value in args.items() if value is not None for item in (key, value)]
    proc = run(argv + ['--output-dir', str(tmp_path / 'out')], tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr, proc.stderr
    assert not (tmp_path / 'out').exists()


def test_times_outside_the_window_are_rejected(tmp_path):
    proc = run(GOOD + ['--output-dir', str(tmp_path), '--mitigated-time', '2024-01-15T16:00:00Z'], tmp_path)
    assert proc.returncode == 2 and '--mitigated-time (2024-01-15T16:00:00Z) must lie between' in proc.stderr
