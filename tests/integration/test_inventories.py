"""The shipped inventories parse, describe every host's services, and every entry playbook accepts them."""
import glob
import json
import os
import subprocess

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import incident_input
from conftest import ROOT, VENV_BIN, _env

PLAYBOOKS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, 'playbooks', '*.yml')))
SCHEMA_KINDS = set(incident_input.KINDS)  # the one schema: plugins/plugin_utils/incident/incident_input.py


def inventory(name):
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-inventory'), '-i', 'inventory/%s' % name, '--list'],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert '[WARNING]' not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize('name', ['lab', 'example'])
def test_inventory_describes_services_per_schema(name):
    data = inventory(name)
    hostvars = data['_meta']['hostvars']
    assert hostvars, 'no hosts'
    names = []
    for host, hv in hostvars.items():
        services = hv.get('incident_services')
        assert services, '%s has no incident_services' % host
        for svc in services:
            assert svc['kind'] in SCHEMA_KINDS, (host, svc)
            assert svc['deploy']['type'] in incident_input.DEPLOY_TYPES, (host, svc)
            for cred in (svc.get('postgres') or {}, svc.get('redis') or {}):
                assert 'password' not in cred, '%s: credentials go by reference (password_var)' % host
            names.append(svc['name'])
    contacts = next(iter(hostvars.values())).get('incident_contacts')
    assert contacts and 'oncall' in contacts


def test_example_is_production_shaped():
    data = inventory('example')
    assert len(data['backend']['hosts']) >= 2
    assert data['postgres']['hosts'] and data['redis']['hosts']
    assert all(host.endswith('.example.com') for host in data['_meta']['hostvars']), 'example hosts use example.com names'


@pytest.mark.parametrize('playbook', PLAYBOOKS)
def test_entry_playbooks_pass_syntax_check_against_the_example(playbook):
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), '-i', 'inventory/example', '--syntax-check',
                           'playbooks/%s' % playbook], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
