# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network area of the probes: its argument spec (SPEC) and run(module).

Shared by the module sre.incident_response.net_probe (one area) and the module probe (every area of a host,
concurrently). run() takes an AnsibleModule or the probe's per-area view of one
(params, run_command, get_bin_path, fail_json) and returns the module result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from concurrent.futures import ThreadPoolExecutor


from ansible_collections.sre.incident_response.plugins.module_utils.findings import make_finding as finding, rank, worst
from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import combine, one_line, thresholds_of
from ansible_collections.sre.incident_response.plugins.module_utils.docker_api import DockerClient
from ansible_collections.sre.incident_response.plugins.module_utils import probe_net

THRESHOLD_SPEC = dict(
    dns_latency_warn_ms=dict(type='float', default=500),
    tls_warn_days=dict(type='float', default=14),
    tls_crit_days=dict(type='float', default=0),
    disk_warn_pct=dict(type='float', default=90),
    disk_crit_pct=dict(type='float', default=95),
    memory_warn_pct=dict(type='float', default=80),
    memory_crit_pct=dict(type='float', default=90),
    cpu_warn_pct=dict(type='float', default=90),
    dependency_latency_warn_ms=dict(type='float', default=2000),
)


def grouped(check, host, items):
    """One finding for a list of (status, text, evidence, service): worst first, all in evidence."""
    if not items:
        return None
    order = sorted(items, key=lambda i: -rank(i[0]))
    status = worst(i[0] for i in items)
    bad = [i for i in order if i[0] != 'ok']
    if bad:
        summary = '; '.join(i[1] for i in bad[:2])
        if len(items) > 1:
            summary += ' (%d of %d ok)' % (len(items) - len(bad), len(items))
    else:
        summary = '; '.join(i[1] for i in order[:3])
    evidence = {'items': [dict(i[2], status=i[0], summary=i[1]) for i in order]}
    return finding(check, host, order[0][3], status, summary, evidence)


def controller_checks(p, t):
    timeout = p['timeout']
    findings = []
    dns_specs = [d for d in p['dns_names'] if isinstance(d, dict) and d.get('name')]
    tls_specs = [d for d in p['tls_endpoints'] if isinstance(d, dict) and d.get('host') and d.get('port')]
    deps = [d for d in p['dependencies'] if isinstance(d, dict) and d.get('url')]
    with ThreadPoolExecutor(max_workers=16) as pool:
        dns_f = [pool.submit(probe_net.resolve, d, timeout) for d in dns_specs]
        tls_f = [pool.submit(probe_net.fetch_certificate, d['host'], d['port'], d.get('server_name'), timeout, d.get('ca_cert'))
                 for d in tls_specs]
        dep_f = pool.submit(probe_net.dependency_results, deps, timeout)
        dns_r = [f.result() for f in dns_f]
        tls_r = [f.result() for f in tls_f]
        dep_r = dep_f.result()
    items = []
    for spec, res in zip(dns_specs, dns_r):
        status, text = probe_net.evaluate_dns(spec, res, t['dns_latency_warn_ms'])
        items.append((status, text, res, spec['name']))
    findings.append(grouped('net.dns', p['controller_name'], items))
    items = []
    for spec, res in zip(tls_specs, tls_r):
        if res.get('der') and not probe_net.HAS_CRYPTOGRAPHY:
            items.append(('unknown', '%s: the cryptography library is missing' % spec.get('name'), {}, spec.get('name')))
            continue
        try:
            status, text, info = probe_net.evaluate_tls(spec, res, t['tls_warn_days'], t['tls_crit_days'])
        except Exception as exc:  # pylint: disable=broad-except
            status, text, info = 'unknown', '%s: cannot parse the certificate: %s' % (spec.get('name'), one_line(str(exc))), {}
        info.update({'endpoint': '%s:%s' % (spec['host'], spec['port']), 'name': spec.get('name')})
        items.append((status, text, info, spec.get('name')))
    findings.append(grouped('net.tls_expiry', p['controller_name'], items))
    service_hosts = {}
    for host in sorted(p['host_services'] or {}):
        for svc in p['host_services'][host] or []:
            if isinstance(svc, dict) and svc.get('name'):
                service_hosts.setdefault(svc['name'], host)
    per_host = {}
    for dep, res in zip(deps, dep_r):
        status, text = probe_net.evaluate_dependency(dep, res, t['dependency_latency_warn_ms'])
        hosts = sorted({service_hosts[s] for s in (dep.get('used_by') or []) if s in service_hosts}) or [p['controller_name']]
        evidence = {'name': dep.get('name'), 'url': dep.get('url'), 'critical': bool(dep.get('critical', True)),
                    'used_by': dep.get('used_by') or [], 'http_status': res.get('status'), 'latency_ms': res.get('latency_ms'),
                    'error': res.get('error')}
        for host in hosts:
            per_host.setdefault(host, []).append((status, text, evidence, dep.get('name')))
    for host in sorted(per_host):
        findings.append(grouped('dependency.reachability', host, per_host[host]))
    return [f for f in findings if f]


def host_checks(module, p, t):
    host = p['report_host']
    services = [s for s in p['services'] or [] if isinstance(s, dict)]
    findings = []
    # host.disk: one filesystem once (several paths may share it)
    paths, seen, usages, errors = [], set(), [], []
    for s in services:
        for path in s.get('disk_paths') or []:
            paths.append(path)
    paths += list(p['extra_disk_paths'] or [])
    for path in paths:
        try:
            usage = probe_net.disk_usage(path)
        except OSError as exc:
            errors.append((path, exc.strerror or str(exc)))
            continue
        if usage['dev'] in seen:
            continue
        seen.add(usage['dev'])
        usages.append(usage)
    names = sorted({s.get('name') for s in services if s.get('disk_paths')})
    findings.append(probe_net.evaluate_disk(host, names[0] if len(names) == 1 else None, usages, errors,
                                            t['disk_warn_pct'], t['disk_crit_pct']))
    # container.resources: every container at once, from its cgroup (the engine's one-shot stats where not visible)
    dockers = [s for s in services if (s.get('deploy') or {}).get('type', 'docker') == 'docker' and (s.get('deploy') or {}).get('container')]
    if dockers and p['container_resources']:
        findings.extend(combine(probe_net.container_resource_findings(
            DockerClient(p['docker_host']), host, dockers, t, p['cpu_sample_seconds'])))
    # container.resources of systemd units: memory against the unit's MemoryMax
    units = [s for s in services if (s.get('deploy') or {}).get('type') == 'systemd' and (s.get('deploy') or {}).get('unit')]
    if units and p['container_resources'] and module.get_bin_path('systemctl'):
        items = []
        for s in units:
            unit = s['deploy']['unit']
            rc, out, err = module.run_command(['systemctl', 'show', unit, '-p', 'MemoryCurrent', '-p', 'MemoryMax',
                                               '-p', 'MemoryHigh', '-p', 'MainPID', '-p', 'ActiveState'])
            props = dict(line.split('=', 1) for line in out.splitlines() if '=' in line)
            if rc != 0 or props.get('ActiveState') != 'active':
                items.append(finding('container.resources', host, s.get('name'), 'unknown', '%s is %s: no resource usage' % (
                    unit, props.get('ActiveState') or one_line(err or out) or 'unknown'), {'unit': unit}))
                continue
            status, text, evidence = probe_net.evaluate_unit_resources(unit, props, t, probe_net.process_rss(props.get('MainPID')))
            items.append(finding('container.resources', host, s.get('name'), status, text, evidence))
        findings.extend(combine(items))
    return findings


SPEC = dict(
    dns_names=dict(type='list', elements='dict', default=[]),
    tls_endpoints=dict(type='list', elements='dict', default=[]),
    dependencies=dict(type='list', elements='dict', default=[]),
    host_services=dict(type='dict', default={}),
    controller_name=dict(type='str', default='controller'),
    report_host=dict(type='str'),
    services=dict(type='list', elements='dict'),
    container_resources=dict(type='bool', default=True),
    extra_disk_paths=dict(type='list', elements='path', default=['/']),
    thresholds=dict(type='dict', default={}, options=THRESHOLD_SPEC),
    timeout=dict(type='float', default=3),
    cpu_sample_seconds=dict(type='float', default=0.3),
    docker_host=dict(type='str'),
)
REQUIRED_BY = {'services': ['report_host']}


def run(module):
    if module.params.get('services') and not module.params.get('report_host'):
        module.fail_json(msg='report_host is required when services are given')
    p = module.params
    t = thresholds_of(module, THRESHOLD_SPEC, (('disk_warn_pct', 'disk_crit_pct'), ('memory_warn_pct', 'memory_crit_pct')))
    if t['tls_crit_days'] > t['tls_warn_days']:
        module.fail_json(msg='thresholds.tls_crit_days must not exceed thresholds.tls_warn_days')
    findings = []
    if p['dns_names'] or p['tls_endpoints'] or p['dependencies']:
        findings.extend(controller_checks(p, t))
    if p['report_host'] and (p['services'] or p['extra_disk_paths']):
        findings.extend(host_checks(module, p, t))
    return dict(changed=False, findings=findings)
