"""No reserved name in the interface (issue 19): `-e action=` made Ansible warn "Found variable using reserved
name 'action'" on every remediation. Every command the collection prints or documents, what triage publishes
for AWX and what the AWX templates pass use names Ansible does not reserve; the old `-e action=` is accepted by
remediate.yml for one release, and its deprecation message is one the on-call console prints.

tests/integration/test_remediate_names.py runs remediate.yml both ways against the lab.
"""
import glob
import json
import os
import re

import pytest
import yaml
from ansible.vars.reserved import get_reserved_names

from ansible_collections.sre.incident_response.plugins.module_utils import remediation as rem
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import diagnosis as dx
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import triage
from ansible_collections.sre.incident_response.plugins.plugin_utils.render import console
from ansible_collections.sre.incident_response.plugins.plugin_utils.render.runbook import RunbookRenderer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESERVED = get_reserved_names()
FIXTURES = os.path.join(ROOT, 'tests', 'unit', 'fixtures', 'triage')
CTX = {'incident_id': 'INC-20261127-0412-7d10', 'inventory': 'inventory/lab', 'playbook_dir': 'playbooks',
       'backends': ['app-backend'], 'backend_services': ['backend'], 'backend_service': 'backend', 'tls_service': 'proxy',
       'endpoints': ['/api/orders', '/api/products', '/api/sessions', '/api/payments'],
       'critical_paths': ['/api/orders', '/api/sessions']}
# -e name=value, -e "name=value", --extra-vars name=value
EXTRA_VAR = re.compile(r'''(?:^|\s)(?:-e|--extra-vars)\s+["']?([A-Za-z_][A-Za-z0-9_]*)=''')


def extra_var_names(command):
    return EXTRA_VAR.findall(command)


def reserved_in(command):
    return sorted(set(extra_var_names(command)) & RESERVED)


def commands_in(value):
    """Every string inside value (dicts, lists) that is an ansible-playbook command."""
    if isinstance(value, dict):
        for item in value.values():
            yield from commands_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from commands_in(item)
    elif isinstance(value, str) and 'ansible-playbook' in value:
        yield value


def test_the_parser_sees_the_reserved_name_of_the_old_command():
    """The check below would see the old name: a test that cannot fail is a defect."""
    assert reserved_in('ansible-playbook playbooks/remediate.yml -i inventory/lab -e action=rollback -e service=x') == ['action']
    assert reserved_in('ansible-playbook playbooks/remediate.yml -e "remediation_action=rollback"') == []
    assert extra_var_names('ansible-playbook x.yml -e incident_id=INC-1 --extra-vars area=db') == ['incident_id', 'area']


@pytest.mark.parametrize('apply', [False, True], ids=['plan', 'apply'])
def test_every_remediation_command_uses_remediation_action(apply):
    cmd = dx.Commands(incident_id='INC-1', inventory='inventory/lab')
    for action in sorted(rem.ACTIONS):
        command = cmd.remediate(action, 'backend', apply=apply, extra=[('pg_terminate_pids', [4182])])
        assert '-e remediation_action=%s ' % action in command, command
        assert reserved_in(command) == [], command
    assert reserved_in(cmd.investigate('all')) == []


@pytest.mark.parametrize('name', sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(FIXTURES, '*.json'))))
def test_diagnosis_and_summary_of_every_captured_fault_print_no_reserved_name(name):
    with open(os.path.join(FIXTURES, name + '.json')) as handle:
        findings = json.load(handle)
    doc = dx.diagnose(findings, CTX)
    incident = {'severity': doc.get('severity_floor') or 'SEV3', 'policy': {}}
    lines = triage.summary(CTX['incident_id'], incident, doc, findings=findings, inventory='inventory/lab')
    commands = list(commands_in(doc)) + list(commands_in(lines))
    assert commands, 'no command printed for %s' % name
    for command in commands:
        assert reserved_in(command) == [], command
    if doc['hypotheses'] and doc['hypotheses'][0].get('action'):
        assert '-e remediation_action=%s' % doc['hypotheses'][0]['action'] in doc['hypotheses'][0]['first_action']


def test_what_triage_publishes_for_awx_has_no_reserved_name():
    top = {'pattern': 'error_spike_after_deploy', 'first_action': 'x', 'action': 'rollback', 'service': 'backend'}
    published = triage.stats('INC-1', {'severity': 'SEV2'}, {'hypotheses': [top]})
    assert published['remediation_action'] == 'rollback' and published['service'] == 'backend'
    assert sorted(set(published) & RESERVED) == []


def test_awx_templates_pass_no_reserved_name():
    with open(os.path.join(ROOT, 'playbooks', 'awx_configure.yml')) as handle:
        plays = yaml.safe_load(handle)
    conf = [p['vars'] for p in plays if 'awx_configure_templates' in (p.get('vars') or {})][0]
    templates = conf['awx_configure_templates']
    assert [t for t in templates if t['playbook'] == 'playbooks/remediate.yml' and 'remediation_action' in t.get('extra_vars', {})]
    for template in templates:
        names = set(template.get('extra_vars') or {})
        names |= set(q['variable'] for q in template.get('questions') or [] if isinstance(q, dict) and 'variable' in q)
        assert sorted(names & RESERVED) == [], template['name']


def test_rendered_runbooks_use_no_reserved_name():
    services = [{'host': 'app-backend', 'service': {'name': 'backend', 'kind': 'backend',
                                                    'deploy': {'type': 'docker', 'container': 'app-backend'}}},
                {'host': 'app-db', 'service': {'name': 'db', 'kind': 'postgres'}},
                {'host': 'app-redis', 'service': {'name': 'redis', 'kind': 'redis'}},
                {'host': 'app-proxy', 'service': {'name': 'proxy', 'kind': 'proxy'}}]
    docs = RunbookRenderer(services, inventory='inventory/prod').render_all()
    commands = [line for text in docs.values() for line in text.splitlines() if 'ansible-playbook' in line]
    assert any('-e remediation_action=rollback' in c for c in commands), commands
    for command in commands:
        assert reserved_in(command) == [], command


def _documented_commands():
    paths = ['README.md'] + glob.glob(os.path.join(ROOT, 'docs', '**', '*.md'), recursive=True)
    paths += glob.glob(os.path.join(ROOT, 'roles', '*', 'README.md')) + glob.glob(os.path.join(ROOT, 'playbooks', '*.yml'))
    paths += glob.glob(os.path.join(ROOT, 'scripts', '*.sh'))
    paths += glob.glob(os.path.join(ROOT, 'extensions', '**', '*.yml'), recursive=True)
    for path in paths:
        with open(os.path.join(ROOT, path), encoding='utf-8') as handle:
            lines = handle.read().splitlines()
        command = None
        for number, line in enumerate(lines, 1):
            if command is None and 'ansible-playbook' in line:
                command = (number, line)
            elif command is not None:
                command = (command[0], command[1] + ' ' + line)
            if command is not None and not line.rstrip().endswith('\\'):
                yield os.path.relpath(os.path.join(ROOT, path), ROOT), command[0], command[1]
                command = None


def test_documented_commands_use_no_reserved_name():
    seen = 0
    for path, number, command in _documented_commands():
        seen += 1
        assert reserved_in(command) == [], '%s:%d: %s' % (path, number, command.strip())
    assert seen > 50


def test_the_deprecation_of_the_old_name_is_printed_by_the_on_call_console():
    """remediate.yml's deprecation message is a debug task the compact console prints (by its tag)."""
    with open(os.path.join(ROOT, 'playbooks', 'remediate.yml')) as handle:
        plays = yaml.safe_load(handle)
    tasks = [t for t in plays[0]['tasks'] if 'ansible.builtin.debug' in t and 'DEPRECATED' in t['ansible.builtin.debug']['msg']]
    assert len(tasks) == 1 and tasks[0]['when'] == 'action is defined' and tasks[0]['run_once'] is True
    assert 'remediation_action' in tasks[0]['ansible.builtin.debug']['msg']
    assert console.MESSAGE_TAG in tasks[0]['tags']  # the console prints the collection's messages by their tag
