"""Bad input stops every entry playbook before anything happens, naming what is wrong (issue 10).

- `-e incident_id=` (empty, as a blank AWX survey sends it) is refused by the first task of every entry playbook
  that takes an incident id, and no incident directory is left behind.
- `incident_services` is validated once, for every host, at the start of every entry playbook: the message names
  the host, the index, the service and the key.

Needs no lab service: every run must stop before it touches a host.
"""
import os
import shutil

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Every entry playbook that takes an incident id, with the extra vars it needs to get past its own checks.
ENTRY_PLAYBOOKS = [
    ('playbooks/triage.yml', {}),
    ('playbooks/respond.yml', {}),
    ('playbooks/sev1.yml', {}),
    ('playbooks/sev2.yml', {}),
    ('playbooks/sev3.yml', {}),
    ('playbooks/sev4.yml', {}),
    ('playbooks/investigate.yml', {}),
    ('playbooks/remediate.yml', {'remediation_action': 'kill_query'}),
    ('playbooks/communicate.yml', {'status': 'Identified'}),
    ('playbooks/resolve.yml', {}),
]
EMPTY_ID = 'incident_id: "" is empty: leave -e incident_id out to declare a new incident'


def _leftovers(root):
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


@pytest.mark.parametrize('playbook,extra', ENTRY_PLAYBOOKS, ids=[os.path.basename(p) for p, _e in ENTRY_PLAYBOOKS])
def test_empty_incident_id_is_refused_before_anything(run_playbook, tmp_path, playbook, extra):
    root = str(tmp_path / 'incidents')
    res = run_playbook(playbook, dict(extra, incident_dir=root), args=['-e', 'incident_id='], timeout=120)
    assert res.rc != 0, res
    assert EMPTY_ID in res.stdout + res.stderr, res
    assert _leftovers(root) == [], 'a half-written incident was left: %s' % _leftovers(root)


def _inventory_with(tmp_path, host, old, new):
    """A copy of the lab inventory where one host's incident_services line is changed."""
    inv = str(tmp_path / 'inventory')
    shutil.copytree(os.path.join(ROOT, 'inventory', 'lab'), inv)
    path = os.path.join(inv, 'host_vars', '%s.yml' % host)
    text = open(path, encoding='utf-8').read()
    assert old in text
    with open(path, 'w', encoding='utf-8') as handle:
        handle.write(text.replace(old, new))
    return inv


ALL_ENTRY_PLAYBOOKS = ENTRY_PLAYBOOKS + [('playbooks/runbooks.yml', {})]


@pytest.mark.parametrize('playbook,extra', ALL_ENTRY_PLAYBOOKS, ids=[os.path.basename(p) for p, _e in ALL_ENTRY_PLAYBOOKS])
def test_bad_port_names_host_service_and_key(run_playbook, tmp_path, incident, playbook, extra):
    inv = _inventory_with(tmp_path, 'app-db', 'port: "{{ lab_db_port }}"', 'port: "abc"')
    runbooks = str(tmp_path / 'runbooks')
    res = run_playbook(playbook, dict(extra, incident_dir=incident['dir'], runbook_dest=runbooks,
                                      incident_id=incident['id'] if playbook.endswith(('communicate.yml', 'resolve.yml'))
                                      else 'INC-TEST-NEW'),
                       inventory=inv, timeout=120)
    assert res.rc != 0, res
    assert 'app-db: incident_services[0] (db).postgres.port: "abc" is not a port' in res.stdout, res
    assert _leftovers(incident['dir']) == []
    assert not os.path.exists(runbooks)


def test_services_not_a_list_names_host_and_variable(run_playbook, tmp_path, incident):
    inv = _inventory_with(tmp_path, 'app-redis', 'incident_services:\n', 'incident_services: oops\nunused:\n')
    res = run_playbook('playbooks/triage.yml', dict(incident['vars']), inventory=inv, timeout=120)
    assert res.rc != 0, res
    assert 'app-redis: incident_services: "oops" is not a list of services' in res.stdout, res
    assert "has no attribute 'name'" not in res.stdout
    assert _leftovers(incident['dir']) == []


def test_unknown_key_and_missing_kind_section(run_playbook, tmp_path, incident):
    inv = _inventory_with(tmp_path, 'app-redis', '    redis:\n', '    rediss:\n')
    res = run_playbook('playbooks/investigate.yml', dict(incident['vars']), inventory=inv, timeout=120)
    assert res.rc != 0, res
    assert 'app-redis: incident_services[0] (redis).rediss: unknown key' in res.stdout, res
    assert 'app-redis: incident_services[0] (redis).redis: is required for kind redis' in res.stdout, res
    assert _leftovers(incident['dir']) == []
