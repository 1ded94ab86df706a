"""state=list of the plan-only modules is now state=plan; the actions still accept the former name, with a warning.

validate-modules refuses `list` among a `state`'s choices (parameter-state-invalid-choice: listing is for *_info
modules); here it named the plan, which changes nothing, so the choice is now `plan` and nothing else changed.
"""
import ast
import importlib
import os

import pytest
import yaml

from ansible_collections.sre.incident_response.plugins.plugin_utils.scrubbed_action import renamed_choices

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAN_MODULES = ('disk_cleanup', 'pg_sessions', 'redis_evict', 'redis_maxmemory')


def _documented_state(module):
    tree = ast.parse(open(os.path.join(ROOT, 'plugins', 'modules', module + '.py')).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', None) == 'DOCUMENTATION':
            return yaml.safe_load(node.value.value)['options']['state']
    raise AssertionError(module)


@pytest.mark.parametrize('module', PLAN_MODULES)
def test_the_plan_is_the_default_and_list_is_no_choice(module):
    state = _documented_state(module)
    assert state['default'] == 'plan'
    assert 'plan' in state['choices'] and not {'list', 'info', 'get'} & set(state['choices'])


@pytest.mark.parametrize('module', PLAN_MODULES)
def test_the_action_still_takes_state_list_as_the_plan(module):
    action = importlib.import_module('ansible_collections.sre.incident_response.plugins.action.' + module)
    args, messages = renamed_choices({'state': 'list', 'x': 1}, action.ActionModule.RENAMED_CHOICES, module)
    assert args == {'state': 'plan', 'x': 1}
    assert messages == ['%s: state=list is now state=plan' % module]
    assert args['state'] in _documented_state(module)['choices']


def test_other_values_pass_unchanged():
    renamed = {'state': {'list': 'plan'}}
    original = {'state': 'absent'}
    assert renamed_choices(original, renamed, 'm') == ({'state': 'absent'}, [])
    assert renamed_choices({}, renamed, 'm') == ({}, [])
    assert renamed_choices({'state': ['list']}, renamed, 'm') == ({'state': ['list']}, [])
    args, dummy = renamed_choices({'state': 'list'}, renamed, 'm')
    assert args is not original
