# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: trends from Prometheus as findings (documentation in plugins/modules/prometheus_trends.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import prom_trend


class ActionModule(ActionBase):
    """Runs on the controller: one bounded range query per trend, concurrently for every service."""

    TRANSFERS_FILES = False
    _requires_connection = False

    ARGSPEC = dict(
        hosts_services=dict(type='dict', required=True),
        window_minutes=dict(type='int', default=30),
        timeout=dict(type='float', default=5.0),
        max_points=dict(type='int', default=120),
        warn_growth_pct=dict(type='float', default=25.0),
        crit_growth_pct=dict(type='float', default=50.0),
        token=dict(type='str', default='', no_log=True),
    )

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGSPEC)
        problems = []
        if not 1 <= args['window_minutes'] <= 1440:
            problems.append('window_minutes must be 1..1440, got %s' % args['window_minutes'])
        if not 0 < args['timeout'] <= 60:
            problems.append('timeout must be in (0, 60] seconds, got %s' % args['timeout'])
        if not 2 <= args['max_points'] <= 11000:
            problems.append('max_points must be 2..11000, got %s' % args['max_points'])
        if args['warn_growth_pct'] > args['crit_growth_pct']:
            problems.append('warn_growth_pct must not exceed crit_growth_pct')
        if problems:
            raise AnsibleActionFail('Invalid input, nothing was queried: %s' % ' | '.join(problems))
        findings = prom_trend.probe_all(
            args['hosts_services'], window_minutes=args['window_minutes'], timeout=args['timeout'],
            max_points=args['max_points'], warn_pct=args['warn_growth_pct'], crit_pct=args['crit_growth_pct'],
            token=args['token'])
        result.update(changed=False, findings=findings,
                      msg='%d trend findings from Prometheus' % len(findings))
        return result
