# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Network and infrastructure checks: DNS, TLS certificates, dependencies, disk, container resources."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import socket
import ssl
import time

from ansible_collections.sre.incident_response.plugins.module_utils.findings import make_finding as finding, worst
from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import (
    fmt_pct, human_bytes, level, one_line, pct, utcnow)
from ansible_collections.sre.incident_response.plugins.module_utils import probe_health

try:
    import dns.exception
    import dns.resolver
    HAS_DNSPYTHON = True
except ImportError:  # pragma: no cover - depends on the controller
    HAS_DNSPYTHON = False

try:
    from cryptography import x509
    from cryptography.x509.oid import ExtensionOID, NameOID
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - depends on the controller
    HAS_CRYPTOGRAPHY = False


# ---------------------------------------------------------------- DNS
def resolve(spec, timeout=2.0):
    """Resolve one name: {name, resolver, port, answers, latency_ms, error}."""
    name = spec['name']
    result = {'name': name, 'resolver': spec.get('resolver') or 'system', 'port': spec.get('port'),
              'rdtype': spec.get('type', 'A'), 'answers': [], 'latency_ms': None, 'error': None}
    started = time.monotonic()
    try:
        if HAS_DNSPYTHON:
            resolver = dns.resolver.Resolver(configure=not spec.get('resolver'))
            if spec.get('resolver'):
                resolver.nameservers = [spec['resolver']]
            if spec.get('port'):
                resolver.port = int(spec['port'])
            resolver.lifetime = float(spec.get('timeout') or timeout)
            resolver.timeout = float(spec.get('timeout') or timeout)
            answer = resolver.resolve(name, spec.get('type', 'A'), search=False)
            result['answers'] = sorted(r.to_text() for r in answer)
            result['ttl'] = answer.rrset.ttl if answer.rrset is not None else None
        else:
            if spec.get('resolver'):
                raise RuntimeError('dnspython is required for a custom resolver')
            infos = socket.getaddrinfo(name, None, socket.AF_INET)
            result['answers'] = sorted({i[4][0] for i in infos})
    except Exception as exc:  # pylint: disable=broad-except
        result['error'] = '%s: %s' % (type(exc).__name__, one_line(str(exc), 160) or 'no answer')
    result['latency_ms'] = round((time.monotonic() - started) * 1000, 1)
    return result


def evaluate_dns(spec, result, latency_warn_ms):
    name = spec['name']
    via = '@%s%s' % (result['resolver'], ':%s' % result['port'] if result.get('port') else '')
    if result['error']:
        return 'crit', '%s %s: %s' % (name, via, result['error'])
    expect = spec.get('expect')
    if expect:
        want = sorted(expect if isinstance(expect, list) else [expect])
        if not set(want) & set(result['answers']):
            return 'crit', '%s %s resolves to %s, expected %s' % (name, via, ', '.join(result['answers']) or 'nothing', ', '.join(want))
    status = level(result['latency_ms'], latency_warn_ms, None)
    text = '%s -> %s in %d ms' % (name, ', '.join(result['answers']), result['latency_ms'])
    return status, text + (' (slow)' if status != 'ok' else '')


# ---------------------------------------------------------------- TLS
def fetch_certificate(host, port, server_name=None, timeout=3.0, ca_cert=None):
    """Peer certificate (DER) without verification, plus the result of a verifying handshake."""
    out = {'der': None, 'error': None, 'verify_error': None, 'protocol': None}
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            with context.wrap_socket(sock, server_hostname=server_name or host) as tls:
                out['der'] = tls.getpeercert(binary_form=True)
                out['protocol'] = tls.version()
    except Exception as exc:  # pylint: disable=broad-except
        out['error'] = '%s: %s' % (type(exc).__name__, one_line(str(exc), 160))
        return out
    verify = ssl.create_default_context(cafile=ca_cert) if ca_cert else ssl.create_default_context()
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            with verify.wrap_socket(sock, server_hostname=server_name or host):
                pass
    except ssl.SSLCertVerificationError as exc:
        out['verify_error'] = one_line(getattr(exc, 'verify_message', None) or str(exc), 160)
    except Exception as exc:  # pylint: disable=broad-except
        out['verify_error'] = '%s: %s' % (type(exc).__name__, one_line(str(exc), 160))
    return out


def describe_certificate(der):
    cert = x509.load_der_x509_certificate(der)
    try:
        not_after = cert.not_valid_after_utc
        not_before = cert.not_valid_before_utc
    except AttributeError:  # cryptography < 42
        not_after = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
        not_before = cert.not_valid_before.replace(tzinfo=datetime.timezone.utc)
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        names = [str(n.value) for n in san]
    except x509.ExtensionNotFound:
        names = []
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return {'subject': cert.subject.rfc4514_string(), 'issuer': cert.issuer.rfc4514_string(),
            'common_name': cn[0].value if cn else None, 'san': names, 'serial': format(cert.serial_number, 'x'),
            'not_before': not_before.isoformat(), 'not_after': not_after.isoformat(),
            'self_signed': cert.subject == cert.issuer, '_not_after': not_after}


def _name_matches(server_name, names):
    for n in names:
        if n == server_name or (n.startswith('*.') and server_name.split('.', 1)[-1] == n[2:]):
            return True
    return False


def evaluate_tls(spec, fetched, warn_days, crit_days, now=None):
    """Status, text and evidence of one endpoint's certificate."""
    now = now or utcnow()
    label = '%s %s:%s' % (spec.get('name') or spec['host'], spec['host'], spec['port'])
    if fetched.get('error'):
        return 'crit', '%s: TLS handshake failed: %s' % (label, fetched['error']), {'error': fetched['error']}
    info = describe_certificate(fetched['der'])
    not_after = info.pop('_not_after')
    days_left = round((not_after - now).total_seconds() / 86400.0, 1)
    info.update({'days_left': days_left, 'verify_error': fetched.get('verify_error'), 'protocol': fetched.get('protocol'),
                 'server_name': spec.get('server_name')})
    status = level(days_left, warn_days, crit_days, higher_is_worse=False)
    if days_left < 0:
        text = '%s: certificate EXPIRED %.1f days ago (%s)' % (label, -days_left, not_after.strftime('%Y-%m-%d %H:%M UTC'))
        status = 'crit'
    else:
        text = '%s: certificate expires in %.1f days (%s)' % (label, days_left, not_after.strftime('%Y-%m-%d %H:%M UTC'))
    text += ', subject %s, SAN %s' % (info['common_name'] or info['subject'], ', '.join(info['san']) or 'none')
    server_name = spec.get('server_name')
    if server_name and info['san'] and not _name_matches(server_name, info['san']):
        status = worst([status, 'warn'])
        text += ', does NOT cover %s' % server_name
    if fetched.get('verify_error'):
        info['chain'] = 'not verified: %s' % fetched['verify_error']
        if spec.get('verify'):
            status = worst([status, 'crit'])
            text += ', chain not trusted: %s' % fetched['verify_error']
    else:
        info['chain'] = 'verified'
    return status, text, info


# ---------------------------------------------------------------- disk
def disk_usage(path):
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    free = st.f_bfree * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    used = total - free
    return {'path': path, 'total': total, 'used': used, 'avail': avail,
            'used_pct': pct(used, used + avail) if (used + avail) else 0.0,
            'inodes_total': st.f_files, 'inodes_free': st.f_ffree,
            'inodes_used_pct': pct(st.f_files - st.f_ffree, st.f_files) if st.f_files else None,
            'dev': os.stat(path).st_dev}


def evaluate_disk(host, service, usages, errors, warn_pct, crit_pct):
    rated = []
    for u in usages:
        worst_pct = max(u['used_pct'] or 0, u.get('inodes_used_pct') or 0)
        rated.append((level(worst_pct, warn_pct, crit_pct), worst_pct, u))
    statuses = [r[0] for r in rated] + ['unknown' for _e in errors]
    status = worst(statuses)
    rated.sort(key=lambda r: -r[1])

    def text(u):
        return '%s %s used (%s of %s, %s free)%s' % (
            u['path'], fmt_pct(u['used_pct']), human_bytes(u['used']), human_bytes(u['total']), human_bytes(u['avail']),
            ', inodes %s' % fmt_pct(u['inodes_used_pct']) if u.get('inodes_used_pct') is not None else '')
    parts = [text(r[2]) for r in rated[:3]]
    parts += ['%s: %s' % (p, e) for p, e in errors[:2]]
    evidence = {'filesystems': [dict((k, v) for k, v in r[2].items() if k != 'dev') for r in rated],
                'errors': dict(errors), 'warn_pct': warn_pct, 'crit_pct': crit_pct}
    return finding('host.disk', host, service, status, '; '.join(parts) or 'no paths checked', evidence)


# ---------------------------------------------------------------- container resources
def cpu_percent(stats):
    """Docker-style CPU percent between precpu_stats and cpu_stats of one sample (100 = one core)."""
    first, second = {'cpu_stats': stats.get('precpu_stats') or {}}, stats
    try:
        cpu_delta = second['cpu_stats']['cpu_usage']['total_usage'] - first['cpu_stats']['cpu_usage']['total_usage']
        sys_delta = second['cpu_stats']['system_cpu_usage'] - first['cpu_stats']['system_cpu_usage']
        cpus = second['cpu_stats'].get('online_cpus') or len(second['cpu_stats']['cpu_usage'].get('percpu_usage') or []) or 1
    except (KeyError, TypeError):
        return None, None
    if sys_delta <= 0 or cpu_delta < 0:
        return 0.0, cpus
    return round(cpu_delta / float(sys_delta) * cpus * 100.0, 1), cpus


CGROUP_CPU_FILES = (
    '/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage',                       # v1, cgroupfs driver (ns)
    '/sys/fs/cgroup/cpuacct/system.slice/docker-{id}.scope/cpuacct.usage',    # v1, systemd driver (ns)
    '/sys/fs/cgroup/cpu,cpuacct/docker/{id}/cpuacct.usage',
    '/sys/fs/cgroup/cpu,cpuacct/system.slice/docker-{id}.scope/cpuacct.usage',
    '/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat',                 # v2, systemd driver (usage_usec)
    '/sys/fs/cgroup/docker/{id}/cpu.stat',                                    # v2, cgroupfs driver
)


def cgroup_cpu_file(container_id):
    for pattern in CGROUP_CPU_FILES:
        path = pattern.format(id=container_id)
        if os.path.exists(path):
            return path
    return None


def read_cpu_ns(path):
    """Cumulative CPU time (ns) of a cgroup from cpuacct.usage (v1) or cpu.stat (v2)."""
    with open(path) as handle:
        text = handle.read()
    if path.endswith('cpu.stat'):
        for line in text.splitlines():
            key, _sep, value = line.partition(' ')
            if key == 'usage_usec':
                return int(value) * 1000
        return None
    return int(text.strip())


def sample_cpu(path, seconds):
    """CPU percent (100 = one core) of a cgroup over a short interval."""
    first, t1 = read_cpu_ns(path), time.monotonic()
    time.sleep(seconds)
    second, t2 = read_cpu_ns(path), time.monotonic()
    if first is None or second is None or t2 <= t1:
        return None
    return round(max(0, second - first) / ((t2 - t1) * 1e9) * 100.0, 1)


def memory_usage(stats):
    mem = stats.get('memory_stats') or {}
    usage = mem.get('usage')
    if usage is None:
        return None, None
    detail = mem.get('stats') or {}
    cache = detail.get('inactive_file', detail.get('total_inactive_file', 0)) or 0
    return max(0, usage - cache), mem.get('limit')


def network_io(stats):
    nets = stats.get('networks')
    if not nets:
        return None
    return {'rx_bytes': sum(n.get('rx_bytes', 0) for n in nets.values()),
            'tx_bytes': sum(n.get('tx_bytes', 0) for n in nets.values())}


def evaluate_container_resources(container, second, memory_limit_cfg, t, cpu=None):
    """container.resources of one container: stats sample (memory, network), CPU from the cgroup or precpu_stats."""
    if cpu is None:
        cpu, cpus = cpu_percent(second)
    else:
        cpus = (second.get('cpu_stats') or {}).get('online_cpus') or os.cpu_count() or 1
    used, limit = memory_usage(second)
    has_limit = bool(memory_limit_cfg)
    mem_pct = pct(used, limit) if used is not None and limit else None
    net = network_io(second)
    statuses = []
    if has_limit and mem_pct is not None:
        statuses.append(level(mem_pct, t['memory_warn_pct'], t['memory_crit_pct']))
    cpu_of_capacity = round(cpu / cpus, 1) if cpu is not None and cpus else None
    if cpu_of_capacity is not None:
        statuses.append(level(cpu_of_capacity, t['cpu_warn_pct'], None))
    status = worst(statuses or ['ok'])
    text = '%s CPU %s, memory %s%s' % (
        container, fmt_pct(cpu) if cpu is not None else '?', human_bytes(used),
        ' of %s limit (%s)' % (human_bytes(limit), fmt_pct(mem_pct)) if has_limit else ' (no limit)')
    text += ', net %s' % ('rx %s / tx %s' % (human_bytes(net['rx_bytes']), human_bytes(net['tx_bytes'])) if net else 'n/a (host network)')
    evidence = {'container': container, 'cpu_pct': cpu, 'online_cpus': cpus, 'cpu_pct_of_capacity': cpu_of_capacity,
                'memory_used': used, 'memory_limit': limit if has_limit else None, 'memory_pct': mem_pct if has_limit else None,
                'network': net, 'pids': (second.get('pids_stats') or {}).get('current')}
    return status, text, evidence


def process_rss(pid):
    """Resident set size (bytes) of a process from /proc/<pid>/status, or None."""
    try:
        with open('/proc/%d/status' % int(pid)) as handle:
            for line in handle:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, TypeError, IndexError):
        return None
    return None


def unit_memory(props, rss_bytes=None):
    """(used, limit) bytes of a systemd unit from ``systemctl show`` properties (pure).

    MemoryCurrent when the unit's cgroup accounts memory, else the resident size of its processes
    (``rss_bytes``); MemoryMax (else MemoryHigh) when it is a number: ``infinity`` is no limit.
    """
    def number(key):
        value = str(props.get(key) or '').strip()
        return int(value) if value.isdigit() and int(value) < 2 ** 63 - 1 else None
    used = number('MemoryCurrent')
    if used is None:
        used = rss_bytes
    return used, number('MemoryMax') or number('MemoryHigh')


def evaluate_unit_resources(unit, props, t, rss_bytes=None):
    """container.resources of one systemd unit: memory against MemoryMax/MemoryHigh (pure)."""
    used, limit = unit_memory(props, rss_bytes)
    mem_pct = pct(used, limit) if used is not None and limit else None
    status = level(mem_pct, t['memory_warn_pct'], t['memory_crit_pct']) if mem_pct is not None else 'ok'
    source = 'cgroup' if str(props.get('MemoryCurrent') or '').isdigit() else 'rss'
    text = '%s memory %s%s' % (unit, human_bytes(used) if used is not None else '?',
                               ' of %s MemoryMax (%s)' % (human_bytes(limit), fmt_pct(mem_pct)) if limit else ' (no MemoryMax)')
    evidence = {'unit': unit, 'memory_used': used, 'memory_source': source, 'memory_limit': limit, 'memory_pct': mem_pct,
                'main_pid': props.get('MainPID'), 'active_state': props.get('ActiveState')}
    return status, text, evidence


# ---------------------------------------------------------------- dependencies
def evaluate_dependency(dep, result, latency_warn_ms):
    critical = bool(dep.get('critical', True))
    bad = 'crit' if critical else 'warn'
    label = '%s %s' % (dep.get('name'), dep.get('url'))
    if result.get('error'):
        return bad, '%s unreachable: %s (%s dependency)' % (label, result['error'], 'critical' if critical else 'non-critical')
    expected = dep.get('expect_status', 200)
    expected = [int(x) for x in (expected if isinstance(expected, list) else [expected])]
    if result['status'] not in expected:
        return bad, '%s: HTTP %s, expected %s (%s dependency)' % (
            label, result['status'], '/'.join(str(x) for x in expected), 'critical' if critical else 'non-critical')
    status = level(result['latency_ms'], latency_warn_ms, None)
    return status, '%s: HTTP %s in %d ms%s' % (dep.get('name'), result['status'], result['latency_ms'], ' (slow)' if status != 'ok' else '')


def dependency_results(deps, timeout):
    specs = [{'url': d['url'], 'timeout': d.get('timeout', timeout), 'validate_certs': d.get('validate_certs', True)} for d in deps]
    return probe_health.check_endpoints(specs, default_timeout=timeout)
