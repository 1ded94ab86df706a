"""The layout is a contract for maintainers (docs/architecture.md): host code and controller code apart.

- plugins/module_utils holds only code that runs on managed hosts: every file there is imported, directly or
  through another module_utils file, by a module.
- Nothing that runs on a host imports the controller's plugins/plugin_utils (a module's payload would not have it).
"""
import ast
import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFIX = 'ansible_collections.sre.incident_response.plugins.'


def imports(path):
    """The collection's modules a file imports, as 'module_utils.x' / 'plugin_utils.group.x' names."""
    tree = ast.parse(open(path, encoding='utf-8').read(), path)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
            base = node.module[len(PREFIX):]
            for alias in node.names:
                full = '%s.%s' % (base, alias.name)
                out.add(full if os.path.exists(os.path.join(ROOT, 'plugins', *full.split('.')) + '.py') else base)
        elif isinstance(node, ast.Import):
            out.update(a.name[len(PREFIX):] for a in node.names if a.name.startswith(PREFIX))
    return out


def module_utils_names():
    return {'module_utils.' + os.path.basename(p)[:-3]
            for p in glob.glob(os.path.join(ROOT, 'plugins', 'module_utils', '*.py'))}


def test_every_module_utils_file_runs_on_hosts():
    reached, todo = set(), set()
    for path in glob.glob(os.path.join(ROOT, 'plugins', 'modules', '*.py')):
        todo |= {n for n in imports(path) if n.startswith('module_utils.')}
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        todo |= {n for n in imports(os.path.join(ROOT, 'plugins', *name.split('.')) + '.py')
                 if n.startswith('module_utils.')}
    controller_only = sorted(module_utils_names() - reached)
    assert not controller_only, 'controller-only code in plugins/module_utils (move it to plugin_utils): %s' % (
        ', '.join(controller_only))


def test_host_code_never_imports_the_controller():
    paths = glob.glob(os.path.join(ROOT, 'plugins', 'modules', '*.py'))
    paths += glob.glob(os.path.join(ROOT, 'plugins', 'module_utils', '*.py'))
    bad = ['%s imports %s' % (os.path.relpath(p, ROOT), n) for p in paths for n in imports(p)
           if n.startswith('plugin_utils')]
    assert not bad, bad


def test_controller_code_is_grouped_in_folders_that_say_what_is_inside():
    groups = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, 'plugins', 'plugin_utils', '*'))
                    if os.path.isdir(p) and not p.endswith('__pycache__'))
    assert {'incident', 'diagnosis', 'comms', 'render', 'awx'} <= set(groups), groups
