"""Safe defaults that ship with the collection (issue 18): host keys are checked unless an inventory says why not.

The shipped ansible.cfg is what `make` and every documented command use (ANSIBLE_CONFIG); a `host_key_checking =
false` there accepted a changed host key for every inventory but the fleet lab's. The SSH command line Ansible
really builds is tested in tests/integration/test_safe_defaults_lab.py.
"""
import configparser
import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _bool(value):
    return str(value).strip().lower() in ('1', 'true', 'yes', 'on')


def test_shipped_ansible_cfg_checks_host_keys():
    cfg = configparser.ConfigParser()
    assert cfg.read(os.path.join(ROOT, 'ansible.cfg'))
    assert cfg.has_option('defaults', 'host_key_checking'), 'say it explicitly: host_key_checking = true'
    assert _bool(cfg.get('defaults', 'host_key_checking'))
    for section in cfg.sections():
        for key, value in cfg.items(section):
            assert 'StrictHostKeyChecking=no' not in value.replace(' ', ''), (section, key)
            assert 'UserKnownHostsFile=/dev/null' not in value.replace(' ', ''), (section, key)


def _inventory_texts():
    for base, dummy, names in os.walk(os.path.join(ROOT, 'inventory')):
        for name in names:
            if name.endswith(('.yml', '.yaml', '.example')):
                path = os.path.join(base, name)
                with open(path, encoding='utf-8') as handle:
                    yield os.path.relpath(path, ROOT), handle.read()


def test_no_shipped_inventory_turns_host_key_checking_off():
    for path, text in _inventory_texts():
        flat = text.replace(' ', '')
        assert 'StrictHostKeyChecking=no' not in flat, path
        assert 'UserKnownHostsFile=/dev/null' not in flat, path
        for doc in yaml.safe_load_all(text):
            stack = [doc]
            while stack:
                node = stack.pop()
                if isinstance(node, dict):
                    for key, value in node.items():
                        if key in ('ansible_host_key_checking', 'ansible_ssh_host_key_checking'):
                            assert _bool(value), '%s: %s: %r' % (path, key, value)
                        stack.append(value)
                elif isinstance(node, list):
                    stack.extend(node)


def test_example_and_fleet_inventories_check_host_keys_themselves():
    """Copied into a project with another ansible.cfg (or ANSIBLE_HOST_KEY_CHECKING=False), they still check."""
    with open(os.path.join(ROOT, 'inventory', 'example', 'hosts.yml'), encoding='utf-8') as handle:
        example = yaml.safe_load(handle)
    assert example['all']['vars'].get('ansible_host_key_checking') is True
    with open(os.path.join(ROOT, 'inventory', 'fleet', 'group_vars', 'fleet.yml'), encoding='utf-8') as handle:
        fleet = yaml.safe_load(handle)
    assert fleet.get('ansible_host_key_checking') is True
    assert 'StrictHostKeyChecking=yes' in fleet['ansible_ssh_common_args']


def test_molecule_scenarios_do_not_inherit_molecules_host_key_default():
    """Molecule writes its own ansible.cfg with host_key_checking = False unless the scenario says otherwise."""
    for scenario in ('default', 'fleet'):
        with open(os.path.join(ROOT, 'molecule', scenario, 'molecule.yml'), encoding='utf-8') as handle:
            conf = yaml.safe_load(handle)
        defaults = conf['provisioner'].get('config_options', {}).get('defaults', {})
        assert defaults.get('host_key_checking') is True, scenario
