"""AWX surveys generated from role argument specs: type mapping, overrides, and survey/spec agreement.

The agreement tests load playbooks/awx_configure.yml's own template list and the real roles'
meta/argument_specs.yml, so a renamed option, a changed default or a question that no spec backs
fails here (and in the playbook) before it reaches a controller.
"""
import copy
import json
import os
import subprocess

import pytest
import yaml

from ansible_collections.sre.incident_response.plugins.plugin_utils.awx import awx_survey as s

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
    assert _q(survey, 'x_flag')['choices'] == ['true', 'false'] and _q(survey, 'x_flag')['default'] == 'false'
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
    items = conf['awx_configure_templates'] + [conf['awx_configure_workflow'], conf['awx_configure_sliced_workflow']]
    assert len(items) >= 22
    for item in items:
        survey = s.build_survey(item.get('questions', []), SPECS, name=item['name'])
        assert s.survey_disagreements(survey, item.get('questions', []), SPECS) == [], item['name']


def test_configure_covers_every_entry_playbook():
    conf = _configure()
    playbooks = set(t['playbook'] for t in conf['awx_configure_templates'])
    for name in ('triage', 'sev1', 'sev2', 'sev3', 'sev4', 'investigate', 'communicate', 'resolve', 'runbooks', 'remediate'):
        assert 'playbooks/%s.yml' % name in playbooks, name
    actions = set(t.get('extra_vars', {}).get('remediation_action') for t in conf['awx_configure_templates'])
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


# --- the rendered definitions (render-only mode of awx_configure.yml: no controller) ---------------------------------

def _render_configure(out, *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.default')
    env['PATH'] = os.path.join(ROOT, '.venv', 'bin') + os.pathsep + env.get('PATH', '')
    cmd = [os.path.join(ROOT, '.venv', 'bin', 'ansible-playbook'), '-i', 'localhost,', 'playbooks/awx_configure.yml',
           '-e', 'awx_configure_apply=false', '-e', 'awx_configure_render_dir=%s' % out]
    for item in extra:
        cmd += ['-e', item]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope='module')
def rendered(tmp_path_factory):
    """awx_configure.json rendered with 3 triage slices (not the default, so the variable is seen to reach AWX)."""
    out = tmp_path_factory.mktemp('awx')
    proc = _render_configure(str(out), 'awx_configure_triage_slices=3')
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    with open(str(out / 'awx_configure.json')) as handle:
        data = json.load(handle)
    data['by_name'] = dict((t['name'], t) for t in data['job_templates'])
    return data


def _required(template, variable):
    questions = [q for q in template['survey_spec']['spec'] if q['variable'] == variable]
    return bool(questions) and questions[0]['required'] is True


def test_slice_count_default_is_one():
    assert _configure()['awx_configure_triage_slices'] == 1


def test_only_the_triage_slice_template_is_sliced(rendered):
    """`triage slice` gets the slice count; every other template runs as one job (a sliced `triage` would
    diagnose and communicate once per slice, each from its share of the hosts)."""
    by_name = rendered['by_name']
    piece = by_name['Incident - triage slice']
    assert piece['job_slice_count'] == 3
    assert piece['playbook'] == 'playbooks/triage.yml'
    assert piece['extra_vars']['triage_diagnose'] is False and 'triage_probe' not in piece['extra_vars']
    assert _required(piece, 'incident_id'), 'a slice without an incident_id would declare an incident of its own'
    assert piece['allow_simultaneous'] is True
    others = dict((name, t['job_slice_count']) for name, t in by_name.items() if name != 'Incident - triage slice')
    assert set(others.values()) == {1}, others


def test_declare_and_diagnose_templates(rendered):
    by_name = rendered['by_name']
    declare = by_name['Incident - declare']
    assert declare['playbook'] == 'playbooks/triage.yml'
    # declares only: no probe, and no diagnosis nor message before the slices have recorded anything
    assert declare['extra_vars']['triage_probe'] is False and declare['extra_vars']['triage_diagnose'] is False
    assert not any(q['variable'] == 'incident_id' for q in declare['survey_spec']['spec'])
    diagnose = by_name['Incident - diagnose']
    assert diagnose['playbook'] == 'playbooks/diagnose.yml' and diagnose['job_type'] == 'run'
    assert _required(diagnose, 'incident_id')
    assert 'triage_diagnose' not in diagnose['extra_vars']  # diagnoses, by default


def _graph(workflow):
    nodes = dict((n['identifier'], n) for n in workflow['nodes'])
    edges = dict((name, dict((kind, [c['identifier'] for c in children])
                             for kind, children in (node.get('related') or {}).items()))
                 for name, node in nodes.items())
    return nodes, edges


def test_sliced_workflow_declares_slices_diagnoses_then_remediates(rendered):
    workflows = dict((w['name'], w) for w in rendered['workflows'])
    assert sorted(workflows) == ['Incident - respond with approval', 'Incident - triage sliced']
    nodes, edges = _graph(workflows['Incident - triage sliced'])
    children = set(c for kinds in edges.values() for targets in kinds.values() for c in targets)
    assert children <= set(nodes), 'a link to a node that does not exist'
    assert [n for n in nodes if n not in children] == ['declare'], 'the one root is declare'
    assert edges['declare'] == {'success_nodes': ['triage_slice']}
    assert edges['triage_slice'] == {'success_nodes': ['diagnose']}
    assert edges['diagnose'] == {'success_nodes': ['plan']}
    names = dict((n, node['unified_job_template']['name']) for n, node in nodes.items())
    assert names['declare'] == 'Incident - declare'
    assert names['triage_slice'] == 'Incident - triage slice'
    assert names['diagnose'] == 'Incident - diagnose'
    assert rendered['by_name'][names['triage_slice']]['job_slice_count'] == 3
    # the remediation part is the approval workflow's, node for node
    approval_nodes, approval_edges = _graph(workflows['Incident - respond with approval'])
    assert approval_edges['triage'] == {'success_nodes': ['plan']}
    tail = sorted(set(approval_nodes) - {'triage'})
    assert tail == ['apply', 'approve', 'communicate_identified', 'communicate_mitigating', 'plan']
    for name in tail:
        assert nodes[name] == approval_nodes[name], name
    assert set(nodes) == set(tail) | {'declare', 'triage_slice', 'diagnose'}
    # every job template node runs a template that awx_configure.yml creates
    for workflow in rendered['workflows']:
        for node in workflow['nodes']:
            ujt = node['unified_job_template']
            if ujt['type'] == 'job_template':
                assert ujt['name'] in rendered['by_name'], (workflow['name'], ujt['name'])
        assert workflow['extra_vars'] == {'incident_dir': '/var/lib/awx/incidents'}


@pytest.mark.parametrize('count', ['0', 'two'])
def test_invalid_slice_count_is_refused(tmp_path, count):
    proc = _render_configure(str(tmp_path), 'awx_configure_triage_slices=%s' % count)
    assert proc.returncode != 0
    assert 'awx_configure_triage_slices must be a whole number' in proc.stdout, proc.stdout[-3000:]
    assert not (tmp_path / 'awx_configure.json').exists()
