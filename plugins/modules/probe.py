#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: probe
short_description: Probe every requested area of one host concurrently, in one task
version_added: 0.2.0
description:
  - Runs the probes of the requested areas of a host (service state, application logs, recent changes,
    PostgreSQL, Redis, disk and container resources) in threads of one process and returns all their
    findings. One task per host replaces one task per area, which is what makes a triage of many hosts fast.
  - Each area takes exactly the options of its own module (M(sre.incident_response.health_probe),
    M(sre.incident_response.app_logs_probe), M(sre.incident_response.changes_probe),
    M(sre.incident_response.pg_probe) per PostgreSQL service, M(sre.incident_response.redis_probe) per Redis service,
    M(sre.incident_response.net_probe)); an area left out is not probed.
  - A failing area (an exception, a bad option) becomes an C(unknown) finding of that area's check; the other
    areas still report.
  - Normally called through the action of the same name, which builds every area's options from the role
    settings and the host's C(incident_services) (see the action's options below); the module options are
    what reaches the host.
  - Read-only; returns C(changed=false).
author: sre.incident_response contributors
extends_documentation_fragment: []
options:
  areas:
    description:
      - Action option. The areas to probe on this host; an area the host has no service for is left out.
      - V(controller) runs the checks made from the controller for every play host at once (HTTP endpoints,
        DNS, TLS, dependencies, Prometheus trends), in the controller's process; run it with C(run_once).
    type: list
    elements: str
    choices: [health, app_logs, changes, postgres, redis, network, controller]
    default: [health, app_logs, changes, postgres, redis, network]
  controller_checks:
    description:
      - Action option. With O(areas=[controller]), which of the controller's checks run.
      - V(http) the health endpoints of every play host, V(network) DNS, TLS and dependencies, V(trends) the
        Prometheus range queries of services with C(prometheus.url).
    type: list
    elements: str
    choices: [http, network, trends]
    default: [http, network, trends]
  report_host:
    description: The inventory host the findings are reported under (the action sets it to the task's host).
    type: str
    required: true
  health:
    description: Options of M(sre.incident_response.health_probe) (the state of this host's services).
    type: dict
  app_logs:
    description: Options of M(sre.incident_response.app_logs_probe).
    type: dict
  changes:
    description: Options of M(sre.incident_response.changes_probe).
    type: dict
  postgres:
    description: Options of M(sre.incident_response.pg_probe), one item per PostgreSQL service.
    type: list
    elements: dict
  redis:
    description: Options of M(sre.incident_response.redis_probe), one item per Redis service.
    type: list
    elements: dict
  network:
    description: Options of M(sre.incident_response.net_probe) for this host (disk, container resources).
    type: dict
  workers:
    description: Areas probed at the same time.
    type: int
    default: 8
notes:
  - The settings of every area are the variables of its role (for example C(health_window),
    C(postgres_connections_crit_pct)), read by the action with the role's defaults; C(incident_services) of the host
    chooses the areas.
seealso:
  - module: sre.incident_response.health_probe
  - module: sre.incident_response.pg_probe
  - module: sre.incident_response.redis_probe
'''

EXAMPLES = r'''
- name: Probe every area of each host in one task
  sre.incident_response.probe: {}
  register: __probe
  # an unreachable host leaves the play; the finding action with probe_var records it as host.reachability

- name: Checks made from the controller, once for all hosts
  sre.incident_response.probe:
    areas: [controller]
  register: __probe_controller
  run_once: true

- name: Record every host's findings in the incident at once
  sre.incident_response.finding:
    probe_var: __probe
  run_once: true
'''

RETURN = r'''
findings:
  description: The findings of every probed area (contract in docs/reference/contracts.md).
  returned: always
  type: list
  elements: dict
evidence_files:
  description: Raw outputs behind the findings, file name to content, written under C(evidence/<host>/) when recorded.
  returned: always
  type: dict
areas:
  description: Per area (and service) the time it took, and the error when it failed.
  returned: always
  type: dict
  sample: {"health": {"area": "health", "elapsed_ms": 12.5}, "postgres:app-db": {"area": "postgres", "elapsed_ms": 40.1}}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.incident_response.plugins.module_utils import (
    area_app_logs,
    area_changes,
    area_health,
    area_network,
    area_postgres,
    area_redis,
    probe_runner,
)

AREAS = (
    ('health', area_health),
    ('app_logs', area_app_logs),
    ('changes', area_changes),
    ('network', area_network),
)
PER_SERVICE = (
    ('postgres', area_postgres),
    ('redis', area_redis),
)


def build_jobs(module):
    p = module.params
    host = p['report_host']
    jobs = []
    for name, area in AREAS:
        if p.get(name) is not None:
            jobs.append({'area': name, 'label': name, 'host': host, 'service': None, 'run': area.run,
                         'module': probe_runner.AreaModule(module, p[name])})
    for name, area in PER_SERVICE:
        for params in p.get(name) or []:
            jobs.append({'area': name, 'label': '%s:%s' % (name, params.get('service')), 'host': host,
                         'service': params.get('service'), 'run': area.run,
                         'module': probe_runner.AreaModule(module, params)})
    return jobs


def main():
    module = AnsibleModule(
        argument_spec=dict(
            report_host=dict(type='str', required=True),
            health=dict(type='dict', options=area_health.SPEC),
            app_logs=dict(type='dict', options=area_app_logs.SPEC),
            changes=dict(type='dict', options=area_changes.SPEC),
            postgres=dict(type='list', elements='dict', options=area_postgres.SPEC),
            redis=dict(type='list', elements='dict', options=area_redis.SPEC),
            network=dict(type='dict', options=area_network.SPEC),
            workers=dict(type='int', default=8),
        ),
        supports_check_mode=True,
    )
    result = probe_runner.run_jobs(build_jobs(module), workers=module.params['workers'])
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
