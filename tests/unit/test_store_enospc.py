"""A full disk never leaves `.tmp` files or half files in the incident directory, and says which file it could not write.

Every atomic write of the store (findings.json, diagnosis.json, incident.json, evidence, rendered documents and
their sidecars) goes through incident_files.write_text_atomic: temporary file, fsync, rename; on any error the
temporary file is removed and StoreWriteError (an OSError with the errno) names the file. A failed timeline append
is cut off, so the timeline keeps whole lines. ENOSPC is simulated three ways: os.fsync raising it, a temporary file
whose descriptor is /dev/full (the kernel's own ENOSPC on write), and a write that stops halfway.
"""
import datetime
import errno
import json
import os
import subprocess
import tempfile

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor
from ansible_collections.sre.incident_response.plugins.plugin_utils import incident_store as store_mod

FINDING = {'check': 'host.disk', 'host': 'app-backend', 'status': 'crit', 'summary': 'log volume 100 % used'}


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def fsync_full(monkeypatch):
    monkeypatch.setattr(os, 'fsync', enospc)


@pytest.fixture
def dev_full(monkeypatch):
    """Temporary files whose descriptor writes to /dev/full: every write fails with ENOSPC, from the kernel."""
    real = tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        fd, name = real(*args, **kwargs)
        full = os.open('/dev/full', os.O_WRONLY)
        os.dup2(full, fd)
        os.close(full)
        return fd, name

    monkeypatch.setattr(tempfile, 'mkstemp', mkstemp)


def leftovers(directory):
    """Files in the incident directory (recursively) that are neither expected contents nor lock files."""
    out = []
    for base, dummy, names in os.walk(str(directory)):
        out += [os.path.relpath(os.path.join(base, n), str(directory)) for n in names if '.tmp' in n]
    return out


def assert_clear(exc, path):
    assert isinstance(exc, OSError) and exc.errno == errno.ENOSPC
    text = str(exc)
    assert str(path) in text and 'No space left on device' in text and 'full' in text, text


def seeded(tmp_path):
    store = IncidentStore('INC-T-ENOSPC', str(tmp_path / 'INC-T-ENOSPC'))
    files.ensure_dir(store.path)
    files.write_json_atomic(store.file(files.FINDINGS), [dict(FINDING, status='ok', ts='2026-12-01T00:00:00.000Z')])
    return store


@pytest.mark.parametrize('failure', ['fsync_full', 'dev_full'])
def test_json_files_keep_their_content_and_leave_no_tmp(tmp_path, request, failure):
    store = seeded(tmp_path)
    before = open(store.file(files.FINDINGS)).read()
    request.getfixturevalue(failure)
    with pytest.raises(OSError) as err:
        files.update_findings(store.file(files.FINDINGS), [FINDING])
    assert_clear(err.value, store.file(files.FINDINGS))
    with pytest.raises(OSError) as err:
        store.write_diagnosis({'hypotheses': []})
    assert_clear(err.value, store.file(files.DIAGNOSIS))
    assert leftovers(store.path) == []
    assert open(store.file(files.FINDINGS)).read() == before
    assert not os.path.exists(store.file(files.DIAGNOSIS))


@pytest.mark.parametrize('failure', ['fsync_full', 'dev_full'])
def test_evidence_leaves_no_tmp(tmp_path, request, failure):
    store = seeded(tmp_path)
    request.getfixturevalue(failure)
    with pytest.raises(OSError) as err:
        store.write_evidence([('app-backend', 'app.log.txt', 'ERROR payment timeout\n' * 100)], Redactor())
    assert leftovers(store.path) == []
    assert_clear(err.value, os.path.join(store.path, 'evidence', 'app-backend', 'app.log.txt'))
    assert os.listdir(os.path.join(store.path, 'evidence', 'app-backend')) == []


@pytest.mark.parametrize('failure', ['fsync_full', 'dev_full'])
def test_rendered_documents_leave_no_tmp_and_keep_the_previous_version(tmp_path, request, failure):
    path = str(tmp_path / 'postmortem-2026-12-01.md')
    files.write_rendered(path, '# Post-mortem\n\nfirst\n')
    request.getfixturevalue(failure)
    with pytest.raises(OSError) as err:
        files.write_rendered(path, '# Post-mortem\n\nsecond\n')
    assert_clear(err.value, path)
    assert leftovers(tmp_path) == []
    assert open(path).read() == '# Post-mortem\n\nfirst\n'
    assert files.rendered_state(path) == 'ours'


def test_a_timeline_append_that_runs_out_of_space_is_cut_off(tmp_path, monkeypatch):
    path = str(tmp_path / files.TIMELINE)
    files.append_jsonl(path, files.make_event('INC-T-ENOSPC', 'note', 'before the disk filled'))
    before = open(path, 'rb').read()
    real = os.write
    calls = []

    def half_then_full(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real(fd, bytes(data[:len(data) // 2]))  # the kernel took half, then the disk was full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, 'write', half_then_full)
    with pytest.raises(OSError) as err:
        files.append_jsonl(path, [files.make_event('INC-T-ENOSPC', 'note', 'x' * 400)])
    monkeypatch.undo()
    assert_clear(err.value, path)
    assert open(path, 'rb').read() == before, 'no half line is left behind'
    files.append_jsonl(path, files.make_event('INC-T-ENOSPC', 'note', 'after'))
    assert [e['summary'] for e in files.read_jsonl(path)] == ['before the disk filled', 'after']


def test_a_failed_rename_removes_the_temporary_file(tmp_path, monkeypatch):
    path = str(tmp_path / 'incident.json')

    def refuse(*args):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(os, 'replace', refuse)
    with pytest.raises(OSError):
        files.write_json_atomic(path, {'id': 'INC-1'})
    assert os.listdir(str(tmp_path)) == []


def test_a_really_full_file_system(tmp_path):
    """The same on a real 64 KiB tmpfs when this test may mount one (root); skipped elsewhere."""
    mnt = tmp_path / 'tiny'
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', str(mnt)],
                                           capture_output=True, check=False).returncode != 0:
        pytest.skip('cannot mount a tmpfs here (needs root)')
    try:
        store = IncidentStore('INC-T-FULL', str(mnt / 'INC-T-FULL'))
        files.ensure_dir(store.path)
        files.write_json_atomic(store.file(files.INCIDENT), {'id': 'INC-T-FULL'})
        filler = mnt / 'filler'
        with open(str(filler), 'wb', buffering=0) as handle:
            try:
                while True:
                    handle.write(b'\0' * 1024)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        with pytest.raises(OSError) as err:
            files.write_json_atomic(store.file(files.FINDINGS), [FINDING] * 200)
        with pytest.raises(OSError) as err2:
            store.write_evidence([('app-backend', 'big.txt', 'y' * 65536)], Redactor())
        assert leftovers(mnt) == []
        assert_clear(err.value, store.file(files.FINDINGS))
        assert_clear(err2.value, os.path.join(store.path, 'evidence', 'app-backend', 'big.txt'))
        assert json.load(open(store.file(files.INCIDENT))) == {'id': 'INC-T-FULL'}
    finally:
        subprocess.run(['umount', str(mnt)], check=False)


@pytest.mark.parametrize('failure', ['fsync_full', 'dev_full'])
def test_a_message_on_a_full_disk_leaves_no_empty_or_half_file(tmp_path, request, failure):
    """messages/ is never overwritten (a link, not a rename) and a full disk leaves neither the message nor a .tmp."""
    directory = tmp_path / 'messages'
    first = store_mod.write_message(str(directory), 'update', 'first\n', datetime.datetime(2026, 12, 1, 3, 0, 0, tzinfo=datetime.timezone.utc), 'Identified')
    request.getfixturevalue(failure)
    with pytest.raises(OSError) as info:
        store_mod.write_message(str(directory), 'update', 'second\n' * 1000,
                                datetime.datetime(2026, 12, 1, 3, 0, 0, tzinfo=datetime.timezone.utc), 'Identified')
    assert_clear(info.value, directory / '20261201T030000Z-update-identified.md')
    assert sorted(os.listdir(str(directory))) == [os.path.basename(first)]
    assert open(first).read() == 'first\n'
