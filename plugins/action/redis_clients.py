# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: run the module redis_clients and return its result redacted (plugin_utils/scrubbed_action.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.sre.incident_response.plugins.plugin_utils.scrubbed_action import ScrubbedModuleAction


class ActionModule(ScrubbedModuleAction):
    """The module redis_clients; its result redacted with the task's secrets, keys and values."""
