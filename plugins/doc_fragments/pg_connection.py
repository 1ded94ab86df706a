# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # PostgreSQL connection options (plugins/module_utils/pg_common.py pg_argument_spec)
    DOCUMENTATION = r'''
options:
  login_host:
    description: Host name or address of the PostgreSQL server.
    type: str
    default: 127.0.0.1
    aliases: [host]
  login_port:
    description: TCP port of the PostgreSQL server.
    type: int
    default: 5432
    aliases: [port]
  login_db:
    description: Database to connect to.
    type: str
    default: postgres
    aliases: [db, database]
  login_user:
    description: Role to connect as. Monitoring needs C(pg_monitor) to see other sessions' queries.
    type: str
    default: postgres
    aliases: [user]
  login_password:
    description:
      - Password of O(login_user). Never logged.
      - Pass it from a vaulted variable, e.g. C("{{ lookup('ansible.builtin.vars', service.postgres.password_var) }}").
    type: str
    aliases: [password]
  connect_timeout:
    description: Seconds to wait for the connection.
    type: int
    default: 5
  statement_timeout:
    description: Per-statement and lock timeout in milliseconds (0 disables it).
    type: int
    default: 10000
  ssl_mode:
    description: libpq C(sslmode).
    type: str
    default: prefer
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ca_cert:
    description: CA bundle to verify the server certificate with (libpq C(sslrootcert)).
    type: path
    aliases: [ssl_rootcert]
requirements:
  - psycopg2 (psycopg2-binary) on the host that runs the module
'''
