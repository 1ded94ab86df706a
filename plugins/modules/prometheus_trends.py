#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the prometheus_trends action plugin (the work is done on the controller)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: prometheus_trends
short_description: Trends of a service's metrics from Prometheus as findings
version_added: 0.2.0
description:
  - Runs on the controller (action plugin). For every service of O(hosts_services) with C(prometheus.url), runs
    one bounded range query per trend (C(/api/v1/query_range) over O(window_minutes), at most O(max_points)
    samples, O(timeout) seconds) and returns a finding C(trend.<name>) such as
    C(backend memory grew 40 % in 30 minutes (120 MiB -> 168 MiB)).
  - Trends come from C(prometheus.trends) (C(name), C(query), C(unit), C(warn_growth_pct), C(crit_growth_pct)),
    else the defaults of the service's kind - backend C(memory) (process_resident_memory_bytes) and C(latency)
    (p95 of http_request_duration_seconds), postgres C(connections) (pg_stat_activity_count), redis C(memory)
    (redis_memory_used_bytes) - selected by the label C(service="<name>").
  - Growth is measured from the lowest point of the window to the last sample (a restart inside the window resets it).
  - The query, the Prometheus URL (without credentials), the window and the lowest and last values are the
    finding's evidence. An unreachable Prometheus or a failing query is an C(unknown) finding.
  - Read-only. Does not record the findings; pass them to M(sre.incident_response.finding).
author:
  - sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.attributes
attributes:
  check_mode:
    support: full
    details: Only reads from Prometheus.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  hosts_services:
    description: Map of each play host to its C(incident_services).
    type: dict
    required: true
  window_minutes:
    description: The trend's window, in minutes (1..1440).
    type: int
    default: 30
  timeout:
    description: Seconds per query (sent to Prometheus as its query timeout too).
    type: float
    default: 5
  max_points:
    description: Largest number of samples per query (the step is the window divided by it).
    type: int
    default: 120
  warn_growth_pct:
    description: Growth over the window (percent) that makes the finding C(warn).
    type: float
    default: 25
  crit_growth_pct:
    description: Growth over the window (percent) that makes the finding C(crit).
    type: float
    default: 50
  token:
    description: Bearer token for Prometheus (else user:password of the URL, else none).
    type: str
    default: ''
seealso:
  - module: sre.incident_response.finding
'''

EXAMPLES = r'''
- name: Trends from Prometheus
  sre.incident_response.prometheus_trends:
    hosts_services:
      app-backend:
        - name: backend
          kind: backend
          prometheus: {url: "http://prometheus.example.com:9090"}
  run_once: true
  register: trends
'''

RETURN = r'''
findings:
  description: One finding per trend and service (C(trend.memory), C(trend.latency), C(trend.connections), ...).
  returned: success
  type: list
  elements: dict
  sample: [{"check": "trend.memory", "host": "app-backend", "service": "backend", "status": "crit",
            "summary": "backend memory grew 212 % in 3 minutes (58 MiB -> 181 MiB)",
            "evidence": {"query": "max(process_resident_memory_bytes{service=\"backend\"})",
                         "prometheus": "http://127.0.0.1:19090", "window_minutes": 30, "step": "16s",
                         "samples": 12, "first": 60817408, "last": 189792256, "growth_pct": 212.1}}]
'''
