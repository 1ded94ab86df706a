# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test `incident_id`: the roles' preflights check an incident id with the one rule the store applies
(plugin_utils/incident/files.valid_incident_id)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.files import valid_incident_id


def incident_id(value):
    """True when the value is an incident id the store accepts."""
    return valid_incident_id(value)


class TestModule(object):
    def tests(self):
        return {'incident_id': incident_id}
