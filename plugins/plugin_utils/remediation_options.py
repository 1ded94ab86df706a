# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The remediation handlers' settings as roles and -e give them (lists, booleans) and the Redis connection of a
service: one home for every handler (plugins/action/remediation_run.py, plugins/plugin_utils/remediation_*.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean


def as_list(value, kind=str):
    """A role setting that is a list, or a comma-separated string as -e gives it (-e pg_terminate_pids=4001,4008);
    blank items dropped."""
    if value in (None, ''):
        return []
    if isinstance(value, (list, tuple)):
        items = [x for x in value if str(x).strip()]
    else:
        items = [x.strip() for x in str(value).split(',') if x.strip()]
    try:
        return [kind(x) for x in items]
    except (TypeError, ValueError):
        raise AnsibleActionFail('not a list of %s: %r' % (kind.__name__, value))


def as_bool(value):
    """A role setting that is a boolean, or its string as -e gives it (-e redis_maxmemory_persist=false)."""
    return boolean(value, strict=False)


def redis_login(engine, rd):
    """The redis module options of a service's `redis` section (host, port, ACL user, password_var, db, TLS and its
    certificates) with the triage's Redis timeouts (the `redis` role's settings)."""
    s = engine.settings('redis')
    return dict((k, v) for k, v in {
        'login_host': rd.get('host', '127.0.0.1'), 'login_port': int(rd.get('port', 6379)),
        'login_user': rd.get('user'), 'login_password': engine.secret(rd.get('password_var')),
        'db': int(rd.get('db', 0)), 'tls': as_bool(rd.get('tls', False)),
        'validate_certs': as_bool(rd.get('validate_certs', True)), 'ca_cert': rd.get('ca_cert'),
        'client_cert': rd.get('client_cert'), 'client_key': rd.get('client_key'),
        'connect_timeout': s['redis_connect_timeout'], 'socket_timeout': s['redis_socket_timeout']}.items()
        if v not in (None, ''))
