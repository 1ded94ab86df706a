#!/usr/bin/env python3
"""Benchmark of playbooks/investigate.yml -e area=all against the lab (`make bench`).

Reports the wall time of each run (and the median), the tasks executed per host
(ok + changed + failed, split into the incident play and the diagnostic play, with
skipped tasks counted apart), and - because wall time on a shared machine depends on
its load - the load average and the wall time of a one-task playbook on the same
inventory as a baseline for Ansible's own start-up cost.

    python tests/bench/bench.py [--runs 3] [--area all] [--json out.json]

Targets (issue 3): under 10 s wall time, at most 15 tasks per host.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, '.venv', 'bin')
PLAYBOOK = os.path.join(BIN, 'ansible-playbook') if os.path.exists(os.path.join(BIN, 'ansible-playbook')) else 'ansible-playbook'
BASELINE = """---
- name: Baseline - one task per host
  hosts: all
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""


def env():
    out = dict(os.environ)
    out['PATH'] = BIN + os.pathsep + out.get('PATH', '')
    out['ANSIBLE_CONFIG'] = os.path.join(ROOT, 'ansible.cfg')
    out['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.posix.json'
    out['ANSIBLE_NOCOLOR'] = '1'
    return out


def run(args):
    started = time.monotonic()
    proc = subprocess.run([PLAYBOOK] + args, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - started
    try:
        data = json.loads(proc.stdout[proc.stdout.index('{'):])
    except ValueError:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit('ansible-playbook output is not JSON (rc %d)' % proc.returncode)
    return proc.returncode, wall, data


def tasks_per_host(data):
    """{host: {play name: {'executed': n, 'skipped': n}}} from the json callback's output."""
    per = {}
    for play in data.get('plays', []):
        name = play['play']['name']
        for task in play.get('tasks', []):
            for host, res in task.get('hosts', {}).items():
                slot = per.setdefault(host, {}).setdefault(name, {'executed': 0, 'skipped': 0})
                if res.get('skipped') or (res.get('results') and all(r.get('skipped') for r in res['results'])):
                    slot['skipped'] += 1
                else:
                    slot['executed'] += 1
    return per


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--area', default='all')
    parser.add_argument('--inventory', default='inventory/lab')
    parser.add_argument('--json', dest='json_out')
    opts = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix='sre-bench-')
    baseline_path = os.path.join(tmp, 'baseline.yml')
    with open(baseline_path, 'w') as handle:
        handle.write(BASELINE)
    _rc, baseline, _data = run(['-i', opts.inventory, baseline_path])

    walls, last = [], None
    for n in range(opts.runs):
        incident_id = 'INC-BENCH-%d-%d' % (int(time.time()), n)
        rc, wall, data = run(['-i', opts.inventory, 'playbooks/investigate.yml', '-e', 'area=%s' % opts.area,
                              '-e', 'incident_id=%s' % incident_id, '-e', 'incident_dir=%s' % tmp])
        if rc != 0:
            raise SystemExit('investigate.yml failed (rc %d): %s' % (rc, json.dumps(data.get('stats'))))
        walls.append(wall)
        last = data
        with open(os.path.join(tmp, incident_id, 'findings.json')) as handle:
            findings = json.load(handle)
    per = tasks_per_host(last)
    stats = last.get('stats', {})
    load = os.getloadavg()
    report = {
        'area': opts.area, 'runs': opts.runs, 'wall_s': [round(w, 2) for w in walls],
        'wall_median_s': round(statistics.median(walls), 2), 'wall_min_s': round(min(walls), 2),
        'baseline_one_task_playbook_s': round(baseline, 2), 'loadavg_1m': round(load[0], 2), 'cpus': os.cpu_count(),
        'findings': len(findings), 'tasks_per_host': per, 'recap': stats,
        'max_tasks_per_host': max(sum(p['executed'] for p in plays.values()) for host, plays in per.items() if host != 'localhost'),
        'max_diagnostic_tasks_per_host': max(plays.get('Investigate', {}).get('executed', 0) for plays in per.values()),
    }
    print('investigate.yml -e area=%s against %s (%d runs, load %.2f on %d CPUs)' % (
        opts.area, opts.inventory, opts.runs, load[0], os.cpu_count()))
    print('  wall time: %s s (median %.2f s, min %.2f s); one-task playbook baseline %.2f s' % (
        ', '.join('%.2f' % w for w in walls), report['wall_median_s'], report['wall_min_s'], baseline))
    print('  findings recorded: %d' % len(findings))
    print('  tasks executed per host (skipped in brackets):')
    for host in sorted(per):
        plays = per[host]
        total = sum(p['executed'] for p in plays.values())
        detail = ', '.join('%s %d [%d]' % (name, p['executed'], p['skipped']) for name, p in plays.items())
        print('    %-12s %2d  (%s)' % (host, total, detail))
    print('  max tasks per host: %d (diagnostic play only: %d); targets: < 10 s, <= 15 tasks per host' % (
        report['max_tasks_per_host'], report['max_diagnostic_tasks_per_host']))
    if opts.json_out:
        with open(opts.json_out, 'w') as handle:
            json.dump(report, handle, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
