"""galaxy.yml, requirements.yml, execution-environment.yml and meta/runtime.yml agree with what the collection uses."""
import ast
import glob
import os
import re

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OWN = {'ansible.builtin', 'sre.incident_response'}
# Playbooks that configure AWX from a workstation; awx.awx is in requirements.yml and the EE, not a dependency.
WORKSTATION_ONLY = {'awx.awx'}
# community.docker builds and drives the lab (tests/lab, molecule), community.crypto makes the lab's certificates:
# test tooling, not runtime dependencies.
TEST_TOOLING = {'community.docker', 'community.crypto'}

CANDIDATES = ('community.crypto', 'community.docker', 'community.general', 'community.postgresql', 'awx.awx')
# a module key (`community.docker.docker_container:`), a lookup/filter/test/fragment/import naming one of them
KEY = re.compile(r'^\s*(?:-\s+)?([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*:\s*(?:#.*)?$', re.M)
NAMED = re.compile(r'(?<![\w.])(?:ansible_collections\.)?(%s)\.[a-z]' % '|'.join(re.escape(c) for c in CANDIDATES))


def _load(rel):
    with open(os.path.join(ROOT, rel)) as handle:
        return yaml.safe_load(handle)


def collections_used(paths):
    """Collections named in the given trees: module keys, lookups, filters, doc fragments, imports."""
    used = set()
    for top in paths:
        for path in glob.glob(os.path.join(ROOT, top, '**', '*'), recursive=True):
            if os.path.isfile(path) and path.endswith(('.yml', '.yaml', '.py', '.j2')):
                text = open(path).read()
                used.update(KEY.findall(text))
                used.update(NAMED.findall(text))
    return used


def test_runtime_dependencies_are_exactly_what_plugins_roles_and_playbooks_use():
    deps = set(_load('galaxy.yml').get('dependencies') or {})
    used = collections_used(['plugins', 'roles', 'playbooks', 'extensions']) - OWN
    assert used - WORKSTATION_ONLY == deps, 'used %s, galaxy.yml dependencies %s' % (sorted(used), sorted(deps))


def test_test_tooling_is_used_by_the_lab_only():
    lab = collections_used(['tests/lab', 'molecule'])
    assert TEST_TOOLING <= lab, 'the lab no longer uses %s: drop it from requirements.yml' % (TEST_TOOLING - lab)
    assert not TEST_TOOLING & collections_used(['plugins', 'roles', 'playbooks']), '%s is test tooling only' % sorted(TEST_TOOLING)


def test_requirements_and_the_execution_environment_list_the_dependencies():
    deps = set(_load('galaxy.yml').get('dependencies') or {})
    reqs = set(c['name'] for c in _load('requirements.yml')['collections'])
    ee = set(c['name'] for c in _load('execution-environment.yml')['dependencies']['galaxy']['collections'])
    assert deps | WORKSTATION_ONLY | TEST_TOOLING == reqs, reqs
    assert deps | WORKSTATION_ONLY == ee, 'the EE runs the collection, not the lab: %s' % sorted(ee)


# --- action groups ------------------------------------------------------------------------------

def _fragment_options(name):
    # sre.incident_response.<file>[.<variable>]: a named variable of the fragment class, else its DOCUMENTATION
    parts = name.split('.')[2:] if name.startswith('sre.incident_response.') else name.split('.')
    file_name, var = (parts + [''])[:2]
    path = os.path.join(ROOT, 'plugins', 'doc_fragments', file_name + '.py')
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', None) == (var.upper() or 'DOCUMENTATION'):
            return set((yaml.safe_load(node.value.value) or {}).get('options') or {})
    return set()


def module_options(module):
    tree = ast.parse(open(os.path.join(ROOT, 'plugins', 'modules', module + '.py')).read())
    doc = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', None) == 'DOCUMENTATION':
            doc = yaml.safe_load(node.value.value)
    options = set(doc.get('options') or {})
    for fragment in doc.get('extends_documentation_fragment') or []:
        if fragment.startswith('sre.incident_response.'):
            options |= _fragment_options(fragment)
    return options


GROUP_FRAGMENTS = {'postgresql': 'pg_connection', 'redis': 'redis_connection', 'docker': 'docker'}


def test_every_module_of_a_group_takes_every_connection_option_of_the_group():
    groups = _load('meta/runtime.yml')['action_groups']
    assert set(groups) == set(GROUP_FRAGMENTS)
    for group, modules in groups.items():
        wanted = _fragment_options(GROUP_FRAGMENTS[group])
        assert wanted
        for module in modules:
            missing = wanted - module_options(module)
            assert not missing, '%s in group %s lacks %s' % (module, group, sorted(missing))


def test_roles_set_only_options_their_group_takes_and_no_task_repeats_them():
    # pg_terminate, redis_evict and redis_maxmemory run remediation_run, which builds its connection from the service
    # and the triage settings: no remediation role sets module_defaults any more; one that does is checked here
    groups = _load('meta/runtime.yml')['action_groups']
    for main in glob.glob(os.path.join(ROOT, 'roles', '*', 'tasks', '*.yml')):
        for task in _load(os.path.relpath(main, ROOT)) or []:
            for key, defaults in (task.get('module_defaults') or {}).items():
                group = key.split('.')[-1]
                assert key == 'group/sre.incident_response.' + group and group in groups, key
                for module in groups[group]:
                    extra = set(defaults) - module_options(module)
                    assert not extra, '%s: %s does not take %s' % (main, module, sorted(extra))
                role_tasks = glob.glob(os.path.join(os.path.dirname(main), '*.yml'))
                for path in role_tasks:
                    text = open(path).read()
                    for module in groups[group]:
                        for block in re.findall(r'sre\.incident_response\.%s:\n((?:      ?.*\n)+)' % module, text):
                            repeated = [k for k in defaults if re.search(r'^\s+%s:' % k, block, re.M)]
                            assert not repeated, '%s repeats %s in %s' % (path, repeated, module)
