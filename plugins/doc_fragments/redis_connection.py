# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Redis connection options (plugins/module_utils/redis_common.py redis_argument_spec)
    DOCUMENTATION = r'''
options:
  login_host:
    description: Host name or address of the Redis server.
    type: str
    default: 127.0.0.1
    aliases: [host]
  login_port:
    description: TCP port of the Redis server.
    type: int
    default: 6379
    aliases: [port]
  login_user:
    description: ACL user name (Redis 6+); omit for the default user.
    type: str
    aliases: [user, username]
  login_password:
    description:
      - Password (C(requirepass) or the ACL user's). Never logged.
      - Pass it from a vaulted variable, e.g. C("{{ lookup('ansible.builtin.vars', service.redis.password_var) }}").
    type: str
    aliases: [password]
  db:
    description: Database number.
    type: int
    default: 0
  tls:
    description: Connect over TLS.
    type: bool
    default: false
  validate_certs:
    description: With O(tls), verify the server certificate and host name.
    type: bool
    default: true
  ca_cert:
    description: With O(tls), CA bundle to verify the server with.
    type: path
  client_cert:
    description: With O(tls), client certificate for mutual TLS.
    type: path
  client_key:
    description: With O(tls), private key of O(client_cert).
    type: path
  connect_timeout:
    description: Seconds to wait for the TCP (and TLS) connection.
    type: float
    default: 3.0
  socket_timeout:
    description: Seconds to wait for each command's reply.
    type: float
    default: 5.0
requirements:
  - redis (redis-py) on the host that runs the module
'''
