# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run several probe areas of one host concurrently, in threads of one process.

Each area is the run(module) of a module_utils/area_*.py. The areas share the one
AnsibleModule of the caller through AreaModule, a per-area view of it: its own
params, and fail_json raising AreaFailed instead of ending the process. A failed
area becomes an `unknown` finding of the check the area is known by; the others
still report.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.sre.incident_response.plugins.module_utils.findings import make_finding
from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import one_line

# The check an area's failure is reported under (the roles' rescue blocks used the same).
AREA_CHECKS = {
    'health': 'health.container',
    'http': 'health.endpoint',
    'app_logs': 'app.errors',
    'changes': 'deploy.recent',
    'postgres': 'pg.connectivity',
    'redis': 'redis.connectivity',
    'network': 'host.disk',
    'host': 'host.oom',
    'controller_network': 'net.dns',
    'trends': 'trend.query',
}


class AreaFailed(Exception):
    """fail_json of one area: the area stops, the others go on."""


class AreaModule(object):
    """The part of AnsibleModule an area's run() uses, with the area's own params."""

    def __init__(self, module, params):
        self._module = module
        self.params = params
        self.check_mode = getattr(module, 'check_mode', False)

    def fail_json(self, msg='', **kwargs):
        raise AreaFailed(msg or kwargs.get('exception') or 'failed')

    def run_command(self, *args, **kwargs):
        return self._module.run_command(*args, **kwargs)

    def get_bin_path(self, *args, **kwargs):
        return self._module.get_bin_path(*args, **kwargs)

    def warn(self, msg):
        warn = getattr(self._module, 'warn', None)
        if warn:
            warn(msg)


def failure_finding(area, host, service, message):
    """The `unknown` finding of an area that failed as a whole: evidence `area` (findings.AREA_FAILED)."""
    return make_finding(AREA_CHECKS.get(area, 'health.container'), host, service, 'unknown',
                        '%s probe failed: %s' % (area, one_line(str(message))[:300]), {'area': area})


def _timed(job):
    started = time.monotonic()
    try:
        out = job['run'](job['module'])
        error = None
    except AreaFailed as exc:
        out, error = None, str(exc)
    except Exception as exc:  # pylint: disable=broad-except
        out, error = None, '%s: %s' % (type(exc).__name__, exc)
    return out, error, round((time.monotonic() - started) * 1000, 1)


def run_jobs(jobs, workers=8):
    """jobs: [{'area', 'label', 'host', 'service', 'run', 'module'}] -> the combined result.

    {'findings': [...], 'evidence_files': {name: content}, 'areas': {label: {'elapsed_ms', 'error'?, ...}}}
    """
    findings, files, areas = [], {}, {}
    if not jobs:
        return {'findings': findings, 'evidence_files': files, 'areas': areas}
    with ThreadPoolExecutor(max_workers=max(1, min(int(workers), len(jobs)))) as pool:
        outcomes = list(pool.map(_timed, jobs))
    for job, (out, error, elapsed) in zip(jobs, outcomes):
        info = {'area': job['area'], 'elapsed_ms': elapsed}
        if error is not None:
            info['error'] = error
            findings.append(failure_finding(job['area'], job.get('host'), job.get('service'), error))
        else:
            findings.extend(out.get('findings') or [])
            files.update(out.get('evidence_files') or {})
            for key in ('stats', 'executed_queries', 'executed_commands'):
                if out.get(key):
                    info[key] = out[key]
        areas[job['label']] = info
    return {'findings': findings, 'evidence_files': files, 'areas': areas}
