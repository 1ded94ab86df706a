#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the runbook action plugin (the work is done on the controller)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: runbook
short_description: Render one runbook per service from the inventory's service definitions
version_added: 0.1.0
description:
  - Runs on the controller (action plugin). Writes C(<dest>/<service>-runbook.md) for every service given, with
    overview (purpose, where it runs, owner team, dependencies, dependents, critical paths, health checks),
    common issues of its kind with symptoms, the exact diagnosis commands of this collection and the resolution
    steps (the remediation playbook with its plan and approved apply), and escalation (channels, on-call,
    owner team, the severity table).
  - Deterministic (no timestamps), so re-rendering an unchanged inventory changes nothing.
  - Credentials appear only as the names of the variables that hold them.
author:
  - sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.attributes
attributes:
  check_mode:
    support: full
    details: In check mode nothing is written; C(changed_files) lists the files that would change.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  services:
    description: The services, each a dict with C(host) (inventory host) and C(service) (its C(incident_services) entry).
    type: list
    elements: dict
    required: true
  contacts:
    description: The contact matrix (C(incident_contacts)).
    type: dict
    default: {}
  dependencies:
    description: External dependencies (C(incident_dependencies)).
    type: list
    elements: dict
    default: []
  dest:
    description: Directory of the runbooks.
    type: path
    required: true
  inventory:
    description: The inventory path shown in the commands of the runbooks.
    type: str
    default: inventory/lab
'''

EXAMPLES = r'''
- name: Render the runbooks
  sre.incident_response.runbook:
    services:
      - host: app-db
        service: {name: db, kind: postgres, purpose: Primary database, deploy: {type: docker, container: app-db}}
    contacts: "{{ incident_contacts }}"
    dest: docs/runbooks
    inventory: inventory/prod
  run_once: true
'''

RETURN = r'''
files:
  description: Every runbook file.
  returned: always
  type: list
  elements: str
  sample: [docs/runbooks/db-runbook.md]
changed_files:
  description: The files written (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: []
services:
  description: The service names.
  returned: always
  type: list
  elements: str
  sample: [backend, db, redis]
'''
