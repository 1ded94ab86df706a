"""The layout is a contract for maintainers (docs/architecture.md): host code and controller code apart.

- plugins/module_utils holds only code that runs on managed hosts: every file there is imported, directly or
  through another module_utils file, by a module.
- Each probe area lives in one file, plugins/module_utils/areas/<area>.py, named after the area and holding its
  SPEC, run() and the evaluation of what it reads; the module probe and the area's own module both use it.
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


def module_utils_paths():
    return [p for p in glob.glob(os.path.join(ROOT, 'plugins', 'module_utils', '**', '*.py'), recursive=True)
            if os.path.basename(p) != '__init__.py']


def module_utils_names():
    return {os.path.relpath(p, os.path.join(ROOT, 'plugins'))[:-3].replace(os.sep, '.') for p in module_utils_paths()}


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
    paths += module_utils_paths()
    bad = ['%s imports %s' % (os.path.relpath(p, ROOT), n) for p in paths for n in imports(p)
           if n.startswith('plugin_utils')]
    assert not bad, bad


def test_controller_code_is_grouped_in_folders_that_say_what_is_inside():
    groups = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, 'plugins', 'plugin_utils', '*'))
                    if os.path.isdir(p) and not p.endswith('__pycache__'))
    assert {'incident', 'diagnosis', 'comms', 'render', 'awx'} <= set(groups), groups


AREAS = ('health', 'app_logs', 'changes', 'network', 'host', 'postgres', 'redis')


def test_each_probe_area_is_one_file_named_after_it():
    from ansible_collections.sre.incident_response.plugins.modules import probe
    assert sorted(name for name, _area in probe.AREAS + probe.PER_SERVICE) == sorted(AREAS)
    files = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, 'plugins', 'module_utils', 'areas', '*.py'))
                   if not p.endswith('__init__.py'))
    assert files == sorted(AREAS)
    for name, area in probe.AREAS + probe.PER_SERVICE:
        assert area.__name__.endswith('.areas.' + name), (name, area.__name__)
        assert isinstance(area.SPEC, dict) and callable(area.run), name
    scattered = [os.path.basename(p) for p in glob.glob(os.path.join(ROOT, 'plugins', 'module_utils', '*.py'))
                 if os.path.basename(p).startswith(('area_', 'probe_')) and os.path.basename(p)[:-3].split('_', 1)[1] in
                 AREAS + ('logs', 'net', 'pg')]
    assert not scattered, 'area code outside plugins/module_utils/areas: %s' % scattered
