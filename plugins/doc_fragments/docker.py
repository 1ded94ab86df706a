# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Docker connection options (plugins/module_utils/docker_api.py docker_argument_spec)
    DOCUMENTATION = r'''
options:
  docker_host:
    description:
      - Docker engine socket (C(unix:///path)); defaults to C(DOCKER_HOST), else C(/var/run/docker.sock).
      - Only unix sockets are supported; run the module on the Docker host.
      - Set it once for every Docker module of the collection with
        C(module_defaults) for C(group/sre.incident_response.docker).
    type: str
requirements:
  - Docker Engine API 1.41 or later (Docker 20.10+) on the host that runs the module; nothing to install
    (the client is the Python standard library)
'''
