# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The settings of a probe role, read on the controller from outside the role.

The roles (health, app_logs, changes, postgres, redis, network, trends) are the
documented entry points, and their defaults/main.yml and meta/argument_specs.yml
are where every setting is defined. The probe action runs every area in one task,
outside those roles, so it reads the same files: the role's defaults, overridden by
the host's variables (inventory, extra vars), templated, then validated and typed by
the role's argument spec. One definition, the same values whichever way a probe runs.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'roles')
DURATION = re.compile(r'^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$')
SPEC_KEYS = ('type', 'elements', 'default', 'choices', 'options', 'required', 'no_log')

# (warn, crit) pairs a role refuses when warn is past crit; (low, high) for the TLS days.
ORDERED = {
    'health': [('health_latency_warn_ms', 'health_latency_crit_ms')],
    'app_logs': [('app_logs_error_rate_warn_pct', 'app_logs_error_rate_crit_pct'),
                 ('app_logs_error_lines_warn', 'app_logs_error_lines_crit'),
                 ('app_logs_latency_p95_warn_ms', 'app_logs_latency_p95_crit_ms')],
    'postgres': [('postgres_connections_warn_pct', 'postgres_connections_crit_pct'),
                 ('postgres_long_query_seconds', 'postgres_long_query_crit_seconds'),
                 ('postgres_lock_wait_warn_seconds', 'postgres_lock_wait_crit_seconds'),
                 ('postgres_disk_warn_pct', 'postgres_disk_crit_pct')],
    'redis': [('redis_memory_warn_pct', 'redis_memory_crit_pct'), ('redis_clients_warn_pct', 'redis_clients_crit_pct')],
    'network': [('network_disk_warn_pct', 'network_disk_crit_pct'), ('network_memory_warn_pct', 'network_memory_crit_pct'),
                ('network_tls_crit_days', 'network_tls_warn_days')],
    'trends': [('trends_warn_growth_pct', 'trends_crit_growth_pct')],
}
DURATIONS = {'health': ['health_window'], 'app_logs': ['app_logs_window'], 'changes': ['changes_window'],
             'redis': ['redis_window']}
REQUIRED_KEYS = {'network': [('network_dns_names', 'name', 'DNS entry without a name: '),
                             ('network_tls_endpoints', 'port', 'TLS endpoint without a port: '),
                             ('network_dependencies', 'url', 'dependency without a url: ')]}

_CACHE = {}


def _spec(role, loader):
    """The role's argument spec options (main entry point), only the keys the validator knows."""
    path = os.path.join(ROLES_DIR, role, 'meta', 'argument_specs.yml')
    if path not in _CACHE:
        data = loader.load_from_file(path) or {}
        options = ((data.get('argument_specs') or {}).get('main') or {}).get('options') or {}
        _CACHE[path] = dict((name, _clean(spec)) for name, spec in options.items())
    return _CACHE[path]


def _clean(spec):
    out = dict((k, v) for k, v in (spec or {}).items() if k in SPEC_KEYS and k != 'default')
    if isinstance(out.get('options'), dict):
        out['options'] = dict((k, _clean(v)) for k, v in out['options'].items())
    return out


def defaults(role, loader):
    path = os.path.join(ROLES_DIR, role, 'defaults', 'main.yml')
    key = ('defaults', path)
    if key not in _CACHE:
        _CACHE[key] = loader.load_from_file(path, trusted_as_template=True) or {}
    return _CACHE[key]


def problems(role, values):
    """The settings a role refuses, in the words of its old preflight (warn past crit, bad durations)."""
    out = []
    for key in DURATIONS.get(role, []):
        if not DURATION.match(str(values.get(key))):
            out.append('%s must be a duration such as 15m, got %s' % (key, values.get(key)))
    for low, high in ORDERED.get(role, []):
        try:
            if float(values[low]) > float(values[high]):
                out.append('%s must not exceed %s' % (low, high))
        except (KeyError, TypeError, ValueError):
            continue
    for key, required, prefix in REQUIRED_KEYS.get(role, []):
        for item in values.get(key) or []:
            if not isinstance(item, dict) or required not in item:
                out.append(prefix + str(item))
    return out


def role_settings(role, task_vars, templar, loader):
    """{variable: typed value} of every setting of the role for this host, or AnsibleActionFail naming the problems."""
    base = defaults(role, loader)
    merged = dict(base)
    merged.update(task_vars)
    env = templar.copy_with_new_env(available_variables=merged)
    values = {}
    for key in base:
        values[key] = env.template(merged[key])
    spec = _spec(role, loader)
    result = ArgumentSpecValidator(dict((k, v) for k, v in spec.items() if k in values)).validate(values)
    errors = list(result.error_messages) + problems(role, result.validated_parameters)
    if errors:
        raise AnsibleActionFail('%s role: %s' % (role, '; '.join(str(e) for e in errors)))
    return result.validated_parameters
