"""One rule for an incident id, wherever it is checked (issue 19).

The store (plugin_utils/incident/files.valid_incident_id), the entry playbooks' preflight (incident_input) and the
roles' preflights (test `sre.incident_response.incident_id`) accept the same ids. The report role used to carry a
copy of the pattern of its own ({2,80}): it refused a short id the store had declared, and let through a long one
the store refuses.

Needs no lab service: report.yml reads the incident's files only.
"""
import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files as incident_files
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import incident, incident_input

REPORT_REFUSED = "report_incident_id (incident_id) is required: 1 to 64 letters, digits, '.', '_' or '-'"


@pytest.mark.parametrize('value,ok', [('A', True), ('AB', True), ('INC-20261127-0312-a1b2', True), ('I' * 64, True),
                                      ('I' * 65, False), ('I' * 70, False), ('-AB', False), ('A/B', False),
                                      ('', False), (None, False)])
def test_the_store_and_the_entry_preflight_apply_one_rule(value, ok):
    assert incident_files.valid_incident_id(value) is ok
    assert (incident_input.incident_id_problems((False, None), value) == []) is (ok or not value)


def test_the_report_role_renders_a_short_id_the_store_declared(run_playbook, tmp_path):
    root = str(tmp_path / 'incidents')
    incident.declare_or_load(incident_id='AB', incident_dir=root, title='short id', severity='SEV3')
    res = run_playbook('playbooks/report.yml', {'incident_id': 'AB', 'incident_dir': root}, timeout=120)
    assert res.rc == 0, res
    assert (tmp_path / 'incidents' / 'AB' / 'report.html').is_file()


def test_the_report_role_refuses_an_id_the_store_refuses_before_anything(run_playbook, tmp_path):
    root = str(tmp_path / 'incidents')
    res = run_playbook('playbooks/report.yml', {'incident_id': 'I' * 70, 'incident_dir': root}, timeout=120)
    assert res.rc != 0, res
    assert REPORT_REFUSED in res.stdout + res.stderr, res
    assert not (tmp_path / 'incidents').exists()
