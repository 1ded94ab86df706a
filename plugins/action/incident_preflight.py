# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: check the incident id and every host's incident_services once, before anything runs
(documentation in plugins/modules/incident_preflight.py; the rules in plugins/plugin_utils/incident/incident_input.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase
from ansible.utils.vars import load_extra_vars

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import incident_input as rules

MISSING = object()


class ActionModule(ActionBase):
    """Runs once on the controller and reads every host's variables through hostvars."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    ARGSPEC = dict(
        hosts=dict(type='list', elements='str'),
        require_services=dict(type='bool', default=True),
        incident_id=dict(type='bool', default=True),
        must_exist=dict(type='bool', default=False),
    )

    def _extra_incident_id(self, task_vars):
        """(given, value) of -e incident_id: extra vars win over everything, so an empty one must be caught here."""
        try:
            extra = load_extra_vars(self._loader)
        except Exception:  # pylint: disable=broad-except
            extra = {}
        if 'incident_id' in extra:
            return True, extra['incident_id']
        return False, None

    def _services(self, hostvars, host):
        try:
            host_vars = hostvars[host]
        except KeyError:
            return MISSING, None
        try:
            if 'incident_services' not in host_vars:
                return None, None
            return host_vars['incident_services'], None
        except Exception as exc:  # pylint: disable=broad-except
            return MISSING, 'incident_services: cannot be templated: %s' % ' '.join(str(exc).split())[:300]

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGSPEC)
        problems = []
        if args['incident_id']:
            value = task_vars.get('incident_id', '')
            try:
                value = self._templar.template(value)
            except Exception:  # pylint: disable=broad-except
                pass
            problems.extend(rules.incident_id_problems(self._extra_incident_id(task_vars), value,
                                                       must_exist=args['must_exist']))
        hosts = args['hosts'] if args['hosts'] is not None else list(task_vars.get('ansible_play_hosts_all') or [])
        hostvars = task_vars.get('hostvars') or {}
        services = {}
        for host in hosts:
            value, error = self._services(hostvars, host)
            if error:
                problems.append('%s: %s' % (host, error))
            elif value is not MISSING:
                services[host] = value
        problems.extend(rules.hosts_problems(services, required=args['require_services']))
        result['problems'] = problems
        result['hosts'] = sorted(services)
        result['changed'] = False
        if problems:
            result['failed'] = True
            result['msg'] = 'Invalid input, nothing was run:\n' + '\n'.join(problems)
            return result
        result['msg'] = 'input ok: incident_id %s; incident_services of %d host(s)' % (
            task_vars.get('incident_id') or '(new incident)', len(services))
        result['ansible_facts'] = {'incident_preflight_done': True}
        return result
