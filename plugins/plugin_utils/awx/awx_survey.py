# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWX / AAP survey specs generated from role ``meta/argument_specs.yml`` options.

A survey question is derived from one argument-spec option: its type, default, choices,
required flag and description. Which options a job template asks is a curated list
(``questions``: ``role.option`` strings or dicts), what each question asks is not:
it always comes from the spec, so a renamed option, a changed default or a new choice
shows up in the next ``awx_configure.yml`` run and in ``survey_disagreements``.

Mapping (AWX survey types: text, textarea, password, integer, float, multiplechoice, multiselect):

==========================  ==============================================================
argument spec               survey question
==========================  ==============================================================
str / path + choices        multiplechoice, default the spec default
str / path                  text (password when the option is no_log)
int                         integer
float                       float
bool                        multiplechoice "true" / "false" (roles cast with ``| bool``)
list + choices              multiselect (AWX passes a list), default newline-joined
list / dict / raw           not surveyable: AWX cannot pass typed lists or dicts from a
                            survey; set them in the template's extra_vars instead
==========================  ==============================================================

A question may override ``variable`` (the extra var it sets, e.g. a playbook alias such as
``status`` for ``comms_status``), ``required``, ``choices`` (only narrowing the spec's) and
``default`` (must satisfy the spec); ``survey_disagreements`` checks those rules too.

Pure Python, no Ansible imports: unit tests and scripts use it directly.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

SURVEY_TYPES = ('text', 'textarea', 'password', 'integer', 'float', 'multiplechoice', 'multiselect')
NOT_SURVEYABLE = ('list', 'dict', 'raw', 'jsonarg', 'json', 'bytes', 'bits')
TEXT_MAX = 1024
BOOL_CHOICES = ['true', 'false']


class SurveyError(ValueError):
    """A survey cannot be generated (unknown option, type without a survey type, bad override)."""


def _text(value):
    if isinstance(value, list):
        return ' '.join(str(v) for v in value)
    return '' if value is None else str(value)


def _is_template(value):
    return isinstance(value, str) and ('{{' in value or '{%' in value)


def _bool_text(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    text = str(value).strip().lower()
    if text in ('1', 'yes', 'on', 'true', 'y', 't'):
        return 'true'
    if text in ('0', 'no', 'off', 'false', 'n', 'f', ''):
        return 'false'
    raise SurveyError('not a boolean: %r' % (value,))


def option_survey_type(option):
    """The AWX survey type of an argument-spec option, or None when it has none."""
    otype = option.get('type', 'str')
    choices = option.get('choices')
    if otype in ('str', 'path'):
        if choices:
            return 'multiplechoice'
        return 'password' if option.get('no_log') else 'text'
    if otype == 'int':
        return 'integer'
    if otype == 'float':
        return 'float'
    if otype == 'bool':
        return 'multiplechoice'
    if otype == 'list' and choices:
        return 'multiselect'
    return None


def _spec_default(option, qtype):
    """The survey default of an option in AWX's representation."""
    default = option.get('default')
    if default is None or _is_template(default):
        # A templated default ({{ incident_window | default('15m') }}) is resolved by the play, not the survey.
        return ''
    if option.get('type') == 'bool':
        return _bool_text(default)
    if qtype == 'multiselect':
        return '\n'.join(str(v) for v in (default or []))
    if qtype in ('integer', 'float'):
        return default
    return str(default)


def _spec_choices(option, qtype):
    if option.get('type') == 'bool':
        return list(BOOL_CHOICES)
    return [str(c) for c in option.get('choices') or []]


def option_to_question(name, option, variable=None, required=None, choices=None, default=None, question_name=None):
    """One AWX survey question from the argument-spec option ``name``."""
    qtype = option_survey_type(option)
    if qtype is None:
        raise SurveyError(
            "option %s (type %s) has no AWX survey type: lists without choices, dicts and raw values cannot be "
            "typed in a survey; set it in the job template's extra_vars" % (name, option.get('type', 'str')))
    description = _text(option.get('description'))
    question = {
        'question_name': question_name or _title(name),
        'question_description': description[:TEXT_MAX],
        'variable': variable or name,
        'type': qtype,
        'required': bool(option.get('required', False)) if required is None else bool(required),
        'default': _spec_default(option, qtype),
    }
    spec_choices = _spec_choices(option, qtype)
    if spec_choices:
        question['choices'] = spec_choices
    if choices is not None:
        narrowed = [str(c) for c in choices]
        if spec_choices:
            extra = [c for c in narrowed if c not in spec_choices]
            if extra:
                raise SurveyError('option %s: choices %s are not in the spec choices %s' % (name, extra, spec_choices))
        if qtype not in ('multiplechoice', 'multiselect'):
            qtype = 'multiplechoice'
            question['type'] = qtype
        question['choices'] = narrowed
    if default is not None:
        question['default'] = _bool_text(default) if option.get('type') == 'bool' else (
            '\n'.join(default) if isinstance(default, list) else default)
    if qtype in ('text', 'password'):
        question['min'] = 0
        question['max'] = TEXT_MAX
    if question.get('choices') and qtype == 'multiplechoice' and question['default'] not in question['choices'] + ['']:
        raise SurveyError('option %s: default %r is not one of %s' % (name, question['default'], question['choices']))
    return question


def _title(name):
    return name.replace('_', ' ').strip().capitalize()[:TEXT_MAX]


def parse_ref(ref):
    """'role.option' or 'role:entry.option' or a dict -> dict(role, entry, option, overrides...)."""
    if isinstance(ref, dict):
        item = dict(ref)
        if 'option' not in item or 'role' not in item:
            if 'ref' in item:
                item.update(parse_ref(item.pop('ref')))
            else:
                raise SurveyError('question %r needs role and option (or ref: role.option)' % (ref,))
        item.setdefault('entry', 'main')
        return item
    if not isinstance(ref, str) or '.' not in ref:
        raise SurveyError('question reference %r is not role.option' % (ref,))
    role, option = ref.split('.', 1)
    entry = 'main'
    if ':' in role:
        role, entry = role.split(':', 1)
    return {'role': role, 'entry': entry, 'option': option}


def spec_option(specs, role, entry, option):
    """The argument-spec option ``option`` of ``role`` (entry point ``entry``) from ``specs`` (role -> file data)."""
    if role not in specs:
        raise SurveyError('no argument specs loaded for role %s' % role)
    data = specs[role] or {}
    entries = data.get('argument_specs', data)
    if entry not in entries:
        raise SurveyError('role %s has no entry point %s' % (role, entry))
    options = entries[entry].get('options') or {}
    if option not in options:
        raise SurveyError('role %s (entry point %s) has no option %s; known: %s'
                          % (role, entry, option, ', '.join(sorted(options))))
    return options[option]


_OVERRIDES = ('variable', 'required', 'choices', 'default', 'question_name')


def build_survey(questions, specs, name='', description=''):
    """A complete AWX survey spec: {name, description, spec: [questions]} from references and role specs."""
    out = []
    seen = set()
    for ref in questions or []:
        item = parse_ref(ref)
        option = spec_option(specs, item['role'], item['entry'], item['option'])
        kwargs = dict((k, item[k]) for k in _OVERRIDES if item.get(k) is not None)
        question = option_to_question(item['option'], option, **kwargs)
        if question['variable'] in seen:
            raise SurveyError('variable %s is asked twice' % question['variable'])
        seen.add(question['variable'])
        out.append(question)
    return {'name': name, 'description': description, 'spec': out}


def survey_disagreements(survey, questions, specs):
    """Every way ``survey`` (an AWX survey spec, e.g. exported from the controller) disagrees with the
    argument specs behind ``questions``. Empty list = they agree."""
    problems = []
    asked = dict((q.get('variable'), q) for q in (survey or {}).get('spec', []))
    for ref in questions or []:
        item = parse_ref(ref)
        label = '%s.%s' % (item['role'], item['option'])
        try:
            option = spec_option(specs, item['role'], item['entry'], item['option'])
            kwargs = dict((k, item[k]) for k in _OVERRIDES if item.get(k) is not None)
            expected = option_to_question(item['option'], option, **kwargs)
        except SurveyError as exc:
            problems.append('%s: %s' % (label, exc))
            continue
        actual = asked.pop(expected['variable'], None)
        if actual is None:
            problems.append('%s: no question sets variable %s' % (label, expected['variable']))
            continue
        for key in ('type', 'required', 'default', 'choices'):
            want = expected.get(key)
            got = actual.get(key)
            if key == 'choices':
                want, got = list(want or []), list(got or [])
            if key == 'default' and expected['type'] in ('integer', 'float') and got not in ('', None) and want not in ('', None):
                try:
                    same = float(got) == float(want)
                except (TypeError, ValueError):
                    same = False
                if same:
                    continue
            if want != got:
                problems.append('%s: %s is %r in the survey but %r in the argument spec' % (label, key, got, want))
    for variable in sorted(asked):
        problems.append('survey asks %s, which no argument-spec option backs' % variable)
    return problems


def surveyable_options(specs, role, entry='main'):
    """(name, survey type or None) for every option of a role entry point, in spec order."""
    data = specs[role] or {}
    entries = data.get('argument_specs', data)
    options = entries.get(entry, {}).get('options') or {}
    return [(name, option_survey_type(opt)) for name, opt in options.items()]


def load_role_specs(roles_dir, roles=None):
    """{role: parsed meta/argument_specs.yml} for the roles under ``roles_dir`` (needs PyYAML)."""
    import yaml  # pylint: disable=import-outside-toplevel
    out = {}
    for role in sorted(os.listdir(roles_dir)):
        if roles is not None and role not in roles:
            continue
        path = os.path.join(roles_dir, role, 'meta', 'argument_specs.yml')
        if os.path.isfile(path):
            with open(path) as handle:
                out[role] = yaml.safe_load(handle)
    return out


def dumps(survey):
    """Stable JSON of a survey (for exports and diffs)."""
    return json.dumps(survey, indent=2, sort_keys=True)
