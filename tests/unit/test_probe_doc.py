"""The module probe documents every option it accepts, the areas' nested options included, as its SPECs say.

validate-modules holds DOCUMENTATION to the argument spec in CI's sanity run; this test holds the same line in the
unit tests, and checks that the generated block of probe.py (scripts/gen-probe-doc.py) has not drifted from the
area modules it is copied from.
"""
import importlib.util
import os

import yaml

from ansible_collections.sre.incident_response.plugins.action import probe as probe_action
from ansible_collections.sre.incident_response.plugins.modules import probe

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location('gen_probe_doc', os.path.join(ROOT, 'scripts', 'gen-probe-doc.py'))
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)


def _differences(spec, docs, path=''):
    """Every way the documented options differ from an argument spec (type, default, choices, elements, ...)."""
    out = []
    for name in sorted(set(spec) - set(docs)):
        out.append('%s%s: accepted, not documented' % (path, name))
    for name in sorted(set(docs) - set(spec)):
        out.append('%s%s: documented, not accepted' % (path, name))
    for name in sorted(set(spec) & set(docs)):
        s, d = spec[name], docs[name]
        for key, fallback in (('type', 'str'), ('default', None), ('choices', None), ('elements', None),
                              ('required', False), ('aliases', None)):
            if s.get(key, fallback) != d.get(key, fallback):
                out.append('%s%s.%s: spec %r, documented %r' % (path, name, key, s.get(key, fallback),
                                                                d.get(key, fallback)))
        if s.get('options') or d.get('suboptions'):
            out += _differences(s.get('options') or {}, d.get('suboptions') or {}, '%s%s.' % (path, name))
    return out


def _documented_options():
    return yaml.safe_load(probe.DOCUMENTATION)['options']


def test_every_option_probe_accepts_is_documented_as_its_spec_says():
    problems = _differences(probe.argument_spec(), _documented_options())
    assert not problems, '\n'.join(problems)


def test_the_area_options_are_the_area_modules_options():
    assert gen.main(['--check']) == 0, 'run: python scripts/gen-probe-doc.py'


def test_the_differences_are_found():
    """The comparison itself can fail: a changed default, a missing suboption and an extra one are reported."""
    spec = {'a': {'type': 'dict', 'options': {'x': {'type': 'int', 'default': 1}, 'y': {'type': 'str'}}}}
    docs = {'a': {'type': 'dict', 'suboptions': {'x': {'type': 'int', 'default': 2}, 'z': {'type': 'str'}}}}
    assert _differences(spec, docs) == ['a.y: accepted, not documented', 'a.z: documented, not accepted',
                                        'a.x.default: spec 1, documented 2']


def test_action_options_are_the_modules():
    """areas and controller_checks are read by the action; the module accepts and documents the same."""
    spec = probe.argument_spec()
    for name, action_spec in probe_action.ActionModule.ARGSPEC.items():
        assert spec[name] == action_spec, name
