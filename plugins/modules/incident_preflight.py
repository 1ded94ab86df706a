#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the incident_preflight action plugin (the work is done on the controller)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: incident_preflight
short_description: Check the incident id and every host's incident_services before anything runs
version_added: 0.2.0
description:
  - Runs once on the controller (action plugin, use C(run_once)) and reads every play host's
    C(incident_services) through C(hostvars); the first task of every entry playbook.
  - Refuses an empty C(-e incident_id=) (an extra var cannot be replaced later in the run); leave it out to
    declare a new incident. Refuses a malformed id.
  - Checks C(incident_services) against the schema of docs/reference/services.md (types, ranges, required keys per
    kind, unknown keys) and fails with one line per problem naming the host, the index, the service and the key,
    e.g. C(app-db - incident_services[0] (db\).postgres.port - "abc" is not a port) (with colons).
  - Sets the fact C(incident_preflight_done) so that the role C(incident) does not check again.
author:
  - sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.attributes
attributes:
  check_mode:
    support: full
    details: Read-only.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  hosts:
    description: Hosts whose C(incident_services) are checked; default the hosts of the play.
    type: list
    elements: str
  require_services:
    description: Fail when a host has no or an empty C(incident_services).
    type: bool
    default: true
  incident_id:
    description: Check C(incident_id) (empty extra var, malformed).
    type: bool
    default: true
  must_exist:
    description: The playbook acts on an existing incident; C(incident_id) is required.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Check the input before anything runs
  sre.incident_response.incident_preflight:
  run_once: true

- name: Check the input of a playbook that acts on an existing incident
  sre.incident_response.incident_preflight:
    must_exist: true
    require_services: false
  run_once: true
'''

RETURN = r'''
problems:
  description: One line per problem (empty when the input is valid).
  returned: always
  type: list
  elements: str
  sample: ['app-db: incident_services[0] (db).postgres.port: "abc" is not a port']
hosts:
  description: Hosts whose incident_services were checked.
  returned: always
  type: list
  elements: str
  sample: [app-backend, app-db, app-redis]
'''
