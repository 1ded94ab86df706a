"""AWX surveys generated from role argument specs: type mapping, overrides, and survey/spec agreement.

The agreement tests load playbooks/awx_configure.yml's own template list and the real roles'
meta/argument_specs.yml, so a renamed option, a changed default or a question that no spec backs
fails here (and in the playbook) before it reaches a controller.
"""
import copy
import os

import pytest
import yaml

from ansible_collections.sre.incident_response.plugins.module_utils import awx_survey as s

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPECS = s.load_role_specs(os.path.join(ROOT, 'roles'))

SPEC = {'argument_specs': {'main': {'options': {
    'x_name': {'type': 'str', 'default': 'web', 'description': 'Name.'},
    'x_mode': {'type': 'str', 'choices': ['a', 'b'], 'default': 'a', 'description': ['Mode.', 'More.']},
    'x_count': {'type': 'int', 'default': 3, 'required': True},
    'x_ratio': {'type': 'float', 'default': 1.5},
    'x_flag': {'type': 'bool', 'default': False},
    'x_kinds': {'type': 'list', 'elements': 'str', 'choices': ['p', 'q', 'r'], 'default': ['p', 'q']},
    'x_list': {'type': 'list', 'elements': 'str', 'default': []},
    'x_dict': {'type': 'dict', 'default': {}},
    'x_secret': {'type': 'str', 'no_log': True, 'default': ''},
    'x_tmpl': {'type': 'str', 'default': "{{ other | default('15m') }}"},
}}}}


def _configure():
    with open(os.path.join(ROOT, 'playbooks', 'awx_configure.yml')) as handle:
        plays = yaml.safe_load(handle)
    return plays[0]['vars']


def _q(survey, variable):
    return [q for q in survey['spec'] if q['variable'] == variable][0]


def test_type_mapping():
    survey = s.build_survey(['x.' + n for n in ('x_name', 'x_mode', 'x_count', 'x_ratio', 'x_flag', 'x_kinds', 'x_secret', 'x_tmpl')],
                            {'x': SPEC}, name='X')
    assert [q['type'] for q in survey['spec']] == [
        'text', 'multiplechoice', 'integer', 'float', 'multiplechoice', 'multiselect', 'password', 'text']
    assert _q(survey, 'x_name')['default'] == 'web'
    assert _q(survey, 'x_mode')['choices'] == ['a', 'b']
    assert _q(survey, 'x_mode')['question_description'] == 'Mode. More.'
    assert _q(survey, 'x_count')['required'] is True and _q(survey, 'x_count')['default'] == 3
    assert _q(survey, 'x_flag') ['choices'] == ['true', 'false'] and _q(survey, 'x_flag')['default'] == 'false'
    assert _q(survey, 'x_kinds')['default'] == 'p\nq'
    # a templated default is the play's business, not the survey's
    assert _q(survey, 'x_tmpl')['default'] == ''
    assert survey['name'] == 'X'


@pytest.mark.parametrize('option', ['x_list', 'x_dict'])
def test_untypeable_options_are_refused(option):
    with pytest.raises(s.SurveyError, match='extra_vars'):
        s.build_survey(['x.' + option], {'x': SPEC})


def test_unknown_option_and_role_are_refused():
    with pytest.raises(s.SurveyError, match='no option x_gone'):
        s.build_survey(['x.x_gone'], {'x': SPEC})
    with pytest.raises(s.SurveyError, match='no argument specs loaded'):
        s.build_survey(['y.x_name'], {'x': SPEC})


def test_overrides_narrow_only():
    survey = s.build_survey([{'ref': 'x.x_name', 'variable': 'name', 'required': True, 'choices': ['web', 'db']}], {'x': SPEC})
    question = survey['spec'][0]
    assert question['variable'] == 'name' and question['required'] is True
    assert question['type'] == 'multiplechoice' and question['choices'] == ['web', 'db']
    with pytest.raises(s.SurveyError, match='not in the spec choices'):
        s.build_survey([{'ref': 'x.x_mode', 'choices': ['a', 'z']}], {'x': SPEC})
    with pytest.raises(s.SurveyError, match='default'):
        s.build_survey([{'ref': 'x.x_name', 'choices': ['db']}], {'x': SPEC})
    with pytest.raises(s.SurveyError, match='asked twice'):
        s.build_survey(['x.x_name', {'ref': 'x.x_mode', 'variable': 'x_name'}], {'x': SPEC})


def test_agreeing_survey_has_no_disagreements():
    questions = ['x.x_name', 'x.x_mode', 'x.x_count', 'x.x_flag']
    survey = s.build_survey(questions, {'x': SPEC})
    assert s.survey_disagreements(survey, questions, {'x': SPEC}) == []


@pytest.mark.parametrize('mutate, expect', [
    (lambda sv, sp: sp['argument_specs']['main']['options']['x_name'].update(default='api'), "default is 'web'"),
    (lambda sv, sp: sp['argument_specs']['main']['options']['x_mode'].update(choices=['a', 'b', 'c']), 'choices'),
    (lambda sv, sp: sp['argument_specs']['main']['options']['x_count'].update(type='float'), 'type'),
    (lambda sv, sp: sp['argument_specs']['main']['options']['x_count'].update(required=False), 'required'),
    (lambda sv, sp: sp['argument_specs']['main']['options'].pop('x_flag'), 'no option x_flag'),
    (lambda sv, sp: sv['spec'].pop(0), 'no question sets variable x_name'),
    (lambda sv, sp: sv['spec'].append({'variable': 'x_extra', 'type': 'text'}), 'x_extra'),
    (lambda sv, sp: sv['spec'][3].update(default='true'), 'default'),
])
def test_disagreement_is_reported(mutate, expect):
    questions = ['x.x_name', 'x.x_mode', 'x.x_count', 'x.x_flag']
    spec = copy.deepcopy(SPEC)
    survey = s.build_survey(questions, {'x': spec})
    mutate(survey, spec)
    problems = s.survey_disagreements(survey, questions, {'x': spec})
    assert problems and any(expect in p for p in problems), problems


def test_numeric_defaults_compare_by_value():
    questions = ['x.x_ratio']
    survey = s.build_survey(questions, {'x': SPEC})
    survey['spec'][0]['default'] = '1.5'
    assert s.survey_disagreements(survey, questions, {'x': SPEC}) == []


def test_every_role_has_argument_specs():
    roles = sorted(d for d in os.listdir(os.path.join(ROOT, 'roles')) if not d.startswith('.'))
    assert sorted(SPECS) == roles


def test_configure_templates_agree_with_role_specs():
    """Every job template of awx_configure.yml: its generated survey agrees with the real argument specs."""
    conf = _configure()
    items = conf['awx_configure_templates'] + [conf['awx_configure_workflow']]
    assert len(items) >= 18
    for item in items:
        survey = s.build_survey(item.get('questions', []), SPECS, name=item['name'])
        assert s.survey_disagreements(survey, item.get('questions', []), SPECS) == [], item['name']


def test_configure_covers_every_entry_playbook():
    conf = _configure()
    playbooks = set(t['playbook'] for t in conf['awx_configure_templates'])
    for name in ('triage', 'sev1', 'sev2', 'sev3', 'sev4', 'investigate', 'communicate', 'resolve', 'runbooks', 'remediate'):
        assert 'playbooks/%s.yml' % name in playbooks, name
    actions = set(t.get('extra_vars', {}).get('action') for t in conf['awx_configure_templates'])
    remediate = os.path.join(ROOT, 'playbooks', 'remediate.yml')
    with open(remediate) as handle:
        known = list(yaml.safe_load(handle)[0]['vars']['_remediate_roles'])
    assert set(known) <= actions, 'a remediation action without a plan template'
    for template in conf['awx_configure_templates']:
        if template['playbook'] in ('playbooks/remediate.yml', 'playbooks/awx_remediate.yml'):
            assert template.get('remediation') is True, template['name']


# Playbooks that are no job template of their own: imported by others, or the AWX plumbing itself.
NOT_TEMPLATES = {'severity_response.yml', 'awx_configure.yml'}


def test_every_entry_playbook_has_a_job_template():
    conf = _configure()
    playbooks = set(t['playbook'] for t in conf['awx_configure_templates'])
    for name in sorted(os.listdir(os.path.join(ROOT, 'playbooks'))):
        if name.endswith('.yml') and not name.startswith('_') and name not in NOT_TEMPLATES:
            assert 'playbooks/' + name in playbooks, 'playbooks/%s has no AWX job template in awx_configure.yml' % name


def test_alias_variables_are_read_by_the_roles():
    """A question with a `variable` alias must set a variable the role's defaults or the playbook read."""
    conf = _configure()
    for template in conf['awx_configure_templates']:
        for ref in template.get('questions', []):
            if not isinstance(ref, dict) or 'variable' not in ref:
                continue
            role, option = ref['ref'].split('.', 1)
            sources = [os.path.join(ROOT, 'roles', role, 'defaults', 'main.yml'), os.path.join(ROOT, template['playbook'])]
            text = ''.join(open(p).read() for p in sources if os.path.exists(p))
            assert '%s | default' % ref['variable'] in text or "%s is defined" % ref['variable'] in text, (template['name'], ref)
