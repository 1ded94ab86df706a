# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The input every entry playbook checks once, before anything runs: the incident id and `incident_services`.

The schema of `incident_services` lives here and only here (docs/reference/services.md is checked against it by
tests/unit/test_incident_input.py). Every problem is one line naming the host, the index, the service and the key:

    app-db: incident_services[0] (db).postgres.port: "abc" is not a port
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.files import INCIDENT_ID_RE, valid_incident_id

KINDS = ('backend', 'postgres', 'redis', 'proxy', 'external')
DEPLOY_TYPES = ('docker', 'systemd', 'process')
LOG_SOURCES = ('docker', 'journald', 'systemd', 'file')
LOG_FORMATS = ('json', 'text')
SSL_MODES = ('disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full')
# how a probe reaches PostgreSQL / Redis on the host (pg_common.CLIENTS, redis_common.CLIENTS)
CLIENTS = ('auto', 'library', 'cli')
TRUE_STRINGS = ('true', 'yes', 'on', '1')
FALSE_STRINGS = ('false', 'no', 'off', '0')
VAR_NAME_RE = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*$')


def show(value):
    """The value as the user wrote it, JSON-quoted and short: "abc", 5432, null, {...}."""
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + '...'


# --- value checks: each returns None when fine, else what is wrong ("is not a port") ----------------------------

def _str(value):
    if not isinstance(value, str) or not value.strip():
        return 'is not a non-empty string'
    return None


def _name(value):
    if not isinstance(value, str) or not NAME_RE.match(value):
        return "is not a name (letters, digits, '.', '_', '-')"
    return None


def _var_name(value):
    if not isinstance(value, str) or not VAR_NAME_RE.match(value):
        return 'is not a variable name (the NAME of the variable holding the secret, not the secret)'
    return None


def _int_value(value):
    """int of an int or a string of digits (inventory templating gives strings), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.match(r'^\s*\d+\s*$', value):
        return int(value)
    return None


def _port(value):
    number = _int_value(value)
    if number is None or not 1 <= number <= 65535:
        return 'is not a port'
    return None


def _bool(value):
    if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in TRUE_STRINGS + FALSE_STRINGS):
        return None
    return 'is not a boolean (true or false)'


def _http_status(value):
    items = value if isinstance(value, list) else [value]
    for item in items:
        number = _int_value(item)
        if number is None or not 100 <= number <= 599:
            return 'is not an HTTP status (100..599, or a list of them)'
    return None


def _seconds(value):
    if isinstance(value, bool):
        return 'is not a number of seconds'
    if isinstance(value, (int, float)) and value > 0:
        return None
    if isinstance(value, str):
        try:
            if float(value) > 0:
                return None
        except ValueError:
            pass
    return 'is not a number of seconds (> 0)'


def _url(value):
    if not isinstance(value, str) or not re.match(r'^https?://[^\s/]+', value):
        return 'is not an http:// or https:// URL'
    return None


def _path(value):
    if not isinstance(value, str) or not value.startswith('/'):
        return 'is not an absolute path'
    return None


def _api_path(value):
    if not isinstance(value, str) or not value.startswith('/'):
        return 'is not an API path (starting with /)'
    return None


def _dict(value):
    return None if isinstance(value, dict) else 'is not a dict'


def _nonneg_int(value):
    number = _int_value(value)
    return None if number is not None and number >= 0 else 'is not a number >= 0'


def _choice(*choices):
    def check(value):
        if value in choices:
            return None
        return 'is not one of %s' % ', '.join(choices)
    return check


def _list_of(check):
    def run(value):
        if not isinstance(value, list):
            return 'is not a list'
        for index, item in enumerate(value):
            problem = check(item)
            if problem:
                return 'item %d (%s) %s' % (index, show(item), problem)
        return None
    return run


# --- the schema -----------------------------------------------------------------------------------------------

# Sections: key -> check. A section listed in REQUIRED must be present.
DEPLOY = {'type': _choice(*DEPLOY_TYPES), 'container': _str, 'unit': _str, 'process': _str, 'release_link': _path}
DEPLOY_NEEDS = {'docker': 'container', 'systemd': 'unit', 'process': 'process'}
HEALTH = {'name': _str, 'url': _url, 'expect_status': _http_status, 'expect_json': _dict, 'expect_body': _str,
          'timeout': _seconds, 'validate_certs': _bool}
LOGS = {'source': _choice(*LOG_SOURCES), 'format': _choice(*LOG_FORMATS), 'container': _str, 'unit': _str,
        'path': _path}
POSTGRES = {'host': _str, 'port': _port, 'database': _str, 'user': _str, 'password_var': _var_name,
            'ssl_mode': _choice(*SSL_MODES), 'ca_cert': _path, 'data_directory': _path, 'app_roles': _list_of(_str),
            'client': _choice(*CLIENTS)}
REDIS = {'host': _str, 'port': _port, 'user': _str, 'password_var': _var_name, 'db': _nonneg_int, 'tls': _bool,
         'validate_certs': _bool, 'ca_cert': _path, 'client_cert': _path, 'client_key': _path,
         'protected_patterns': _list_of(_str), 'evictable_patterns': _list_of(_str), 'client': _choice(*CLIENTS)}


def _url_or_empty(value):
    return None if value in ('', None) else _url(value)


def _trend(value):
    if not isinstance(value, dict) or not value.get('name') or not value.get('query'):
        return 'is not a trend (a dict with name and query; optional unit, warn_growth_pct, crit_growth_pct)'
    return None


# prometheus.url: trends from Prometheus (roles/trends); empty: none
PROMETHEUS = {'url': _url_or_empty, 'trends': _list_of(_trend)}
TLS = {'cert_path': _path, 'key_path': _path, 'server_names': _list_of(_str), 'reload_command': _list_of(_str)}

SERVICE = {
    'name': _name, 'kind': _choice(*KINDS), 'purpose': _str, 'owner_team': _str,
    'deploy': DEPLOY, 'health': [HEALTH], 'logs': LOGS, 'postgres': POSTGRES, 'redis': REDIS, 'tls': TLS,
    'prometheus': PROMETHEUS,
    'endpoints': _list_of(_api_path), 'critical_paths': _list_of(_api_path), 'depends_on': _list_of(_name),
    'disk_paths': _list_of(_path),
}
REQUIRED = ('name', 'kind')
# A kind's own section: required for that kind, refused on others.
KIND_SECTIONS = {'postgres': 'postgres', 'redis': 'redis'}


def _section(prefix, value, schema):
    """Problems of one dict section (deploy, logs, postgres, ...) against its schema."""
    if not isinstance(value, dict):
        return ['%s: %s is not a dict' % (prefix, show(value))]
    problems = []
    for key in value:
        if key not in schema:
            problems.append('%s.%s: unknown key (known: %s)' % (prefix, key, ', '.join(sorted(schema))))
            continue
        problem = schema[key](value[key])
        if problem:
            problems.append('%s.%s: %s %s' % (prefix, key, show(value[key]), problem))
    return problems


def service_problems(service, index):
    """Every problem of one incident_services entry, each 'incident_services[i] (name).key: "value" is not ...'."""
    if not isinstance(service, dict):
        return ['incident_services[%d]: %s is not a service (a dict with at least name and kind)' % (index, show(service))]
    name = service.get('name')
    label = 'incident_services[%d] (%s)' % (index, name if isinstance(name, str) and name else '?')
    problems = ['%s.%s: is required' % (label, key) for key in REQUIRED if key not in service]
    for key, value in service.items():
        if key not in SERVICE:
            problems.append('%s.%s: unknown key (known: %s)' % (label, key, ', '.join(sorted(SERVICE))))
            continue
        schema = SERVICE[key]
        where = '%s.%s' % (label, key)
        if isinstance(schema, dict):
            problems.extend(_section(where, value, schema))
        elif isinstance(schema, list):
            if not isinstance(value, list):
                problems.append('%s: %s is not a list' % (where, show(value)))
                continue
            for number, item in enumerate(value):
                problems.extend(_section('%s[%d]' % (where, number), item, schema[0]))
                if isinstance(item, dict) and key == 'health' and 'url' not in item:
                    problems.append('%s[%d].url: is required' % (where, number))
        else:
            problem = schema(value)
            if problem:
                problems.append('%s: %s %s' % (where, show(value), problem))
    kind = service.get('kind')
    for section_kind, section in KIND_SECTIONS.items():
        if kind == section_kind and section not in service:
            problems.append('%s.%s: is required for kind %s' % (label, section, kind))
        elif kind in KINDS and kind != section_kind and section in service:
            problems.append('%s.%s: only services of kind %s have it (this one is %s)' % (label, section, section_kind, kind))
    deploy = service.get('deploy')
    if isinstance(deploy, dict):
        needed = DEPLOY_NEEDS.get(deploy.get('type'))
        if 'type' not in deploy:
            problems.append('%s.deploy.type: is required (one of %s)' % (label, ', '.join(DEPLOY_TYPES)))
        elif needed and needed not in deploy:
            problems.append('%s.deploy.%s: is required for deploy.type %s' % (label, needed, deploy['type']))
    logs = service.get('logs')
    if isinstance(logs, dict) and logs.get('source') == 'file' and 'path' not in logs:
        problems.append('%s.logs.path: is required for logs.source file' % label)
    return problems


def services_problems(services, required=True):
    """Problems of one host's incident_services value (without the host prefix)."""
    if services is None:
        return ['incident_services: is missing: describe the services of this host (docs/reference/services.md)'] \
            if required else []
    if not isinstance(services, list):
        return ['incident_services: %s is not a list of services (docs/reference/services.md)' % show(services)]
    if not services and required:
        return ['incident_services: is empty: describe the services of this host (docs/reference/services.md)']
    problems = []
    seen = {}
    for index, service in enumerate(services):
        problems.extend(service_problems(service, index))
        name = service.get('name') if isinstance(service, dict) else None
        if isinstance(name, str) and name:
            if name in seen:
                problems.append('incident_services[%d] (%s).name: "%s" is already incident_services[%d]'
                                % (index, name, name, seen[name]))
            seen.setdefault(name, index)
    return problems


def hosts_problems(host_services, required=True):
    """{host: incident_services value or None} -> ['host: problem', ...], hosts in sorted order."""
    out = []
    for host in sorted(host_services):
        out.extend('%s: %s' % (host, p) for p in services_problems(host_services[host], required=required))
    return out


def incident_id_problems(given, value, must_exist=False):
    """Problems of the incident id.

    given: (True, value) when -e incident_id was passed on the command line / by AWX, else (False, None).
    value: the incident_id the play sees (extra var, inventory or play vars), '' when none.
    Empty is refused when it was given explicitly: an extra var cannot be replaced later in the run, so an empty
    one would reach every later play as "no incident". Leave it out to declare a new incident.
    """
    was_given, extra = given
    if was_given and (extra is None or (isinstance(extra, str) and not extra.strip())):
        return ['incident_id: %s is empty: leave -e incident_id out to declare a new incident, or give the id of an '
                'existing one (INC-YYYYMMDD-HHMM-xxxx)%s' % (show(extra), ' - this playbook needs an existing incident'
                                                             if must_exist else '')]
    text = '' if value is None else str(value)
    if must_exist and not text:
        return ['incident_id: is required: this playbook acts on an existing incident (-e incident_id=INC-...)']
    if text and not valid_incident_id(text):
        return ["incident_id: %s is malformed: it must match %s (letters, digits, '.', '_', '-'; e.g. "
                "INC-20261127-0312-a1b2)" % (show(text), INCIDENT_ID_RE.pattern)]
    return []
