# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host area: the kernel's and the init system's own view of a host, as findings.

Everything about the area is here: its argument spec (SPEC), run(module) and the pure evaluate_*() and
parse_*() functions that turn what it read into findings (unit-tested without a host).

- ``host.oom``: kernel OOM kills. The ``oom_kill`` counters of the cgroups of the host's services (cgroup v2
  ``memory.events``, v1 ``memory.oom_control``: readable without privileges) and the kernel log of the window
  (``journalctl -k``, else ``dmesg``, when readable): which process, which service, when, how many.
- ``host.units``: failed systemd units (``systemctl --failed``) and the services' units restarting
  (``NRestarts``, ``SubState=auto-restart``).
- ``host.fds``: open file descriptors and TCP connections by process from /proc (top N, against each
  process' ``Max open files``).

Standard library and commands of a bare Debian host only (``timeout``, ``systemctl``, ``journalctl``, ``dmesg``);
every command runs under ``timeout``. A source that cannot be read is named in the evidence (``sources``) and
the finding says so; it is never a failed area. Process names, unit descriptions and kernel messages are the
host's text: kept as data, cut to one line.
The module sre.incident_response.host_probe runs this one area; the module probe runs every area of a host
concurrently.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import time

from ansible_collections.sre.incident_response.plugins.module_utils.docker_api import DockerClient
from ansible_collections.sre.incident_response.plugins.module_utils.findings import make_finding as finding, worst
from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import (
    level, one_line, pct, thresholds_of, window_seconds)
from ansible_collections.sre.incident_response.plugins.module_utils.areas.network import (
    CGROUP_ROOT, PROC_ROOT, cgroup_dirs)

CHECKS = ('oom', 'units', 'fds')

# --- host.oom ---------------------------------------------------------------------------------------------

# "Memory cgroup out of memory: Killed process 4242 (python3) total-vm:..., anon-rss:...kB" (5.x/6.x),
# "Out of memory: Killed process 4242 (java) ..." (global), "Killed process 4242 (x) ..." (older kernels)
_KILLED_RE = re.compile(r'(?P<memcg>Memory cgroup out of memory: )?(?:Out of memory: )?Kill(?:ed)? process (?P<pid>\d+) '
                        r'\((?P<name>[^)]{0,64})\)(?:.*?anon-rss:(?P<anon>\d+)kB)?')
# "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=...,oom_memcg=/docker/ID,task_memcg=/docker/ID,task=x,pid=1,uid=0"
_OOM_KILL_RE = re.compile(r'oom-kill:(?P<fields>\S+)')
_DMESG_RE = re.compile(r'^\[\s*(?P<sec>\d+(?:\.\d+)?)\]\s?(?P<msg>.*)$')


def parse_kernel_oom(lines):
    """Kernel log lines [(epoch seconds or None, message)] -> OOM kills [{ts, pid, process, cgroup, constraint,
    anon_rss_kb}]. The ``oom-kill:`` line before a ``Killed process`` line gives its cgroup and constraint."""
    kills, context = [], {}
    for ts, msg in lines:
        msg = str(msg or '')
        match = _OOM_KILL_RE.search(msg)
        if match:
            context = {}
            for part in match.group('fields').split(','):
                name, _sep, value = part.partition('=')
                context[name] = value
            continue
        match = _KILLED_RE.search(msg)
        if not match:
            continue
        pid = int(match.group('pid'))
        same = str(context.get('pid')) == str(pid)
        kills.append({
            'ts': ts, 'pid': pid, 'process': one_line(match.group('name'), 64),
            'cgroup': one_line(context.get('task_memcg') or context.get('oom_memcg') or '', 200) if same else None,
            'constraint': (context.get('constraint') if same else None) or (
                'CONSTRAINT_MEMCG' if match.group('memcg') else None),
            'anon_rss_kb': int(match.group('anon')) if match.group('anon') else None})
        context = {}
    return kills


def parse_dmesg(text, boot_time):
    """Raw ``dmesg`` output ("[ 123.456] message") -> [(epoch seconds, message)]: seconds since boot plus
    /proc/stat's btime (dmesg's own --time-format is not on every host)."""
    out = []
    for line in (text or '').splitlines():
        match = _DMESG_RE.match(line)
        if match:
            out.append((round(boot_time + float(match.group('sec')), 3) if boot_time else None, match.group('msg')))
    return out


def _journal_records(text):
    """``journalctl -o json`` lines -> [(epoch seconds or None, record)], MESSAGE as text; not-JSON lines skipped."""
    import json
    out = []
    for line in (text or '').splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        msg = record.get('MESSAGE')
        if isinstance(msg, list):  # journald stores a message with invalid UTF-8 as bytes
            record['MESSAGE'] = bytes(b & 0xff for b in msg if isinstance(b, int)).decode('utf-8', 'replace')
        try:
            ts = int(record.get('__REALTIME_TIMESTAMP')) / 1e6
        except (TypeError, ValueError):
            ts = None
        out.append((ts, record))
    return out


def parse_journal_json(text):
    """``journalctl -k -o json`` lines -> [(epoch seconds, message)]; a line that is not JSON is skipped."""
    return [(ts, record.get('MESSAGE')) for ts, record in _journal_records(text)]


def boot_time(proc=PROC_ROOT):
    try:
        with open(os.path.join(proc, 'stat')) as handle:
            for line in handle:
                if line.startswith('btime '):
                    return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def read_oom_counters(memory_dir):
    """{'oom_kill': n, 'oom': n} of a cgroup's memory directory (v2 memory.events, v1 memory.oom_control);
    raises OSError when neither can be read."""
    for name in ('memory.events', 'memory.oom_control'):
        path = os.path.join(memory_dir, name)
        if not os.path.isfile(path):
            continue
        out = {}
        with open(path) as handle:
            for line in handle:
                parts = line.split()
                if len(parts) == 2 and parts[1].isdigit():
                    out[parts[0]] = int(parts[1])
        return {'oom_kill': out.get('oom_kill', 0), 'oom': out.get('oom', out.get('under_oom', 0)), 'file': name}
    raise OSError('no memory.events or memory.oom_control in %s' % memory_dir)


def attribute(kill, cgroups):
    """The service whose cgroup a kill happened in (its container ID or unit name in the kill's cgroup path)."""
    path = kill.get('cgroup') or ''
    for item in cgroups:
        marker = item.get('container_id') or item.get('unit')
        if marker and path and marker in path:
            return item.get('service')
    return None


def evaluate_oom(host, cgroups, kills, sources, window_s, now=None):
    """host.oom of one host.

    cgroups: [{service, container|unit, container_id|unit, path, oom_kill, oom, started_at (epoch), error}];
    kills: kernel-log kills of the window (parse_kernel_oom), sources: {source: 'read' or why not}.
    crit: a kill of a service's process in the window (kernel log), or a service's counter > 0 for a cgroup
    started inside the window (every kill it counts is then recent); warn: a global (host out of memory) kill in
    the window, or a service's counter > 0 whose time the kernel log cannot tell; ok otherwise.
    """
    now = now or time.time()
    log_read = any(v == 'read' for v in sources.values())
    for kill in kills:
        kill['service'] = attribute(kill, cgroups)
    service_kills = [k for k in kills if k.get('service')]
    global_kills = [k for k in kills if not k.get('service') and k.get('constraint') != 'CONSTRAINT_MEMCG']
    statuses, parts, implicated = ['ok'], [], []
    for item in cgroups:
        count = item.get('oom_kill') or 0
        if not count:
            continue
        started = item.get('started_at')
        recent = bool(started) and now - started <= window_s
        logged = [k for k in service_kills if k['service'] == item['service']
                  and not (started and k.get('ts') and k['ts'] < started - 1)]
        name = item.get('container') or item.get('unit')
        if logged or recent:
            statuses.append('crit')
            implicated.append(item['service'])
        elif not log_read:
            statuses.append('warn')
            implicated.append(item['service'])
            parts.append('%s (%s): %d OOM kill%s since it started, when unknown (kernel log not readable)' % (
                item['service'], name, count, '' if count == 1 else 's'))
            continue
        else:
            parts.append('%s (%s): %d OOM kill%s since it started, none in the window' % (
                item['service'], name, count, '' if count == 1 else 's'))
            continue
        shown = len(logged) if logged else count
        detail = (' (%s)' % ', '.join('%s pid %d' % (k['process'], k['pid']) for k in logged[:3]) if logged
                  else ' (counter of a cgroup started %ds ago)' % int(now - started))
        parts.insert(0, '%s (%s): %d OOM kill%s in the window%s' % (
            item['service'], name, shown, '' if shown == 1 else 's', detail))
    starts = dict((c['service'], c.get('started_at')) for c in cgroups)
    earlier = [k for k in service_kills if starts.get(k['service']) and k.get('ts')
               and k['ts'] < starts[k['service']] - 1]
    for kill in earlier:  # the process was killed in an earlier run of the container or unit: history, not rated
        kill['before_start'] = True
    if earlier:
        parts.append('%d OOM kill%s in the window before the last start of %s (restarted since)' % (
            len(earlier), '' if len(earlier) == 1 else 's', ', '.join(sorted({k['service'] for k in earlier}))))
    for kill in service_kills:
        if kill['service'] not in implicated and not kill.get('before_start'):  # logged, counter not readable
            statuses.append('crit')
            implicated.append(kill['service'])
            parts.insert(0, '%s: OOM kill of %s pid %d in the window' % (kill['service'], kill['process'], kill['pid']))
    if global_kills:
        statuses.append('warn')
        parts.append('host out of memory: %d kill%s in the window (%s)' % (
            len(global_kills), '' if len(global_kills) == 1 else 's',
            ', '.join('%s pid %d' % (k['process'], k['pid']) for k in global_kills[:3])))
    unread = sorted(k for k, v in sources.items() if v != 'read')
    status = worst(statuses)
    if not parts:
        text = 'no OOM kill in the window'
        if cgroups:
            read = len([c for c in cgroups if 'oom_kill' in c])
            text += ' (%d service cgroup%s read)' % (read, '' if read == 1 else 's')
    else:
        text = '; '.join(parts)
    missing = [c for c in cgroups if c.get('error')]
    if missing:
        text += '; counters not read: %s' % ', '.join('%s (%s)' % (c['service'], c['error']) for c in missing[:3])
    if not log_read and unread:
        text += '; kernel log not read (%s)' % ', '.join('%s: %s' % (k, one_line(sources[k], 80)) for k in unread)
    evidence = {'kills': kills[-20:], 'kills_in_window': len(kills), 'cgroups': cgroups, 'sources': sources,
                'implicated': sorted(set(implicated)), 'window_s': window_s}
    service = implicated[0] if len(set(implicated)) == 1 else None
    return finding('host.oom', host, service, status, text, evidence)


def _run_timeout(module, argv, timeout):
    """run_command under coreutils' timeout; (rc, out, err), rc 124 when it timed out."""
    wrapper = module.get_bin_path('timeout')
    cmd = [wrapper, '%gs' % timeout] + list(argv) if wrapper else list(argv)
    rc, out, err = module.run_command(cmd)
    if rc == 124 and wrapper:
        err = 'timed out after %g s' % timeout
    return rc, out, err


def read_kernel_log(module, window_s, timeout, proc=PROC_ROOT, kmsg='/dev/kmsg', journal='/run/systemd/journal'):
    """The kernel log of the window: ([(ts, message)], {source: 'read' or why not}). journald first, then dmesg.

    journald holds the kernel's messages only where it reads them from /dev/kmsg: without it (a container's
    journald) ``journalctl -k`` answers with nothing, which is not "no kill", so it does not count as read."""
    sources, since = {}, time.time() - window_s
    journalctl = module.get_bin_path('journalctl')
    if journalctl and os.path.isdir(journal) and not os.path.exists(kmsg):
        sources['journalctl -k'] = 'no %s here (a container?): journald holds no kernel messages' % kmsg
    elif journalctl and os.path.isdir(journal):
        rc, out, err = _run_timeout(module, [journalctl, '-k', '-q', '--no-pager', '-o', 'json', '--since',
                                             '@%d' % int(since), '-n', '20000'], timeout)
        if rc == 0:
            sources['journalctl -k'] = 'read'
            return [x for x in parse_journal_json(out) if x[0] is None or x[0] >= since], sources
        sources['journalctl -k'] = one_line(err or out or 'exit %d' % rc, 120)
    else:
        sources['journalctl -k'] = 'no journald on this host' if journalctl else 'journalctl not found'
    dmesg = module.get_bin_path('dmesg')
    if dmesg:
        rc, out, err = _run_timeout(module, [dmesg], timeout)
        if rc == 0:
            sources['dmesg'] = 'read'
            return [x for x in parse_dmesg(out, boot_time(proc)) if x[0] is None or x[0] >= since], sources
        sources['dmesg'] = one_line(err or out or 'exit %d' % rc, 120)
    else:
        sources['dmesg'] = 'dmesg not found'
    return [], sources


def _epoch(docker_time):
    from ansible_collections.sre.incident_response.plugins.module_utils.probe_common import parse_docker_time
    parsed = parse_docker_time(docker_time)
    return parsed.timestamp() if parsed else None


def _systemctl_show(module, unit, props, timeout):
    systemctl = module.get_bin_path('systemctl')
    if not systemctl:
        return None, 'systemctl not found'
    argv = [systemctl, 'show', unit, '--no-pager']
    for prop in props:
        argv += ['-p', prop]
    rc, out, err = _run_timeout(module, argv, timeout)
    if rc != 0:
        return None, one_line(err or out or 'exit %d' % rc, 120)
    return dict(line.split('=', 1) for line in out.splitlines() if '=' in line), None


def _monotonic_to_epoch(usec):
    """A systemd *TimestampMonotonic (µs since boot) -> epoch seconds, None for 0 or garbage."""
    try:
        usec = int(usec)
    except (TypeError, ValueError):
        return None
    if usec <= 0:
        return None
    return time.time() - (time.monotonic() - usec / 1e6) if _clock_is_boot() else None


def _clock_is_boot():
    # CLOCK_MONOTONIC is what systemd's *TimestampMonotonic count; time.monotonic is CLOCK_MONOTONIC on Linux.
    return hasattr(time, 'CLOCK_MONOTONIC')


def service_cgroups(module, p, root=CGROUP_ROOT, proc=PROC_ROOT):
    """[{service, container|unit, container_id|unit, path, oom_kill, oom, started_at, error}] of the host's services."""
    out, client = [], None
    for svc in p['services'] or []:
        if not isinstance(svc, dict):
            continue
        deploy = svc.get('deploy') or {}
        kind = deploy.get('type', 'docker')
        item = {'service': svc.get('name')}
        if kind == 'docker' and deploy.get('container'):
            item['container'] = deploy['container']
            try:
                client = client or DockerClient(p['docker_host'], timeout=p['timeout'])
                info = client.container(deploy['container'])
            except Exception as exc:  # pylint: disable=broad-except
                item['error'] = 'docker: %s' % one_line(str(exc), 120)
                out.append(item)
                continue
            if not info:
                item['error'] = 'no such container'
                out.append(item)
                continue
            state = info.get('State') or {}
            item['container_id'] = str(info.get('Id') or '')[:64]
            item['started_at'] = _epoch(state.get('StartedAt'))
            directory = cgroup_dirs(info.get('Id'), state.get('Pid'), root, proc).get('memory')
        elif kind == 'systemd' and deploy.get('unit'):
            item['unit'] = deploy['unit']
            props, error = _systemctl_show(module, deploy['unit'], ('ControlGroup', 'ExecMainStartTimestampMonotonic'),
                                           p['timeout'])
            if error:
                item['error'] = error
                out.append(item)
                continue
            item['started_at'] = _monotonic_to_epoch(props.get('ExecMainStartTimestampMonotonic'))
            directory = unit_memory_dir(props.get('ControlGroup'), root)
        else:
            continue
        if not directory:
            item['error'] = 'memory cgroup not visible here'
            out.append(item)
            continue
        item['path'] = directory
        try:
            counters = read_oom_counters(directory)
            item.update(oom_kill=counters['oom_kill'], oom=counters['oom'])
        except OSError as exc:
            item['error'] = one_line(getattr(exc, 'strerror', None) or str(exc), 120)
        out.append(item)
    return out


def unit_memory_dir(control_group, root=CGROUP_ROOT):
    """The memory cgroup directory of a unit's ControlGroup (v2 unified, else the v1 memory hierarchy)."""
    if not control_group:
        return None
    rel = control_group.lstrip('/')
    for base in (root, os.path.join(root, 'memory')):
        directory = os.path.join(base, rel)
        if os.path.isfile(os.path.join(directory, 'memory.events')) or \
                os.path.isfile(os.path.join(directory, 'memory.oom_control')):
            return directory
    return None


# --- host.units -------------------------------------------------------------------------------------------

def parse_failed_units(text):
    """``systemctl --failed --plain --no-legend`` -> [{unit, load, active, sub, description}]."""
    out = []
    for line in (text or '').splitlines():
        parts = line.strip().lstrip('\u25cf* ').split(None, 4)
        if len(parts) >= 4 and '.' in parts[0]:
            out.append({'unit': one_line(parts[0], 120), 'load': parts[1], 'active': parts[2], 'sub': parts[3],
                        'description': one_line(parts[4] if len(parts) > 4 else '', 120)})
    return out


def describe_exit(last_exit):
    """{code, status} of a main process' exit -> 'status 3', 'signal KILL' ('' when unknown)."""
    if not isinstance(last_exit, dict) or not last_exit.get('code'):
        return ''
    code, status = str(last_exit['code']), str(last_exit.get('status') or '?')
    if code == 'exited':
        return 'status %s' % status
    return '%s by signal %s' % ('dumped core' if code == 'dumped' else 'killed', status)


# systemd's "Main process exited, code=exited, status=3/NOTIMPLEMENTED" (SD_MESSAGE_UNIT_PROCESS_EXIT)
PROCESS_EXIT_ID = '98e322203f7a4ed290d09fe03c09fe15'
_EXIT_RE = re.compile(r'Main process exited, code=(?P<code>\w+), status=(?P<status>[\w/+-]{1,40})')
_CLD = {'1': 'exited', '2': 'killed', '3': 'dumped'}


def parse_exit_records(text):
    """``journalctl -u UNIT MESSAGE_ID=<process exit> -o json`` -> [{ts, code, status}], oldest first: the fields
    systemd attaches (EXIT_CODE, EXIT_STATUS), else the message text of an older systemd."""
    out = []
    for ts, record in _journal_records(text):
        code, status = record.get('EXIT_CODE'), record.get('EXIT_STATUS')
        if not code:
            match = _EXIT_RE.search(str(record.get('MESSAGE') or ''))
            if not match:
                continue
            code, status = match.group('code'), match.group('status').split('/')[0]
        out.append({'ts': ts, 'code': one_line(code, 16), 'status': one_line(status, 16)})
    return out


def exit_of(props):
    """The last exit of a unit's main process from systemctl show (ExecMainCode/ExecMainStatus): known only
    until the next start (a running unit shows 0/0), None then."""
    code = _CLD.get(str((props or {}).get('ExecMainCode') or ''))
    if not code:
        return None
    status = str(props.get('ExecMainStatus') or '?')
    return {'ts': None, 'code': code, 'status': status}


def evaluate_units(host, failed, services, t, note=None):
    """host.units of one host.

    failed: systemctl --failed rows; services: [{service, unit, ActiveState, SubState, Result, NRestarts,
    started_in_window, exits_in_window, last_exit}] of the host's systemd services (exits_in_window: main
    process exits the unit's journal holds for the window, None when not read; last_exit: {ts, code, status}).
    crit: a service's unit failed or restarting (auto-restart); warn: another unit failed, or a service's unit
    restarted NRestarts >= restarts_warn times and last started (or exited) inside the window; ok otherwise.
    """
    by_unit = {s['unit']: s for s in services}
    statuses, parts, implicated = ['ok'], [], []
    for item in services:
        active, sub = str(item.get('ActiveState') or ''), str(item.get('SubState') or '')
        try:
            restarts = int(item.get('NRestarts') or 0)
        except (TypeError, ValueError):
            restarts = 0
        last = describe_exit(item.get('last_exit'))
        last = ', last exit %s' % last if last else ''
        if active == 'failed' or sub == 'auto-restart':
            statuses.append('crit')
            implicated.append(item['service'])
            parts.append('%s (%s) %s/%s after %d restart%s (result %s)%s' % (
                item['service'], item['unit'], active, sub, restarts, '' if restarts == 1 else 's',
                item.get('Result') or '?', last))
        elif restarts >= t['unit_restarts_warn'] and (item.get('started_in_window') or item.get('exits_in_window')):
            statuses.append('warn')
            implicated.append(item['service'])
            exits = item.get('exits_in_window')
            parts.append('%s (%s) restarted %d times (NRestarts), last inside the window%s%s' % (
                item['service'], item['unit'], restarts,
                '; %d unclean exit%s in the window' % (exits, '' if exits == 1 else 's') if exits else '', last))
    others = [f for f in failed if f['unit'] not in by_unit]
    if others:
        statuses.append('warn')
        parts.append('%d other failed unit%s: %s' % (len(others), '' if len(others) == 1 else 's',
                                                     ', '.join(f['unit'] for f in others[:5])))
    status = worst(statuses)
    if parts:
        text = '; '.join(parts)
    else:
        text = note or 'no failed unit; %d service unit%s active' % (len(services), '' if len(services) == 1 else 's')
    evidence = {'failed': failed, 'units': services, 'implicated': sorted(set(implicated)),
                'restarts_warn': t['unit_restarts_warn']}
    if note:
        evidence['note'] = note
    service = implicated[0] if len(set(implicated)) == 1 else None
    return finding('host.units', host, service, status, text, evidence)


def unit_exits(module, unit, window_s, timeout):
    """The unclean exits of a unit's main process in the window from its journal ([{ts, code, status}]; systemd logs
    a clean exit at debug level only), None when the journal cannot be read. A running unit's own last exit is only
    there (systemctl show forgets it at the next start)."""
    journalctl = module.get_bin_path('journalctl')
    if not journalctl or not os.path.isdir('/run/systemd/journal'):
        return None
    rc, out, dummy = _run_timeout(module, [journalctl, '-u', unit, 'MESSAGE_ID=%s' % PROCESS_EXIT_ID, '-q', '--no-pager',
                                           '-o', 'json', '--since', '@%d' % int(time.time() - window_s), '-n', '200'],
                                  timeout)
    return parse_exit_records(out) if rc == 0 else None


def units_finding(module, p, t):
    host = p['report_host']
    systemctl = module.get_bin_path('systemctl')
    if not systemctl:
        return finding('host.units', host, None, 'unknown', 'not checked: systemctl not found',
                       {'error': 'systemctl not found'})
    if not os.path.isdir('/run/systemd/system'):
        # systemd is not the init system (a container host without it): there are no units to fail
        return evaluate_units(host, [], [], t, note='not a systemd host (/run/systemd/system missing): no units to check')
    rc, out, err = _run_timeout(module, [systemctl, '--failed', '--plain', '--no-legend', '--no-pager'], p['timeout'])
    if rc != 0:
        error = one_line(err or out or 'exit %d' % rc, 160)
        return finding('host.units', host, None, 'unknown', 'not checked: systemctl --failed: %s' % error, {'error': error})
    services = []
    for svc in p['services'] or []:
        deploy = (svc or {}).get('deploy') or {} if isinstance(svc, dict) else {}
        if deploy.get('type') != 'systemd' or not deploy.get('unit'):
            continue
        props, error = _systemctl_show(module, deploy['unit'], (
            'ActiveState', 'SubState', 'Result', 'NRestarts', 'ExecMainStartTimestampMonotonic', 'ExecMainCode',
            'ExecMainStatus'), p['timeout'])
        item = {'service': svc.get('name'), 'unit': deploy['unit']}
        if error:
            item['error'] = error
        else:
            started = _monotonic_to_epoch(props.get('ExecMainStartTimestampMonotonic'))
            item.update(dict((k, props.get(k)) for k in ('ActiveState', 'SubState', 'Result', 'NRestarts')))
            item['started_in_window'] = bool(started) and time.time() - started <= t['window_seconds']
            item['last_exit'] = exit_of(props)
            if str(props.get('NRestarts') or '0') not in ('', '0'):
                exits = unit_exits(module, deploy['unit'], t['window_seconds'], p['timeout'])
                if exits is not None:
                    item['exits_in_window'] = len(exits)
                    item['last_exit'] = item['last_exit'] or (exits[-1] if exits else None)
        services.append(item)
    return evaluate_units(host, parse_failed_units(out), services, t)


# --- host.fds ---------------------------------------------------------------------------------------------

TCP_STATES = {'01': 'established', '02': 'syn_sent', '03': 'syn_recv', '04': 'fin_wait1', '05': 'fin_wait2',
              '06': 'time_wait', '07': 'close', '08': 'close_wait', '09': 'last_ack', '0A': 'listen', '0B': 'closing'}


def parse_proc_net_tcp(text):
    """/proc/<pid>/net/tcp(6) -> {socket inode: state name}."""
    out = {}
    for line in (text or '').splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 10 and parts[9].isdigit():
            out[parts[9]] = TCP_STATES.get(parts[3].upper(), parts[3])
    return out


# Max open files under this is a sandboxed process' own limit, not one it can exhaust (see evaluate_fds)
SANDBOX_FD_LIMIT = 64


def _fd_limit(pid, proc):
    try:
        with open(os.path.join(proc, pid, 'limits')) as handle:
            for line in handle:
                if line.startswith('Max open files'):
                    value = line[len('Max open files'):].split()[0]
                    return int(value) if value.isdigit() else None
    except (OSError, ValueError, IndexError):
        return None
    return None


def _read(path, limit=4096):
    with open(path, 'rb') as handle:
        return handle.read(limit).decode('utf-8', 'replace')


def scan_processes(proc=PROC_ROOT, max_processes=5000, budget_s=3.0):
    """Every process' fd count, fd limit and socket inodes: ([{pid, name, fds, fd_limit, sockets, netns, cgroup}],
    unreadable count, truncated)."""
    started, rows, unreadable, truncated = time.monotonic(), [], 0, False
    try:
        pids = sorted((d for d in os.listdir(proc) if d.isdigit()), key=int)
    except OSError:
        return [], 0, False
    for index, pid in enumerate(pids):
        if index >= max_processes or time.monotonic() - started > budget_s:
            truncated = True
            break
        base = os.path.join(proc, pid)
        try:
            fds = os.listdir(os.path.join(base, 'fd'))
        except OSError:
            unreadable += 1
            continue
        sockets = []
        for fd in fds:
            try:
                target = os.readlink(os.path.join(base, 'fd', fd))
            except OSError:
                continue
            if target.startswith('socket:['):
                sockets.append(target[8:-1])
        try:
            name = _read(os.path.join(base, 'comm'), 64).strip()
        except OSError:
            name = '?'
        try:
            netns = os.readlink(os.path.join(base, 'ns', 'net'))
        except OSError:
            netns = None
        try:
            cgroup = _read(os.path.join(base, 'cgroup'), 2048)
        except OSError:
            cgroup = ''
        rows.append({'pid': int(pid), 'name': one_line(name, 64), 'fds': len(fds), 'fd_limit': _fd_limit(pid, proc),
                     'sockets': sockets, 'netns': netns, 'cgroup': cgroup})
    return rows, unreadable, truncated


def tcp_by_netns(rows, proc=PROC_ROOT):
    """{netns: {inode: state}} read once per network namespace through one of its processes."""
    out = {}
    for row in rows:
        if row['netns'] in out or not row['sockets']:
            continue
        table = {}
        for name in ('tcp', 'tcp6'):
            try:
                table.update(parse_proc_net_tcp(_read(os.path.join(proc, str(row['pid']), 'net', name), 16 * 1024 * 1024)))
            except OSError:
                pass
        out[row['netns']] = table
    return out


def evaluate_fds(host, rows, tables, markers, t, unreadable=0, truncated=False):
    """host.fds: the top processes by open descriptors (with their TCP connections by state) and by TCP connections.

    markers: [(service, container ID or unit name)] to name a process' service from its cgroup. warn/crit: a
    process at fds_warn_pct/fds_crit_pct of its Max open files.
    """
    items = []
    for row in rows:
        table = tables.get(row['netns']) or {}
        tcp = {}
        for inode in row['sockets']:
            state = table.get(inode)
            if state:
                tcp[state] = tcp.get(state, 0) + 1
        service = next((svc for svc, marker in markers if marker and marker in row['cgroup']), None)
        items.append({'pid': row['pid'], 'process': row['name'], 'service': service, 'fds': row['fds'],
                      'fd_limit': row['fd_limit'], 'fd_pct': pct(row['fds'], row['fd_limit']),
                      'tcp': tcp, 'tcp_total': sum(tcp.values())})
    top_n = t['top']
    by_fds = sorted(items, key=lambda i: (-(i['fd_pct'] or 0), -i['fds'], i['pid']))[:top_n]
    by_tcp = [i for i in sorted(items, key=lambda i: (-i['tcp_total'], i['pid'])) if i['tcp_total']][:top_n]
    mine = [i for i in items if i['service'] and i not in by_fds][:top_n]
    # a limit this low is a sandbox's own (OpenSSH's pre-auth child sets RLIMIT_NOFILE to 1 after opening what it
    # needs): it opens nothing more by design, so it is evidence, never exhaustion
    statuses = [level(i['fd_pct'], t['fds_warn_pct'], t['fds_crit_pct']) for i in items
                if i['fd_pct'] is not None and (i['fd_limit'] or 0) >= SANDBOX_FD_LIMIT]
    status = worst(statuses or ['ok'])
    over = [i for i in by_fds if i['fd_pct'] is not None and i['fd_pct'] >= t['fds_warn_pct']
            and (i['fd_limit'] or 0) >= SANDBOX_FD_LIMIT]
    totals = {}
    for i in items:
        for state, count in i['tcp'].items():
            totals[state] = totals.get(state, 0) + count

    def name(i):
        return '%s pid %d%s' % (i['process'], i['pid'], ' (%s)' % i['service'] if i['service'] else '')
    if over:
        text = '; '.join('%s: %d of %s open files (%.0f%%)' % (name(i), i['fds'], i['fd_limit'], i['fd_pct'])
                         for i in over[:3])
    elif by_fds:
        text = 'most open files: %s %d of %s' % (name(by_fds[0]), by_fds[0]['fds'], by_fds[0]['fd_limit'] or 'unlimited')
    else:
        text = 'no process readable in /proc'
    if by_tcp:
        text += '; most TCP connections: %s %d (%s)' % (name(by_tcp[0]), by_tcp[0]['tcp_total'], ', '.join(
            '%s %d' % (k, v) for k, v in sorted(by_tcp[0]['tcp'].items(), key=lambda kv: -kv[1])[:3]))
    if unreadable:
        text += '; %d process%s not readable' % (unreadable, '' if unreadable == 1 else 'es')
    evidence = {'top_fds': by_fds, 'top_tcp': by_tcp, 'service_processes': mine, 'tcp_states': totals,
                'processes': len(items), 'unreadable': unreadable, 'truncated': truncated,
                'warn_pct': t['fds_warn_pct'], 'crit_pct': t['fds_crit_pct']}
    services = sorted({i['service'] for i in over if i['service']})
    return finding('host.fds', host, services[0] if len(services) == 1 else None, status, text, evidence)


def fds_finding(module, p, t):
    markers = []
    cgroups = p.get('_cgroups') or []
    for item in cgroups:
        markers.append((item['service'], item.get('container_id') or item.get('unit')))
    rows, unreadable, truncated = scan_processes()
    return evaluate_fds(p['report_host'], rows, tcp_by_netns(rows), markers, t, unreadable, truncated)


# --- the area ---------------------------------------------------------------------------------------------

THRESHOLD_SPEC = dict(
    fds_warn_pct=dict(type='float', default=80),
    fds_crit_pct=dict(type='float', default=95),
    unit_restarts_warn=dict(type='int', default=3),
    top=dict(type='int', default=5),
)

SPEC = dict(
    report_host=dict(type='str', required=True),
    services=dict(type='list', elements='dict', default=[]),
    checks=dict(type='list', elements='str', default=list(CHECKS), choices=list(CHECKS)),
    window=dict(type='str', default='15m'),
    timeout=dict(type='float', default=5),
    thresholds=dict(type='dict', default={}, options=THRESHOLD_SPEC),
    docker_host=dict(type='str'),
)


def run(module):
    p = module.params
    t = thresholds_of(module, THRESHOLD_SPEC, (('fds_warn_pct', 'fds_crit_pct'),))
    t['window_seconds'] = window_seconds(module)
    findings = []
    cgroups = None
    if 'oom' in p['checks']:
        cgroups = service_cgroups(module, p)
        lines, sources = read_kernel_log(module, t['window_seconds'], p['timeout'])
        findings.append(evaluate_oom(p['report_host'], cgroups, parse_kernel_oom(lines), sources, t['window_seconds']))
    if 'units' in p['checks']:
        findings.append(units_finding(module, p, t))
    if 'fds' in p['checks']:
        params = dict(p)
        params['_cgroups'] = cgroups if cgroups is not None else []
        findings.append(fds_finding(module, params, t))
    return dict(changed=False, findings=findings, evidence_files={})
