"""docs/reference/roles/<role>.md is generated from meta/argument_specs.yml and must not drift from it."""
import importlib.util
import os
import shutil

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location('gen_role_docs', os.path.join(ROOT, 'scripts', 'gen-role-docs.py'))
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)


def test_role_pages_match_their_specs():
    problems = gen.drift(ROOT)
    assert not problems, 'role reference pages drifted - run: python scripts/gen-role-docs.py\n' + '\n'.join(problems)


def test_every_role_has_a_page():
    roles = [r for r in os.listdir(os.path.join(ROOT, 'roles')) if os.path.isdir(os.path.join(ROOT, 'roles', r, 'meta'))]
    for role in roles:
        assert os.path.isfile(os.path.join(ROOT, 'docs', 'reference', 'roles', role + '.md')), role


def _fake_root(tmp_path):
    role = tmp_path / 'roles' / 'demo' / 'meta'
    role.mkdir(parents=True)
    spec = {'argument_specs': {'main': {'short_description': 'Demo', 'description': ['Does C(x).'], 'options': {
        'demo_port': {'type': 'int', 'default': 80, 'description': 'Port.'},
        'demo_mode': {'type': 'str', 'choices': ['a', 'b'], 'default': 'a', 'description': 'Mode V(a).'}}}}}
    (role / 'argument_specs.yml').write_text(yaml.safe_dump(spec))
    for rel, content in gen.pages(str(tmp_path)).items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return tmp_path, spec


def test_drift_is_detected(tmp_path):
    root, spec = _fake_root(tmp_path)
    assert gen.drift(str(root)) == []
    page = (root / 'docs' / 'reference' / 'roles' / 'demo.md').read_text()
    assert '| `demo_port` | int | no | `80` |' in page and 'Mode `a`.' in page and 'Does `x`.' in page
    spec['argument_specs']['main']['options']['demo_port']['default'] = 8080
    (root / 'roles' / 'demo' / 'meta' / 'argument_specs.yml').write_text(yaml.safe_dump(spec))
    assert gen.drift(str(root)) == ['docs/reference/roles/demo.md: differs from its argument specs']
    assert gen.main(['--check', '--root', str(root)]) == 1
    assert gen.main(['--root', str(root)]) == 0 and gen.drift(str(root)) == []


def test_orphan_and_missing_pages_are_reported(tmp_path):
    root, dummy = _fake_root(tmp_path)
    (root / 'docs' / 'reference' / 'roles' / 'gone.md').write_text('old')
    assert 'docs/reference/roles/gone.md: no role has this page' in gen.drift(str(root))
    shutil.rmtree(str(root / 'docs'))
    assert 'docs/reference/roles/demo.md: missing' in gen.drift(str(root))


def test_markup():
    assert gen.markup('C(a) V(b) O(c) I(d) B(e) U(https://example.com) L(t,https://example.com) R(x,y)') == \
        '`a` `b` `c` *d* **e** <https://example.com> [t](https://example.com) x'
