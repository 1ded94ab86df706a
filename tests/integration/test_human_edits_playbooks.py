"""Human work is never overwritten (issue 10): resolve.yml re-run and runbooks.yml re-run keep edited files."""
import glob
import json
import os

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import incident as incident_logic


def test_resolve_rerun_keeps_an_edited_postmortem(run_playbook, incident):
    incident_logic.declare_or_load(incident_id=incident['id'], incident_dir=incident['dir'], title='Orders fail',
                                   severity='SEV2', services=['backend'])
    first = run_playbook('playbooks/resolve.yml', dict(incident['vars'], resolved_by='alice', root_cause='bad release'),
                         timeout=300)
    assert first.rc == 0, first
    [doc] = [p for p in glob.glob(os.path.join(incident['path'], 'postmortem-*.md')) if not p.endswith('.new.md')]
    edited = open(doc).read().replace('bad release', 'a bad release 1.1.0 (confirmed in the review)')
    open(doc, 'w').write(edited)
    again = run_playbook('playbooks/resolve.yml', dict(incident['vars'], resolved_by='alice', root_cause='bad release'),
                         timeout=300)
    assert again.rc == 0, again
    assert open(doc).read() == edited, 'the edited post-mortem was overwritten'
    new = doc[:-3] + '.new.md'
    assert os.path.exists(new) and 'bad release' in open(new).read()
    assert 'EDITED' in again.stdout and os.path.basename(new) in again.stdout, again
    notes = [json.loads(line) for line in open(os.path.join(incident['path'], 'timeline.jsonl'))]
    assert any(e['kind'] == 'note' and (e.get('data') or {}).get('edited') for e in notes)


def test_runbooks_rerun_keeps_an_edited_runbook(run_playbook, tmp_path):
    dest = str(tmp_path / 'runbooks')
    res = run_playbook('playbooks/runbooks.yml', {'runbook_dest': dest}, timeout=300)
    assert res.rc == 0, res
    path = os.path.join(dest, 'db-runbook.md')
    text = open(path).read() + '\n## Notes from the last game day\n\nCheck the replica first.\n'
    open(path, 'w').write(text)
    again = run_playbook('playbooks/runbooks.yml', {'runbook_dest': dest}, timeout=300)
    assert again.rc == 0, again
    assert open(path).read() == text
    assert os.path.exists(os.path.join(dest, 'db-runbook.new.md'))
    assert 'kept edited' in again.stdout, again
