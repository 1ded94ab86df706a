"""Nothing a person wrote is overwritten (issue 10): post-mortems, generate-incident-report.py, runbooks."""
import os
import subprocess
import sys

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, 'scripts', 'generate-incident-report.py')


def test_write_rendered_keeps_an_edited_file_and_writes_beside_it(tmp_path):
    dest = str(tmp_path / 'postmortem-2026-12-01.md')
    assert files.write_rendered(dest, 'v1\n')['status'] == 'created'
    assert open(files.rendered_hash_path(dest)).read().endswith('  postmortem-2026-12-01.md\n')
    assert files.write_rendered(dest, 'v1\n')['status'] == 'unchanged'
    assert files.write_rendered(dest, 'v2\n')['status'] == 'updated'  # still ours: re-rendered
    with open(dest, 'a') as handle:
        handle.write('the root cause, written by a person\n')
    out = files.write_rendered(dest, 'v3\n')
    assert out['status'] == 'edited' and out['path'] == str(tmp_path / 'postmortem-2026-12-01.new.md')
    assert open(dest).read() == 'v2\nthe root cause, written by a person\n'
    assert open(out['path']).read() == 'v3\n'
    assert files.write_rendered(dest, 'v3\n')['changed'] is False


def test_a_file_without_sidecar_is_a_persons_unless_identical(tmp_path):
    dest = tmp_path / 'db-runbook.md'
    dest.write_text('written by hand\n')
    out = files.write_rendered(str(dest), 'rendered\n')
    assert out['status'] == 'edited' and dest.read_text() == 'written by hand\n'
    same = tmp_path / 'redis-runbook.md'
    same.write_text('rendered\n')
    assert files.write_rendered(str(same), 'rendered\n')['status'] == 'unchanged'
    assert os.path.exists(files.rendered_hash_path(str(same)))


def _report(out_dir, title, start='2024-01-15T14:30:00Z', end='2024-01-15T15:15:00Z'):
    proc = subprocess.run([sys.executable, SCRIPT, '--title', title, '--severity', 'SEV2', '--start-time', start,
                           '--end-time', end, '--output-dir', str(out_dir)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_report_script_two_incidents_one_day_two_files_and_edits_kept(tmp_path):
    _report(tmp_path, 'Database connection pool exhaustion')
    first = tmp_path / 'postmortem-2024-01-15.md'
    text = first.read_text()
    _report(tmp_path, 'Redis full', start='2024-01-15T18:00:00Z', end='2024-01-15T18:30:00Z')
    docs = sorted(p.name for p in tmp_path.glob('postmortem-*.md'))
    assert len(docs) == 2, docs
    assert first.read_text() == text
    assert 'Redis full' in [p for p in tmp_path.glob('postmortem-*.md') if p != first][0].read_text()
    # same minute, other title: still two incidents
    _report(tmp_path, 'Disk full')
    assert len(list(tmp_path.glob('postmortem-*.md'))) == 3
    # an edited report is never replaced
    first.write_text(text + '\nReviewed by the team.\n')
    out = _report(tmp_path, 'Database connection pool exhaustion')
    assert first.read_text().endswith('Reviewed by the team.\n')
    assert 'kept' in out and (tmp_path / 'postmortem-2024-01-15.new.md').exists()
