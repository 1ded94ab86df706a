# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The settings of a probe role, read on the controller from outside the role.

The roles (health, app_logs, changes, postgres, redis, network, host, trends) are the
documented entry points, and their defaults/main.yml and meta/argument_specs.yml
are where every setting is defined. The probe action runs every area in one task,
outside those roles, so it reads the same files: the role's defaults, overridden by
the host's variables (inventory, extra vars), templated, then validated and typed by
the role's argument spec. One definition, the same values whichever way a probe runs.

Resolved once per play, not per host. A role's settings are a function of few inputs:
the role's own variables a host sets (inventory, extra vars) and the variables its
defaults' templates read (incident_window, incident_dns_names, ...). Those inputs are
templated for each host - cheap - and the settings are resolved only for inputs not seen
before in this run; every other host reads the result from the run's cache (a file in
ansible-playbook's local temporary directory: each host's task runs in a process of its
own). A host that overrides a setting, or whose inputs template differently, gets settings
of its own. Defaults whose templates call something that is not a function of those
inputs (a lookup, now(), random) are resolved for every host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import fcntl
import hashlib
import json
import os
import re

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from jinja2 import Environment, TemplateSyntaxError, meta, nodes

ROLES = ('health', 'app_logs', 'changes', 'postgres', 'redis', 'network', 'host', 'trends')
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
                 ('postgres_disk_warn_pct', 'postgres_disk_crit_pct'),
                 ('postgres_slot_retained_warn_bytes', 'postgres_slot_retained_crit_bytes'),
                 ('postgres_replica_lag_warn_seconds', 'postgres_replica_lag_crit_seconds'),
                 ('postgres_xid_age_warn_pct', 'postgres_xid_age_crit_pct')],
    'redis': [('redis_memory_warn_pct', 'redis_memory_crit_pct'), ('redis_clients_warn_pct', 'redis_clients_crit_pct'),
              ('redis_latency_warn_ms', 'redis_latency_crit_ms')],
    'network': [('network_disk_warn_pct', 'network_disk_crit_pct'), ('network_memory_warn_pct', 'network_memory_crit_pct'),
                ('network_tls_crit_days', 'network_tls_warn_days')],
    'host': [('host_fds_warn_pct', 'host_fds_crit_pct')],
    'trends': [('trends_warn_growth_pct', 'trends_crit_growth_pct')],
}
DURATIONS = {'health': ['health_window'], 'app_logs': ['app_logs_window'], 'changes': ['changes_window'],
             'redis': ['redis_window'], 'host': ['host_window'], 'postgres': ['postgres_window']}
REQUIRED_KEYS = {'network': [('network_dns_names', 'name', 'DNS entry without a name: '),
                             ('network_tls_endpoints', 'port', 'TLS endpoint without a port: '),
                             ('network_dependencies', 'url', 'dependency without a url: ')]}

_CACHE = {}
# Names whose result is not a function of the variables a template reads: a default that calls one is never cached.
VOLATILE = frozenset(('lookup', 'query', 'q', 'now', 'lipsum', 'random', 'shuffle'))
ABSENT = {'__absent__': True}


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


def template_names(value):
    """(names, pure): the variables the templates in value read, and False when one calls a VOLATILE name."""
    if isinstance(value, dict):
        items = list(value.keys()) + list(value.values())
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    names, pure = set(), True
    for item in items:
        if isinstance(item, (dict, list, tuple)):
            more, more_pure = template_names(item)
            names |= more
            pure = pure and more_pure
            continue
        if not isinstance(item, str) or ('{{' not in item and '{%' not in item):
            continue
        try:
            tree = Environment().parse(str(item))
        except TemplateSyntaxError:
            return names, False
        names |= meta.find_undeclared_variables(tree) - VOLATILE
        for node in tree.find_all((nodes.Filter, nodes.Call)):
            name = node.name if isinstance(node, nodes.Filter) else getattr(node.node, 'name', None)
            if name is None or name.rsplit('.', 1)[-1] in VOLATILE:
                pure = False
    return names, pure


def inputs(role, loader):
    """(names, pure) of a role: its own variables and the variables its defaults read; pure as template_names()."""
    key = ('inputs', role)
    if key not in _CACHE:
        base = defaults(role, loader)
        names, pure = template_names(list(base.values()))
        _CACHE[key] = (frozenset(names | set(base)), pure)
    return _CACHE[key]


def preload(loader):
    """Read every role's defaults and argument spec now (the action calls it in ansible-playbook's main process,
    so the process of every host's task starts with them read)."""
    for role in ROLES:
        defaults(role, loader)
        _spec(role, loader)
        inputs(role, loader)


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


def _environment(role, task_vars, templar, loader):
    merged = dict(defaults(role, loader))
    merged.update(task_vars)
    return merged, templar.copy_with_new_env(available_variables=merged)


def _resolve(role, merged, env, loader):
    base = defaults(role, loader)
    values = {}
    for key in base:
        values[key] = env.template(merged[key])
    spec = _spec(role, loader)
    result = ArgumentSpecValidator(dict((k, v) for k, v in spec.items() if k in values)).validate(values)
    errors = list(result.error_messages) + problems(role, result.validated_parameters)
    if errors:
        raise AnsibleActionFail('%s role: %s' % (role, '; '.join(str(e) for e in errors)))
    return result.validated_parameters


def cache_key(role, values):
    """The cache's name for a role's settings given the templated values of its inputs ({name: value or ABSENT})."""
    text = json.dumps([role, values], sort_keys=True, default=repr, separators=(',', ':'))
    return '%s-%s' % (role, hashlib.sha256(text.encode('utf-8')).hexdigest()[:32])


@contextlib.contextmanager
def _locked(path):
    with open(path, 'a') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _write(path, values):
    """Write values as JSON, readable by this user only; False when they are not JSON (nothing written)."""
    try:
        text = json.dumps(values, sort_keys=True)
    except (TypeError, ValueError):
        return False
    tmp = '%s.%d.tmp' % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as handle:
        handle.write(text)
    os.rename(tmp, path)
    return True


def role_settings(role, task_vars, templar, loader, cache_dir=None):
    """{variable: typed value} of every setting of the role for this host, or AnsibleActionFail naming the problems.

    cache_dir: a directory private to this run (the action passes ansible-playbook's local temporary directory);
    None resolves without a cache.
    """
    merged, env = _environment(role, task_vars, templar, loader)
    names, pure = inputs(role, loader)
    if not (cache_dir and pure):
        return _resolve(role, merged, env, loader)
    # the inputs as this host sees them, templated: equal inputs, equal settings
    seen = {}
    for name in sorted(names):
        seen[name] = env.template(task_vars[name]) if name in task_vars else ABSENT
    key = cache_key(role, seen)
    if key not in _CACHE:
        path = os.path.join(cache_dir, key + '.json')
        values = _read(path)
        if values is None:
            os.makedirs(cache_dir, mode=0o700, exist_ok=True)
            with _locked(path + '.lock'):  # one host resolves, the others with the same inputs wait, then read
                values = _read(path)
                if values is None:
                    values = _resolve(role, merged, env, loader)
                    if not _write(path, values):
                        return values
        _CACHE[key] = json.dumps(values, sort_keys=True)
    return json.loads(_CACHE[key])
