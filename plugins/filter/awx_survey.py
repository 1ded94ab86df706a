# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn role argument specs into AWX survey specs (see plugins/plugin_utils/awx/awx_survey.py).

- awx_survey: an AWX survey spec from question references (role.option) and the roles' argument specs.
- awx_survey_check: the disagreements between a survey spec and the argument specs (empty = they agree).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.sre.incident_response.plugins.plugin_utils.awx import awx_survey as _survey


def awx_survey(questions, specs, name='', description=''):
    try:
        return _survey.build_survey(questions, specs, name=name, description=description)
    except _survey.SurveyError as exc:
        raise AnsibleFilterError('awx_survey: %s' % exc)


def awx_survey_check(survey, questions, specs):
    try:
        return _survey.survey_disagreements(survey, questions, specs)
    except _survey.SurveyError as exc:
        raise AnsibleFilterError('awx_survey_check: %s' % exc)


class FilterModule(object):
    """AWX survey filters."""

    def filters(self):
        return {
            'awx_survey': awx_survey,
            'awx_survey_check': awx_survey_check,
        }
