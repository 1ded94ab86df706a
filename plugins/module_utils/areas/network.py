# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network area: network and infrastructure checks: DNS, TLS certificates, dependencies, disk, container resources.

Everything about the area is here: its argument spec (SPEC), run(module) and the pure
evaluate_*() functions that turn what it read into findings (unit-tested without a host).
The module sre.incident_response.net_probe runs this one area; the module probe runs every area of a host
concurrently. run() takes an AnsibleModule or the probe's per-area view of one (params, run_command,
get_bin_path, fail_json) and returns the module result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.sre.incident_response.plugins.module_utils.areas import health
from ansible_collections.sre.incident_response.plugins.module_utils.docker_api import DockerError, DockerClient
from ansible_collections.sre.incident_response.plugins.module_utils.findings import make_finding as finding, worst, rank
from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import (
    fmt_pct, human_bytes, level, one_line, pct, utcnow, combine, thresholds_of)


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


def _tls_item(spec, res, t):
    try:
        return evaluate_tls(spec, res, t['tls_warn_days'], t['tls_crit_days'])
    except Exception as exc:  # pylint: disable=broad-except
        return 'unknown', '%s: cannot parse the certificate: %s' % (spec.get('name'), one_line(str(exc))), {}


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
#
# Without sampling: the engine's stats endpoint waits for its collector (about a second per sample; even
# one-shot waits for the next tick), so where the module runs on the Docker host it reads the container's
# cgroup directly (memory, pids; CPU time over a short interval) and /proc/<pid>/net/dev (network). Only
# where the cgroup is not visible (a module in a container without the host's /sys/fs/cgroup) does it ask
# the engine for one one-shot sample, which carries no previous sample: CPU is then left out, with a note.

CGROUP_ROOT = '/sys/fs/cgroup'
PROC_ROOT = '/proc'
CPU_NOT_SAMPLED = 'CPU not sampled (cpu_sample_seconds is 0)'
CPU_NOT_LOCAL = ('CPU not sampled: the container\'s cgroup is not visible here and one-shot engine stats carry no '
                 'previous sample')


def cpu_percent(stats):
    """Docker-style CPU percent between precpu_stats and cpu_stats of one sample (100 = one core).

    (None, None) when there is no previous sample (one-shot stats zero precpu_stats): a percentage of the
    CPU time since the container started would be a wrong number, not a current one.
    """
    first, second = stats.get('precpu_stats') or {}, stats.get('cpu_stats') or {}
    try:
        before, after = first['cpu_usage']['total_usage'], second['cpu_usage']['total_usage']
        sys_before, sys_after = first['system_cpu_usage'], second['system_cpu_usage']
        cpus = second.get('online_cpus') or len(second['cpu_usage'].get('percpu_usage') or []) or 1
    except (KeyError, TypeError):
        return None, None
    if not before or not sys_before:
        return None, None
    cpu_delta, sys_delta = after - before, sys_after - sys_before
    if sys_delta <= 0 or cpu_delta < 0:
        return 0.0, cpus
    return round(cpu_delta / float(sys_delta) * cpus * 100.0, 1), cpus


def _mounts(root):
    """v1 hierarchies under the cgroup root: {controller: directory} ('cpu,cpuacct' serves cpu and cpuacct)."""
    out = {}
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return out
    for name in names:
        path = os.path.join(root, name)
        if os.path.isdir(path) and not os.path.islink(path):
            for controller in name.split(','):
                out.setdefault(controller, path)
    for name in names:  # symlinks (cpuacct -> cpu,cpuacct) last
        path = os.path.join(root, name)
        if os.path.islink(path) and os.path.isdir(path):
            out.setdefault(name, path)
    return out


def cgroup_dirs(container_id, pid=None, root=CGROUP_ROOT, proc=PROC_ROOT):
    """The container's cgroup directories visible here: {'memory': dir, 'cpu': dir, 'pids': dir, 'version': 1|2}.

    From /proc/<pid>/cgroup of its main process (any cgroup driver, rootless included), else from the
    usual places of the cgroupfs and systemd drivers. A directory counts only when its path names the
    container ID (a PID of another PID namespace is some other process). Keys are missing when not found.
    """
    container_id = str(container_id or '')
    if len(container_id) < 12:
        return {}
    unified = os.path.exists(os.path.join(root, 'cgroup.controllers'))
    mounts = {} if unified else _mounts(root)
    found = {'version': 2 if unified else 1}
    paths = []
    try:
        with open(os.path.join(proc, str(int(pid)), 'cgroup')) as handle:
            for line in handle:
                hier, _sep, rest = line.strip().partition(':')
                controllers, _sep, path = rest.partition(':')
                if container_id in path:
                    paths.append((controllers, path))
    except (OSError, TypeError, ValueError):
        pass
    for template in ('/docker/{id}', '/system.slice/docker-{id}.scope'):
        paths.append(('', template.format(id=container_id)))
        paths.append(('memory,cpuacct,pids', template.format(id=container_id)))

    def place(key, directory, marker):
        if key not in found and os.path.isfile(os.path.join(directory, marker)):
            found[key] = directory

    for controllers, path in paths:
        rel = path.lstrip('/')
        if unified:
            if not controllers:
                directory = os.path.join(root, rel)
                place('memory', directory, 'memory.current')
                place('cpu', directory, 'cpu.stat')
                place('pids', directory, 'pids.current')
            continue
        if not controllers:  # the unified hierarchy of a hybrid host: CPU time only
            if 'unified' in mounts:
                place('cpu', os.path.join(mounts['unified'], rel), 'cpu.stat')
            continue
        for controller in controllers.split(','):
            if controller in ('memory', 'pids') and controller in mounts:
                place(controller, os.path.join(mounts[controller], rel), controller + '.' + (
                    'usage_in_bytes' if controller == 'memory' else 'current'))
            elif controller in ('cpuacct', 'cpu') and controller in mounts:
                place('cpu', os.path.join(mounts[controller], rel), 'cpuacct.usage')
    return found


def cgroup_cpu_file(container_id, pid=None, root=CGROUP_ROOT, proc=PROC_ROOT):
    """The file with the container's cumulative CPU time (cpuacct.usage or cpu.stat), or None."""
    directory = cgroup_dirs(container_id, pid, root, proc).get('cpu')
    if not directory:
        return None
    for name in ('cpuacct.usage', 'cpu.stat'):
        if os.path.isfile(os.path.join(directory, name)):
            return os.path.join(directory, name)
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
    """CPU percent (100 = one core) of a cgroup over a short interval; None without an interval."""
    if not seconds or seconds <= 0:
        return None
    first, t1 = read_cpu_ns(path), time.monotonic()
    time.sleep(seconds)
    second, t2 = read_cpu_ns(path), time.monotonic()
    if first is None or second is None or t2 <= t1:
        return None
    return round(max(0, second - first) / ((t2 - t1) * 1e9) * 100.0, 1)


def _read_int(path):
    with open(path) as handle:
        value = handle.read().strip()
    return int(value) if value.isdigit() else None  # 'max' (v2): no limit


def _read_kv(path):
    out = {}
    with open(path) as handle:
        for line in handle:
            key, _sep, value = line.strip().partition(' ')
            if value.isdigit():
                out[key] = int(value)
    return out


def read_net_dev(path):
    """{interface: {'rx_bytes', 'tx_bytes'}} of /proc/<pid>/net/dev without loopback (what the engine reports)."""
    nets = {}
    with open(path) as handle:
        for line in handle.readlines()[2:]:
            name, _sep, fields = line.partition(':')
            name, fields = name.strip(), fields.split()
            if name and name != 'lo' and len(fields) >= 9:
                nets[name] = {'rx_bytes': int(fields[0]), 'tx_bytes': int(fields[8])}
    return nets


def cgroup_stats(dirs, pid=None, network_mode=None, proc=PROC_ROOT):
    """A stats-shaped dict (memory_stats, pids_stats, networks) read from cgroup files; None without memory.

    The same numbers the engine's stats endpoint reports (usage, limit and memory.stat; pids.current;
    the container's network namespace counters), read in microseconds instead of waiting for a sample.
    """
    memory = dirs.get('memory')
    if not memory:
        return None
    try:
        if dirs.get('version') == 2:
            usage, limit = _read_int(os.path.join(memory, 'memory.current')), _read_int(os.path.join(memory, 'memory.max'))
        else:
            usage = _read_int(os.path.join(memory, 'memory.usage_in_bytes'))
            limit = _read_int(os.path.join(memory, 'memory.limit_in_bytes'))
        detail = _read_kv(os.path.join(memory, 'memory.stat'))
    except OSError:
        return None
    stats = {'memory_stats': {'usage': usage, 'limit': limit, 'stats': detail}, 'networks': None, 'source': 'cgroup'}
    if dirs.get('pids'):
        try:
            stats['pids_stats'] = {'current': _read_int(os.path.join(dirs['pids'], 'pids.current'))}
        except OSError:
            pass
    if pid and network_mode != 'host' and not str(network_mode or '').startswith('container:'):
        try:
            stats['networks'] = read_net_dev(os.path.join(proc, str(int(pid)), 'net', 'dev')) or None
        except (OSError, ValueError):
            pass
    return stats


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


def evaluate_container_resources(container, second, memory_limit_cfg, t, cpu=None, cpu_note=None, network_mode='host'):
    """container.resources of one container: memory, network and pids from one sample (the cgroup's or the
    engine's), CPU from the cgroup over an interval or from the engine's precpu_stats; none rather than a wrong one."""
    if cpu is None:
        cpu, cpus = cpu_percent(second)
    else:
        cpus = None
    cpus = cpus or (second.get('cpu_stats') or {}).get('online_cpus') or os.cpu_count() or 1
    used, limit = memory_usage(second)
    has_limit = bool(memory_limit_cfg)
    mem_pct = pct(used, limit) if used is not None and limit else None
    net = network_io(second)
    levels = {}
    if has_limit and mem_pct is not None:
        levels['memory'] = level(mem_pct, t['memory_warn_pct'], t['memory_crit_pct'])
    cpu_of_capacity = round(cpu / cpus, 1) if cpu is not None and cpus else None
    if cpu_of_capacity is not None:
        levels['cpu'] = level(cpu_of_capacity, t['cpu_warn_pct'], None)
    status = worst(levels.values())
    text = '%s CPU %s, memory %s%s' % (
        container, fmt_pct(cpu) if cpu is not None else 'not sampled', human_bytes(used),
        ' of %s limit (%s)' % (human_bytes(limit), fmt_pct(mem_pct)) if has_limit else ' (no limit)')
    if net:
        text += ', net rx %s / tx %s' % (human_bytes(net['rx_bytes']), human_bytes(net['tx_bytes']))
    else:
        text += ', net n/a%s' % (' (host network)' if network_mode == 'host' else '')
    evidence = {'container': container, 'cpu_pct': cpu, 'online_cpus': cpus, 'cpu_pct_of_capacity': cpu_of_capacity,
                'memory_used': used, 'memory_limit': limit if has_limit else None, 'memory_pct': mem_pct if has_limit else None,
                'network': net, 'pids': (second.get('pids_stats') or {}).get('current'),
                'source': second.get('source') or 'engine stats',
                'exceeded': sorted(name for name, value in levels.items() if value in ('warn', 'crit'))}
    if cpu is None:
        evidence['cpu_note'] = cpu_note or CPU_NOT_LOCAL
    return status, text, evidence


def sample_container(client, name, cpu_sample_seconds, root=CGROUP_ROOT, proc=PROC_ROOT):
    """One container's resource sample: (stats-shaped dict, inspect) or (None, inspect) when it is not running.

    The cgroup when it is visible here (instant; CPU over cpu_sample_seconds), else one one-shot engine
    sample. Raises DockerError (404: no such container). The CPU percent is in stats['cpu_pct'].
    """
    info = client.inspect(name)
    state = info.get('State') or {}
    if not state.get('Running'):
        return None, info
    pid, mode = state.get('Pid'), (info.get('HostConfig') or {}).get('NetworkMode')
    dirs = cgroup_dirs(info.get('Id'), pid, root, proc)
    stats = cgroup_stats(dirs, pid, mode, proc)
    if stats is None:
        stats = client.stats(name, one_shot=True)
        stats['cpu_pct'], stats['cpu_note'] = None, CPU_NOT_LOCAL
        return stats, info
    cpu_file, cpu = cgroup_cpu_file(info.get('Id'), pid, root, proc), None
    if not cpu_file:
        note = 'CPU not sampled: no CPU accounting in the container\'s cgroup'
    elif not cpu_sample_seconds or cpu_sample_seconds <= 0:
        note = CPU_NOT_SAMPLED
    else:
        try:
            cpu = sample_cpu(cpu_file, cpu_sample_seconds)
        except (OSError, ValueError):
            cpu = None
        note = None if cpu is not None else 'CPU not sampled: %s unreadable' % cpu_file
    stats['cpu_pct'], stats['cpu_note'] = cpu, note
    return stats, info


def container_resource_findings(client, host, services, t, cpu_sample_seconds):
    """container.resources of the Docker services of one host, every container sampled in parallel.

    services: incident_services entries with deploy.container; client: a docker_api.DockerClient.
    A Docker error 404 is crit (the container is gone), other errors unknown.
    """
    def sample(service):
        try:
            return sample_container(client, service['deploy']['container'], cpu_sample_seconds) + (None,)
        except DockerError as exc:
            return None, None, exc

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(sample, services))
    items = []
    for service, (stats, info, exc) in zip(services, results):
        container = service['deploy']['container']
        if exc is not None:
            status = 'crit' if getattr(exc, 'status', None) == 404 else 'unknown'
            items.append(finding('container.resources', host, service.get('name'), status,
                                 '%s: %s' % (container, one_line(str(exc))), {'container': container}))
            continue
        if stats is None:
            items.append(finding('container.resources', host, service.get('name'), 'unknown',
                                 '%s is not running: no resource usage' % container, {'container': container}))
            continue
        status, text, evidence = evaluate_container_resources(
            container, stats, (info.get('HostConfig') or {}).get('Memory'), t, cpu=stats.get('cpu_pct'),
            cpu_note=stats.get('cpu_note'), network_mode=(info.get('HostConfig') or {}).get('NetworkMode'))
        items.append(finding('container.resources', host, service.get('name'), status, text, evidence))
    return items


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
                'main_pid': props.get('MainPID'), 'active_state': props.get('ActiveState'),
                'exceeded': ['memory'] if status in ('warn', 'crit') else []}
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
    return health.check_endpoints(specs, default_timeout=timeout)


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


# Where an ACME client (or a person) leaves a renewed pair: the certificate and key file names looked for in an
# endpoint's renewal_dir, first match wins (certbot's live/<name>/ directory, then common names).
RENEWAL_CERT_NAMES = ('fullchain.pem', 'cert.pem', 'server.crt', 'tls.crt')
RENEWAL_KEY_NAMES = ('privkey.pem', 'server.key', 'tls.key')
# A TLS check that is not ok is made once more after this pause before it counts: a certificate being replaced
# (written, then the proxy reloaded) must not page.
TLS_RECHECK_SECONDS = 1.0


def _first_file(directory, names):
    for name in names:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def find_renewal(spec, served_not_after, now=None):
    """A renewed pair in the endpoint's renewal_dir (on the machine that runs the TLS check): {'cert', 'key',
    'not_after', 'days_left', 'usable', 'problem'}; usable when the certificate is newer than the served one,
    valid now, covers the endpoint's server_name, and the key is its key. None without a renewal_dir."""
    directory = spec.get('renewal_dir')
    if not directory:
        return None
    now = now or utcnow()
    cert_path = _first_file(directory, RENEWAL_CERT_NAMES)
    key_path = _first_file(directory, RENEWAL_KEY_NAMES)
    out = {'cert': cert_path, 'key': key_path, 'not_after': None, 'days_left': None, 'usable': False, 'problem': None}
    if not cert_path or not key_path:
        out['problem'] = 'no certificate and key in %s (looked for %s and %s)' % (
            directory, '/'.join(RENEWAL_CERT_NAMES), '/'.join(RENEWAL_KEY_NAMES))
        return out
    try:
        from cryptography.hazmat.primitives import serialization
        with open(cert_path, 'rb') as handle:
            cert = x509.load_pem_x509_certificate(handle.read())
        with open(key_path, 'rb') as handle:
            key = serialization.load_pem_private_key(handle.read(), password=None)
        info = describe_certificate(cert.public_bytes(serialization.Encoding.DER))
        same_key = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
            == cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    except Exception as exc:  # pylint: disable=broad-except
        out['problem'] = 'cannot read the pair: %s: %s' % (type(exc).__name__, one_line(str(exc), 120))
        return out
    not_after = info['_not_after']
    out['not_after'] = info['not_after']
    out['days_left'] = round((not_after - now).total_seconds() / 86400.0, 1)
    not_before = datetime.datetime.fromisoformat(info['not_before'])
    server_name = spec.get('server_name')
    if not same_key:
        out['problem'] = 'the key is not the certificate\'s key'
    elif served_not_after is not None and not_after <= served_not_after:
        out['problem'] = 'not newer than the served certificate (ends %s)' % not_after.strftime('%Y-%m-%d %H:%M UTC')
    elif not_after <= now or not_before > now:
        out['problem'] = 'not valid now (%s .. %s)' % (info['not_before'], info['not_after'])
    elif server_name and not _name_matches(server_name, info['san'] or [info['common_name'] or '']):
        out['problem'] = 'does not cover %s' % server_name
    else:
        out['usable'] = True
    return out


def controller_checks(p, t):
    timeout = p['timeout']
    findings = []
    dns_specs = [d for d in p['dns_names'] if isinstance(d, dict) and d.get('name')]
    tls_specs = [d for d in p['tls_endpoints'] if isinstance(d, dict) and d.get('host') and d.get('port')]
    deps = [d for d in p['dependencies'] if isinstance(d, dict) and d.get('url')]
    with ThreadPoolExecutor(max_workers=16) as pool:
        dns_f = [pool.submit(resolve, d, timeout) for d in dns_specs]
        tls_f = [pool.submit(fetch_certificate, d['host'], d['port'], d.get('server_name'), timeout, d.get('ca_cert'))
                 for d in tls_specs]
        dep_f = pool.submit(dependency_results, deps, timeout)
        dns_r = [f.result() for f in dns_f]
        tls_r = [f.result() for f in tls_f]
        dep_r = dep_f.result()
    items = []
    for spec, res in zip(dns_specs, dns_r):
        status, text = evaluate_dns(spec, res, t['dns_latency_warn_ms'])
        items.append((status, text, res, spec['name']))
    findings.append(grouped('net.dns', p['controller_name'], items))
    items = []
    for spec, res in zip(tls_specs, tls_r):
        if res.get('der') and not HAS_CRYPTOGRAPHY:
            items.append(('unknown', '%s: the cryptography library is missing' % spec.get('name'), {}, spec.get('name')))
            continue
        status, text, info = _tls_item(spec, res, t)
        if status not in ('ok', 'unknown'):  # re-checked once before it counts (a certificate being replaced)
            time.sleep(TLS_RECHECK_SECONDS)
            status, text, info = _tls_item(spec, fetch_certificate(spec['host'], spec['port'], spec.get('server_name'),
                                                                   timeout, spec.get('ca_cert')), t)
        if status != 'ok' and spec.get('renewal_dir') and info.get('not_after'):
            try:
                renewal = find_renewal(spec, datetime.datetime.fromisoformat(info['not_after']))
            except Exception as exc:  # pylint: disable=broad-except
                renewal = {'usable': False, 'problem': one_line(str(exc), 120)}
            info['renewal'] = renewal
            found = 'usable' if renewal.get('usable') else renewal.get('problem')
            text += '; renewed pair in %s: %s' % (spec['renewal_dir'], found)
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
        status, text = evaluate_dependency(dep, res, t['dependency_latency_warn_ms'])
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
            usage = disk_usage(path)
        except OSError as exc:
            errors.append((path, exc.strerror or str(exc)))
            continue
        if usage['dev'] in seen:
            continue
        seen.add(usage['dev'])
        usages.append(usage)
    names = sorted({s.get('name') for s in services if s.get('disk_paths')})
    findings.append(evaluate_disk(host, names[0] if len(names) == 1 else None, usages, errors,
                                  t['disk_warn_pct'], t['disk_crit_pct']))
    # container.resources: every container at once, from its cgroup (the engine's one-shot stats where not visible)
    dockers = [s for s in services if (s.get('deploy') or {}).get('type', 'docker') == 'docker' and (s.get('deploy') or {}).get('container')]
    if dockers and p['container_resources']:
        findings.extend(combine(container_resource_findings(
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
            status, text, evidence = evaluate_unit_resources(unit, props, t, process_rss(props.get('MainPID')))
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
