"""The incident store is the only way to the incident files (docs/architecture.md, docs/reference/contracts.md).

- No controller code but the store (plugins/plugin_utils/incident_store.py) and its file primitives
  (plugins/plugin_utils/incident/files.py) opens, reads, writes, locks or path-joins a file of an incident
  directory, by its name ('timeline.jsonl') or by the constant that holds it (files.TIMELINE).
- No controller code but the store resolves an incident's path (incident_path(), or a join of an incident_dir).
- No role or playbook reads an incident file in Jinja (a lookup of diagnosis.json, ...): what a role needs of
  the incident comes from an action's result or the incident role's facts.
"""
import ast
import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALLOWED = {os.path.join('plugins', 'plugin_utils', 'incident_store.py'),
           os.path.join('plugins', 'plugin_utils', 'incident', 'files.py')}

# The files and folders of one incident directory, and the names of the constants that hold them.
FILES = ('incident.json', 'timeline.jsonl', 'findings.json', 'diagnosis.json', 'deliveries.json', 'comms_state.json',
         'remediation.lock', '.alert-groups.json')
FOLDERS = ('messages', 'evidence')
PATTERNS = ('postmortem-*.md',)
CONSTANTS = ('INCIDENT', 'TIMELINE', 'FINDINGS', 'DIAGNOSIS', 'DELIVERIES', 'COMMS_STATE', 'MESSAGES', 'EVIDENCE',
             'REMEDIATION_LOCK', 'LOCK_NAME', 'ALERT_GROUPS', 'REGISTRY')
# What opens, reads, writes, locks or joins a path: os.path.join, open and the primitives of incident_files.
IO_CALLS = ('join', 'open', 'glob', 'listdir', 'exists', 'isdir', 'isfile', 'read_json', 'read_jsonl',
            'write_json_atomic', 'write_text_atomic', 'append_jsonl', 'update_findings', 'lock', '_Locked',
            'write_rendered', 'ensure_dir')


def _name_of(func):
    if isinstance(func, ast.Attribute):
        if func.attr == 'join' and not (isinstance(func.value, ast.Attribute) and func.value.attr == 'path'):
            return 'str.join'  # ', '.join(...) joins text, not a path
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _incident_names(node):
    """The incident file names a call's arguments hold: string constants and the constants' names."""
    out = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            text = sub.value
            if any(text == n or text.endswith('/' + n) for n in FILES + FOLDERS + PATTERNS):
                out.append(text)
        elif isinstance(sub, ast.Name) and sub.id in CONSTANTS:
            out.append(sub.id)
        elif isinstance(sub, ast.Attribute) and sub.attr in CONSTANTS:
            out.append(sub.attr)
    return out


def python_offenders():
    bad = []
    paths = glob.glob(os.path.join(ROOT, 'plugins', '**', '*.py'), recursive=True)
    paths += glob.glob(os.path.join(ROOT, 'extensions', '**', '*.py'), recursive=True)
    for path in sorted(paths):
        rel = os.path.relpath(path, ROOT)
        if rel in ALLOWED:
            continue
        tree = ast.parse(open(path, encoding='utf-8').read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.endswith(('incident_files', 'incident.files')):
                names = [a.name for a in node.names if a.name in CONSTANTS]
                if names:
                    bad.append('%s:%d imports %s' % (rel, node.lineno, ', '.join(names)))
            if isinstance(node, ast.Call) and _name_of(node.func) in IO_CALLS:
                args = list(node.args) + [k.value for k in node.keywords]
                names = [n for arg in args for n in _incident_names(arg)]
                if names:
                    bad.append('%s:%d %s(... %s ...)' % (rel, node.lineno, _name_of(node.func), ', '.join(names)))
            if isinstance(node, ast.Call) and _resolves_an_incident_path(node):
                bad.append('%s:%d resolves an incident path: %s' % (rel, node.lineno, ast.unparse(node)[:80]))
    return bad


def _resolves_an_incident_path(call):
    """incident_path(dir, id) (the store's resolver) or os.path.join(<an incident_dir>, ...): only the store does it."""
    name = _name_of(call.func)
    if name == 'incident_path':
        return True
    if name == 'join' and call.args:
        return 'incident_dir' in ast.unparse(call.args[0])
    return False


JINJA_READ = re.compile(r"""(lookup|query|q)\(\s*['"][\w.]*(file|first_found|fileglob|lines|pipe)['"][^)]*"""
                        r"""(incident_path|incident_dir|%s)""" % '|'.join(re.escape(n) for n in FILES + FOLDERS))
JINJA_PATH = re.compile(r"""incident_path\s*(~|\+|\|\s*(dirname|basename|path_join))""")


def jinja_offenders():
    bad = []
    for top in ('roles', 'playbooks'):
        for path in sorted(glob.glob(os.path.join(ROOT, top, '**', '*.yml'), recursive=True)):
            text = open(path, encoding='utf-8').read()
            for regex, what in ((JINJA_READ, 'reads an incident file in Jinja'),
                                (JINJA_PATH, 'computes an incident path in Jinja')):
                for match in regex.finditer(text):
                    line = text.count('\n', 0, match.start()) + 1
                    bad.append('%s:%d %s: %s' % (os.path.relpath(path, ROOT), line, what, match.group(0)[:80]))
    return bad


def test_only_the_store_touches_incident_files():
    bad = python_offenders()
    assert not bad, 'incident files outside the incident store (plugin_utils/incident_store.py):\n' + '\n'.join(bad)


def test_no_role_or_playbook_reads_incident_files_in_jinja():
    bad = jinja_offenders()
    assert not bad, 'Jinja that reads incident files or builds their paths:\n' + '\n'.join(bad)


def test_the_checks_see_what_they_look_for(tmp_path):
    """The scanners find each form they forbid (a scanner that finds nothing proves nothing)."""
    assert JINJA_READ.search("lookup('ansible.builtin.file', incident_path ~ '/diagnosis.json')")
    assert JINJA_PATH.search("incident_dir: \"{{ incident_path | dirname }}\"")
    tree = ast.parse("os.path.join(path, files.TIMELINE)\nopen(os.path.join(p, 'findings.json'))\n"
                     "glob.glob(os.path.join(p, 'postmortem-*.md'))\n")
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _name_of(n.func) in IO_CALLS]
    assert {'TIMELINE', 'findings.json', 'postmortem-*.md'} <= {n for c in calls for n in _incident_names(c)}
    tree = ast.parse("files.incident_path(d, i)\nos.path.join(args['incident_dir'], incident_id)\n', '.join(x)\n")
    assert [_resolves_an_incident_path(n) for n in ast.walk(tree) if isinstance(n, ast.Call)] == [True, True, False]
