#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: net_probe
short_description: Check DNS, TLS certificates, dependencies, disk space and container resources
version_added: 0.1.0
description:
  - Controller-side checks (run it once, on the controller), all concurrently in threads -
    C(net.dns) (resolution of O(dns_names) through their resolver and port, against the expected answers),
    C(net.tls_expiry) (days left, subject, SAN, issuer and chain verification of O(tls_endpoints)) and
    C(dependency.reachability) (HTTP health of O(dependencies), reported for the hosts of the services using them).
  - Host-side checks for O(report_host) - C(host.disk) (space and inodes of each service's C(disk_paths) and
    O(extra_disk_paths)) and C(container.resources) (CPU, memory against the limit, network I/O of each
    Docker service, CPU sampled from its cgroup; memory of each systemd unit - C(MemoryCurrent), or the resident
    size of its main process where the cgroup does not account memory - against its C(MemoryMax)).
  - Read-only. Unreachable names, endpoints or engines become C(crit) or C(unknown) findings; the module does not fail.
author: sre.incident_response contributors
options:
  dns_names:
    description: Names to resolve, C({name, resolver, port, expect, type, timeout}) (C(incident_dns_names)).
    type: list
    elements: dict
    default: []
  tls_endpoints:
    description: TLS endpoints, C({name, host, port, server_name, ca_cert, verify}) (C(incident_tls_endpoints)).
      With C(verify=true) an untrusted chain is C(crit); otherwise the chain result is evidence only.
    type: list
    elements: dict
    default: []
  dependencies:
    description: External dependencies, C({name, url, used_by, critical, expect_status}) (C(incident_dependencies)).
      Unreachable is C(crit) for critical ones, C(warn) otherwise.
    type: list
    elements: dict
    default: []
  host_services:
    description:
      - Inventory host to its service definitions (C(incident_services) of the play hosts); a dependency is reported for
        the hosts running the services in its C(used_by).
    type: dict
    default: {}
  controller_name:
    description: Host name C(net.dns), C(net.tls_expiry) and unattributed dependencies are reported for.
    type: str
    default: controller
  report_host:
    description: Inventory host the host-side findings are reported for. Required with O(services).
    type: str
  services:
    description: Service definitions of O(report_host) (C(disk_paths), C(deploy.container)).
    type: list
    elements: dict
  container_resources:
    description: Check C(container.resources) of the Docker services in O(services).
    type: bool
    default: true
  extra_disk_paths:
    description: Paths checked on every host besides the services' C(disk_paths).
    type: list
    elements: path
    default: [/]
  thresholds:
    description: Thresholds of the findings.
    type: dict
    default: {}
    suboptions:
      dns_latency_warn_ms:
        description: Resolution time (ms) that makes C(net.dns) C(warn).
        type: float
        default: 500
      tls_warn_days:
        description: Days left at or below which C(net.tls_expiry) is C(warn).
        type: float
        default: 14
      tls_crit_days:
        description: Days left at or below which C(net.tls_expiry) is C(crit) (0 - expired).
        type: float
        default: 0
      disk_warn_pct:
        description: Space or inode usage (percent) that makes C(host.disk) C(warn).
        type: float
        default: 90
      disk_crit_pct:
        description: Usage that makes C(host.disk) C(crit).
        type: float
        default: 95
      memory_warn_pct:
        description: Container memory (percent of its limit) that makes C(container.resources) C(warn).
        type: float
        default: 80
      memory_crit_pct:
        description: Container memory that makes C(container.resources) C(crit).
        type: float
        default: 90
      cpu_warn_pct:
        description: Container CPU (percent of the CPUs it may use) that makes C(container.resources) C(warn).
        type: float
        default: 90
      dependency_latency_warn_ms:
        description: Dependency response time (ms) that makes C(dependency.reachability) C(warn).
        type: float
        default: 2000
  timeout:
    description: Seconds per DNS query, TLS handshake or HTTP request.
    type: float
    default: 3
  cpu_sample_seconds:
    description: Seconds over which CPU usage is sampled from the container's cgroup (falls back to Docker stats, about a second).
    type: float
    default: 0.3
  docker_host:
    description: Docker engine socket (C(unix://...)); defaults to C(DOCKER_HOST) or C(/var/run/docker.sock).
    type: str
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
requirements:
  - dnspython for custom resolvers
  - cryptography for certificate details
'''

EXAMPLES = r'''
- name: DNS, TLS and dependencies, from the controller
  sre.incident_response.net_probe:
    dns_names: "{{ incident_dns_names }}"
    tls_endpoints: "{{ incident_tls_endpoints }}"
    dependencies: "{{ incident_dependencies }}"
    host_services: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'incident_services'))) }}"
  run_once: true
  delegate_to: localhost
  register: __network_controller

- name: Disk and container resources of this host
  sre.incident_response.net_probe:
    report_host: "{{ inventory_hostname }}"
    services: "{{ incident_services }}"
  register: __network_host
'''

RETURN = r'''
findings:
  description: net.dns, net.tls_expiry, dependency.reachability (controller side), host.disk and container.resources (host side).
  returned: always
  type: list
  elements: dict
  sample:
    - check: net.tls_expiry
      host: controller
      service: api
      status: warn
      summary: "api 127.0.0.1:18443: certificate expires in 5.0 days (2026-12-02 03:00 UTC), subject api.lab.test, SAN api.lab.test"
      evidence: {endpoints: [{days_left: 5.0}]}
'''

from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.incident_response.plugins.module_utils.findings import make_finding as finding, rank, worst
from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import combine, one_line
from ansible_collections.sre.incident_response.plugins.module_utils.probe_docker import DockerClient, DockerError
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
    # container.resources: one stats sample (with precpu) of every container, in parallel
    dockers = [s for s in services if (s.get('deploy') or {}).get('type', 'docker') == 'docker' and (s.get('deploy') or {}).get('container')]
    if dockers and p['container_resources']:
        client = DockerClient(p['docker_host'])

        def sample(name):
            try:
                info = client.inspect(name)
                running = (info.get('State') or {}).get('Running')
                if not running:
                    return None, None, False, None, None
                cgroup = probe_net.cgroup_cpu_file(info.get('Id') or '')
                cpu = None
                if cgroup:
                    try:
                        cpu = probe_net.sample_cpu(cgroup, p['cpu_sample_seconds'])
                    except (OSError, ValueError):
                        cpu = None
                # one-shot is instant; without it the engine waits for a second sample (CPU from precpu_stats)
                stats = client.stats(name, one_shot=cpu is not None)
                return stats, (info.get('HostConfig') or {}).get('Memory'), running, cpu, None
            except DockerError as exc:
                return None, None, None, None, exc

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda s: sample(s['deploy']['container']), dockers))
        items = []
        for s, (stats, limit, running, cpu, exc) in zip(dockers, results):
            container = s['deploy']['container']
            if exc is not None:
                status = 'crit' if exc.status == 404 else 'unknown'
                items.append(finding('container.resources', host, s.get('name'), status, '%s: %s' % (container, one_line(str(exc))),
                                     {'container': container}))
                continue
            if not running:
                items.append(finding('container.resources', host, s.get('name'), 'unknown', '%s is not running: no resource usage' % container,
                                     {'container': container}))
                continue
            status, text, evidence = probe_net.evaluate_container_resources(container, stats, limit, t, cpu=cpu)
            items.append(finding('container.resources', host, s.get('name'), status, text, evidence))
        findings.extend(combine(items))
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


def main():
    module = AnsibleModule(
        argument_spec=dict(
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
        ),
        required_by={'services': ['report_host']},
        supports_check_mode=True,
    )
    p = module.params
    t = dict(p['thresholds'] or {})
    for key, spec in THRESHOLD_SPEC.items():
        if t.get(key) is None:
            t[key] = spec['default']
    for warn, crit in (('disk_warn_pct', 'disk_crit_pct'), ('memory_warn_pct', 'memory_crit_pct')):
        if t[warn] > t[crit]:
            module.fail_json(msg='thresholds.%s (%s) must not exceed thresholds.%s (%s)' % (warn, t[warn], crit, t[crit]))
    if t['tls_crit_days'] > t['tls_warn_days']:
        module.fail_json(msg='thresholds.tls_crit_days must not exceed thresholds.tls_warn_days')
    findings = []
    if p['dns_names'] or p['tls_endpoints'] or p['dependencies']:
        findings.extend(controller_checks(p, t))
    if p['report_host'] and (p['services'] or p['extra_disk_paths']):
        findings.extend(host_checks(module, p, t))
    module.exit_json(changed=False, findings=findings)


if __name__ == '__main__':
    main()
