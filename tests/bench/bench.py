#!/usr/bin/env python
"""Speed of the collection against the lab, in one run (`make bench`, docs/lab.md "Benchmark").

Measures, each with the goal of the speed issue printed next to it (DESIGN.md "Speed"). Ansible's floor
is a one-task (ping) playbook on the same inventory, run in the same invocation: the goals are ratios to it.

- triage:      playbooks/triage.yml against the lab (3 hosts), the practice's shell commands
               (tests/bench/shell-baseline.sh) and the ping playbook, alternately (triage, shell, ping,
               triage, ...), on the same lab; triage / ping (goal <= 1.5x), and triage / shell as before.
- investigate: playbooks/investigate.yml -e area=all, alternately with the ping playbook; investigate / ping
               (goal <= 1.5x).
- fleet100:    triage of --hosts (100) aliases of the lab's hosts (tests/bench/fleet-inventory.sh, local
               connection) and the ping playbook on them: triage / ping (goal <= 1.5x) and the CPU seconds
               of every process triage started, per host (goal <= 0.8 CPU-s per host).
- remediate:   kill_query on the db_lock fault and a restart of the backend: triage, the plan and the approved
               apply + verify on the same incident, alternately; plan / triage (goal <= 1.5x), apply + verify /
               (triage + the action's own wait: for a restart, docker restart and /health/ready timed without the
               collection; for kill_query the 5 s grace period between cancel and terminate) (goal <= 1.0x), and the tasks the target host runs in the
               remediation play (goal <= 3).
- ssh-remediate: the remediate measure over SSH on the fleet lab (make fleet-up): kill_query on the fleet's
               db_lock fault (db-1), a restart of the backend's stopped systemd unit (web-1, backend_down) and of a
               stopped PostgreSQL unit (db-1); the action's own wait is systemctl start/restart and, for the
               backend, /health/ready, timed in the container without the collection.
- ssh:         the same over SSH on the fleet lab (make fleet-up) when it is up: triage of the fleet's
               hosts, then of --ssh-hosts (100) aliases of them, each with an SSH connection of its own
               (goal <= 90 s); skipped, with a line saying so, when the fleet lab of LAB_INSTANCE is not up.
               playbooks/prepare.yml runs first (not timed); every run starts with a fresh SSH control
               directory (connections are opened as by a first run) and its control masters are stopped
               after it.

Tasks per host (goal: 1, plus run-once tasks) are counted from the ansible.posix.json callback, which
every ansible-playbook run of the benchmark uses as its stdout callback (the on-call console is not
timed). Every triage and investigation opens a fresh incident (no incident_id) in a temporary directory
(-e incident_dir and SRE_INCIDENT_DIR), removed at the end. Wall time on a shared machine depends on its
load: the load average is printed before and after, and stored with every measure (--json).

    python tests/bench/bench.py [--runs N] [--runs-100 N] [--only triage,investigate,fleet100,ssh,remediate,ssh-remediate]
                                [--hosts 100] [--ssh-hosts N] [--fleet-size N] [--json out.json] [--keep]

--runs sets the runs of the triage/shell, investigate and SSH fleet measures (defaults 5, 3, 3); --runs-100
those of the --hosts measures (default 1); --ssh-hosts the SSH aliases (default --hosts). LAB_INSTANCE selects
the lab (ports +100*N) and the fleet lab; --fleet-size (default FLEET_SIZE, else every fleet host up) how
many of the fleet's hosts the SSH measures use.
No timed assertion anywhere: the goals are printed, never enforced.
"""
import argparse
import contextlib
import fcntl
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, 'tests', 'bench')
BIN = os.path.join(ROOT, '.venv', 'bin')
PLAYBOOK = os.path.join(BIN, 'ansible-playbook') if os.path.exists(os.path.join(BIN, 'ansible-playbook')) else 'ansible-playbook'
INVENTORY_CMD = os.path.join(BIN, 'ansible-inventory') if os.path.exists(os.path.join(BIN, 'ansible-inventory')) else 'ansible-inventory'
SHELL_BASELINE = os.path.join(HERE, 'shell-baseline.sh')
FLEET_INVENTORY = os.path.join(HERE, 'fleet-inventory.sh')
LAB_INVENTORY = 'inventory/lab'
FLEET_INVENTORY_DIR = 'inventory/fleet'
MEASURES = ('triage', 'investigate', 'fleet100', 'ssh', 'remediate', 'ssh-remediate')
# runs of each measure: --runs sets the first three, --runs-100 the 100-host ones
DEFAULT_RUNS = {'triage': 5, 'investigate': 3, 'ssh': 3, 'fleet100': 1, 'ssh100': 1, 'remediate': 3, 'ssh-remediate': 3}
# the goals: ratios to Ansible's floor (the ping playbook on the same inventory, in the same run)
GOAL_FLOOR_RATIO = 1.5
GOAL_CPU_PER_HOST = 0.8
GOAL_TASKS_PER_HOST = 1
# the goals of the one-probe-task issue, still printed
GOAL_SHELL_RATIO = 1.0
GOAL_SSH_HOSTS_S = 90.0
# the remediation issue's goals: plan <= 1.5x triage; apply + verify <= triage + the action's own wait
GOAL_PLAN_RATIO = 1.5
GOAL_APPLY_RATIO = 1.0
GOAL_REMEDIATION_TASKS = 3
GRACE_PERIOD_S = 5.0  # pg_terminate_grace_period's default
# (action, fault, target host, extra vars, own wait): the remediations `--only remediate` measures
# (--actions picks some); an action with no wait of its own (flush_keys, raise_maxmemory, clean_disk, apply_cert)
# compares with triage alone; rollback's own wait (a new container from the previous image, the old one stopped,
# health) is taken as a restart's
REMEDIATE_CASES = (
    ('kill_query', 'db_lock', 'app-db', ['-e', 'pg_terminate_min_age=1'], 'grace'),
    ('restart', None, 'app-backend', [], 'restart'),
    ('flush_keys', 'redis_full', 'app-redis', [], None),
    ('raise_maxmemory', 'redis_full_unmarked', 'app-redis', [], None),
    ('clean_disk', 'disk_full', 'app-backend', [], None),
    # the renewed pair the tls_renewed fault stages ({state}: the lab's state directory of LAB_INSTANCE)
    ('apply_cert', 'tls_renewed', 'app-backend', ['-e', 'tls_cert_src={state}/tls/renewed/fullchain.pem',
                                                  '-e', 'tls_cert_key_src={state}/tls/renewed/privkey.pem'], None),
    ('rollback', 'bad_deploy', 'app-backend', [], 'restart'),
)
DEFAULT_ACTIONS = ('kill_query', 'restart')
# the same over SSH on the fleet lab (--only ssh-remediate): (action, fault, target host, extra vars, own wait).
# A fault is a fleet lab fault (tests/lab/fleet/faults) or ('unit', host, unit): the unit stopped, and started
# again after the run when the action did not. Own wait ('unit', host, unit, ready): the unit restarted in its
# container, timed without the collection, then (ready) the backend's /health/ready.
FLEET_REMEDIATE_CASES = (
    ('kill_query', 'db_lock', 'db-1', ['-e', 'pg_terminate_min_age=1'], 'grace'),
    ('restart', 'backend_down', 'web-1', ['-e', 'service=backend'], ('unit', 'web-1', 'app-backend.service', True)),
    ('restart', ('unit', 'db-1', 'postgresql@15-main.service'), 'db-1', ['-e', 'service=db'],
     ('unit', 'db-1', 'postgresql@15-main.service', False)),
)
RUN_TIMEOUT = 3600

PING_PLAYBOOK = """---
- name: Calibration - one task per host
  hosts: all
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""

# Resolves, through Ansible itself, what the shell baseline needs from the lab inventory (ports, container
# names and the Redis password by its password_var) for the LAB_INSTANCE of the environment.
SETTINGS_PLAYBOOK = """---
- name: Bench - read the lab's settings
  hosts: all
  gather_facts: false
  tasks:
    - name: Services, TLS endpoints and the Redis passwords
      ansible.builtin.debug:
        msg:
          services: "{{ incident_services | default([]) }}"
          tls: "{{ incident_tls_endpoints | default([]) }}"
          passwords: "{{ dict(__vars | zip(query('ansible.builtin.vars', *__vars))) }}"
      vars:
        __vars: "{{ incident_services | default([]) | selectattr('redis', 'defined') | map(attribute='redis')
                    | selectattr('password_var', 'defined') | map(attribute='password_var') | list }}"
"""


# ---------------------------------------------------------------------------------------------------------
# pure logic (tests/unit/test_bench.py)

def median(values):
    return statistics.median(values) if values else None


def ratio_of_medians(numerator, denominator):
    """median(numerator) / median(denominator); None when either is empty or the denominator's median is 0."""
    top, bottom = median(numerator), median(denominator)
    if top is None or not bottom:
        return None
    return top / bottom


def parse_json_output(stdout):
    """The document the ansible.posix.json callback printed (anything before its first '{' line is skipped)."""
    if stdout.startswith('{'):
        start = 0
    else:
        start = stdout.find('\n{')
        if start < 0:
            raise ValueError('no JSON document in the output')
        start += 1
    return json.loads(stdout[start:])


def _skipped(res):
    if res.get('skipped'):
        return True
    results = res.get('results')
    return bool(results) and all(r.get('skipped') for r in results)


def task_counts(data, controller=('localhost',)):
    """Tasks per host from the json callback's output, run-once tasks apart.

    A task that reports a result for one host only, in a run on several hosts, is a run-once task
    (run_once, or a task delegated once for all hosts) when that host is the first host: the host with
    the most such tasks. A play whose every task is run-once reports the first host only, so the run's
    hosts count, not the play's. Tasks of the controller (localhost plays) count as run-once too.
    Returns {'hosts': {host: {'executed', 'skipped'}}, 'first': host, 'once_executed', 'once_skipped',
    'per_host_max' (most tasks executed by a host, run-once tasks excluded), 'first_total' (first host,
    run-once included), 'others_max' (most executed by another host), 'skipped_max'}.
    """
    singles = {}
    plays = []
    for play in data.get('plays', []):
        tasks = play.get('tasks', [])
        hosts = set()
        for task in tasks:
            hosts.update(task.get('hosts', {}))
        plays.append((tasks, hosts))
    managed = sorted(set(h for _tasks, hosts in plays for h in hosts if h not in controller))
    run_hosts = set(managed)
    for tasks, hosts in plays:
        if len(run_hosts) > 1:
            for task in tasks:
                names = list(task.get('hosts', {}))
                if len(names) == 1 and names[0] in run_hosts:
                    singles[names[0]] = singles.get(names[0], 0) + 1
    first = max(managed, key=lambda h: (singles.get(h, 0), -managed.index(h))) if managed else None
    per = {h: {'executed': 0, 'skipped': 0} for h in managed}
    once = {'executed': 0, 'skipped': 0}
    for tasks, hosts in plays:
        for task in tasks:
            results = task.get('hosts', {})
            for host, res in results.items():
                kind = 'skipped' if _skipped(res) else 'executed'
                if host in controller or (len(results) == 1 and len(run_hosts) > 1 and host == first):
                    once[kind] += 1
                else:
                    per[host][kind] += 1
    others = [per[h]['executed'] for h in managed if h != first]
    return {
        'hosts': per, 'first': first, 'once_executed': once['executed'], 'once_skipped': once['skipped'],
        'per_host_max': max([p['executed'] for p in per.values()] or [0]),
        'first_total': (per[first]['executed'] + once['executed']) if first else once['executed'],
        'others_max': max(others) if others else None,
        'skipped_max': max([p['skipped'] for p in per.values()] or [0]),
    }


def play_tasks(data, host, play_index=1):
    """Tasks a host executed in one play (remediate.yml's second play: the remediation on its target hosts)."""
    plays = data.get('plays', [])
    if play_index >= len(plays):
        return None
    return sum(1 for task in plays[play_index].get('tasks', [])
               if host in task.get('hosts', {}) and not _skipped(task['hosts'][host]))


def tasks_cell(counts):
    """The table's tasks/host cell: most tasks a host executes, then the run-once ones."""
    if not counts:
        return '-'
    return '%d +%d once' % (counts['per_host_max'], counts['once_executed'])


def recap_problems(data):
    """{host: 'failures=n unreachable=n'} of the hosts the PLAY RECAP counts as failed or unreachable."""
    out = {}
    for host, stats in (data or {}).get('stats', {}).items():
        if stats.get('failures') or stats.get('unreachable'):
            out[host] = 'failures=%d unreachable=%d' % (stats.get('failures', 0), stats.get('unreachable', 0))
    return out


def unreachable_messages(data, limit=3):
    """The first distinct messages of unreachable results (why SSH could not reach a host)."""
    out = []
    for play in (data or {}).get('plays', []):
        for task in play.get('tasks', []):
            for res in task.get('hosts', {}).values():
                msg = str(res.get('msg', '')).strip().splitlines()
                if res.get('unreachable') and msg and msg[-1] not in out:
                    out.append(msg[-1][:200])
                if len(out) >= limit:
                    return out
    return out


def problem_note(rc, problems):
    """One line about a run that did not end with rc 0: how many hosts were unreachable or failed, a few names."""
    note = 'rc %d' % rc
    if problems:
        unreachable = sum(1 for v in problems.values() if 'unreachable=0' not in v)
        note += ': %d host(s) unreachable, %d failed (%s%s)' % (
            unreachable, len(problems) - unreachable, ', '.join(sorted(problems)[:5]), ', ...' if len(problems) > 5 else '')
    return note


def new_entries(before, after):
    """Names in `after` and not in `before`, sorted."""
    return sorted(set(after) - set(before))


def shell_invocation(settings):
    """(args, env) of shell-baseline.sh for the lab whose settings read_lab_settings() returned."""
    services = {}
    for host_services in settings['services'].values():
        for svc in host_services:
            services.setdefault(svc.get('kind'), svc)
    backend, pg, redis = services['backend'], services['postgres'], services['redis']
    url = backend['health'][0]['url']
    base = url[:url.index('/', url.index('//') + 2)] if '/' in url[url.index('//') + 2:] else url
    args = [base, str(pg['postgres']['port']), str(redis['redis']['port'])]
    if settings.get('tls'):
        args.append('%s:%s' % (settings['tls'][0]['host'], settings['tls'][0]['port']))
    env = {'BACKEND_CONTAINER': backend['deploy']['container'], 'DB_CONTAINER': pg['deploy']['container'],
           'REDIS_CONTAINER': redis['deploy']['container']}
    password_var = redis['redis'].get('password_var')
    if password_var and settings['passwords'].get(password_var) is not None:
        env['REDISCLI_AUTH'] = str(settings['passwords'][password_var])
    return args, env


def alias_inventory(sources, count, own_control_path=False):
    """An inventory (a dict, written as YAML/JSON) of `count` aliases of the fleet hosts `sources`.

    sources: [(name, group, hostvars)] in order; alias i (1..count) is a copy of source (i-1) % len(sources),
    named <name>-<iii>, in the group of its source under `fleet`. With own_control_path every alias gets an
    SSH control socket of its own (as separate hosts would) instead of sharing the one of the host it copies.
    """
    groups = {}
    for i in range(1, count + 1):
        name, group, hostvars = sources[(i - 1) % len(sources)]
        alias = '%s-%03d' % (name, i)
        hv = dict(hostvars)
        if own_control_path:
            hv['ansible_control_path'] = '%(directory)s/' + alias
        groups.setdefault(group, {'hosts': {}})['hosts'][alias] = hv
    return {'all': {'children': {'fleet': {'children': groups}}}}


def host_goal(hosts, seconds):
    """(goal, goal text) of a measure on `hosts` hosts: the goals are for 100 hosts, no verdict on others."""
    if hosts == 100:
        return seconds, '<= %.0f s' % seconds
    return None, '(goal for 100 hosts: <= %.0f s)' % seconds


def per_host(values, hosts):
    """median(values) / hosts (CPU seconds per host); None without values or hosts."""
    med = median(values)
    if med is None or not hosts:
        return None
    return med / hosts


def fmt_s(value):
    return '-' if value is None else '%.2f s' % value


def fmt_x(value):
    return '-' if value is None else '%.2fx' % value


def verdict(value, goal):
    if value is None or goal is None:
        return ''
    return 'ok' if value <= goal else 'MISS'


def table(rows):
    """Rows of strings, first the header: columns padded to their widest cell."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append('  '.join(str(c).ljust(w) if i == 0 else str(c).rjust(w) if i < len(row) - 1 else str(c)
                               for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        if n == 0:
            lines.append('  '.join('-' * w for w in widths))
    return '\n'.join(lines)


# ---------------------------------------------------------------------------------------------------------
# running things

def cpu_children():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def close_masters(control_dir):
    """Stop the SSH control masters (ControlPersist) whose sockets are in control_dir (after a run, not timed)."""
    for name in sorted(os.listdir(control_dir)):
        subprocess.run(['ssh', '-O', 'exit', '-o', 'ControlPath=%s' % os.path.join(control_dir, name), 'bench'],
                       capture_output=True, timeout=30, check=False)


def loadavg():
    return [round(x, 2) for x in os.getloadavg()]


class Bench(object):
    def __init__(self, opts):
        self.opts = opts
        self.instance = int(os.environ.get('LAB_INSTANCE', '0') or 0)
        self.tmp = tempfile.mkdtemp(prefix='sre-bench-')
        self.incidents = os.path.join(self.tmp, 'incidents')
        os.makedirs(self.incidents)
        self.ping = os.path.join(self.tmp, 'ping.yml')
        with open(self.ping, 'w') as handle:
            handle.write(PING_PLAYBOOK)
        self.measures = {}
        self.ratios = []
        self.per_host = []
        self.skipped = []

    # -- processes
    def env(self, extra=None):
        out = dict(os.environ)
        out['PATH'] = BIN + os.pathsep + out.get('PATH', '')
        out['ANSIBLE_CONFIG'] = os.path.join(ROOT, 'ansible.cfg')
        out['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.posix.json'
        out['ANSIBLE_NOCOLOR'] = '1'
        out['ANSIBLE_LOCALHOST_WARNING'] = 'false'
        out['ANSIBLE_INVENTORY_UNPARSED_WARNING'] = 'false'
        out['LAB_INSTANCE'] = str(self.instance)
        out['SRE_INCIDENT_DIR'] = self.incidents
        out.update(extra or {})
        return out

    def timed(self, cmd, env):
        cpu0, started = cpu_children(), time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
        return proc, time.monotonic() - started, cpu_children() - cpu0

    def playbook(self, inventories, playbook, args=(), env=None, ssh=False):
        control = None
        if ssh:
            # a fresh SSH control directory: every run opens its connections as a first run does
            control = tempfile.mkdtemp(prefix='cp-', dir=self.tmp)
            env = dict(env or {}, ANSIBLE_SSH_CONTROL_PATH_DIR=control)
        cmd = [PLAYBOOK]
        for inv in inventories:
            cmd += ['-i', inv]
        cmd += [playbook, '-e', 'incident_dir=%s' % self.incidents] + list(args)
        before = os.listdir(self.incidents)
        proc, wall, cpu = self.timed(cmd, self.env(env))
        if control:
            close_masters(control)
        try:
            data = parse_json_output(proc.stdout)
        except ValueError:
            sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
            raise SystemExit('%s: ansible-playbook output is not JSON (rc %d)' % (playbook, proc.returncode))
        return {'rc': proc.returncode, 'wall': wall, 'cpu': cpu, 'data': data,
                'incidents': new_entries(before, os.listdir(self.incidents)), 'stderr': proc.stderr}

    # -- measures
    def measure(self, key, label, goal=None, goal_text=''):
        return self.measures.setdefault(key, {'label': label, 'walls': [], 'cpus': [], 'rcs': [], 'load': [],
                                              'tasks': None, 'goal': goal, 'goal_text': goal_text, 'notes': []})

    def record(self, key, run, label=None, counts=True):
        m = self.measures[key]
        m['walls'].append(run['wall'])
        m['cpus'].append(run['cpu'])
        m['rcs'].append(run['rc'])
        m['load'].append(loadavg()[0])
        if counts and 'data' in run:
            m['tasks'] = task_counts(run['data'])
        problems = recap_problems(run.get('data'))
        extra = ''
        if run.get('incidents'):
            extra = '  ' + ', '.join(run['incidents'])
        print('  %-28s run %d: %7.2f s  cpu %6.2f s  rc %d%s' % (
            label or m['label'], len(m['walls']), run['wall'], run['cpu'], run['rc'], extra), flush=True)
        if run['rc'] != 0:
            note = problem_note(run['rc'], problems)
            m['notes'].append(note)
            print('    WARNING %s' % note, flush=True)
            for msg in unreachable_messages(run.get('data')):
                m['notes'].append('unreachable: ' + msg)
                print('    unreachable: %s' % msg, flush=True)
            if not problems and run.get('stderr'):
                print('    ' + run['stderr'].strip().replace('\n', '\n    ')[-1500:], flush=True)

    def expect_incident(self, key, run):
        if len(run['incidents']) != 1:
            note = 'expected one new incident, got %s' % (run['incidents'] or 'none')
            self.measures[key]['notes'].append(note)
            print('    WARNING %s' % note, flush=True)

    def calibrate(self, key, label, inventories, runs, args=(), env=None, ssh=False):
        self.measure(key, label)
        for _n in range(runs):
            self.record(key, self.playbook(inventories, self.ping, args, env=env, ssh=ssh), counts=False)

    # -- the lab
    def lab_url_ready(self, base):
        try:
            with urllib.request.urlopen(base + '/health/ready', timeout=5) as resp:
                return resp.status == 200
        except Exception:
            return False

    def read_lab_settings(self):
        path = os.path.join(self.tmp, 'settings.yml')
        with open(path, 'w') as handle:
            handle.write(SETTINGS_PLAYBOOK)
        run = self.playbook([LAB_INVENTORY], path)
        if run['rc'] != 0:
            raise SystemExit('cannot read the lab settings from %s (rc %d)' % (LAB_INVENTORY, run['rc']))
        out = {'services': {}, 'tls': [], 'passwords': {}}
        for host, res in run['data']['plays'][0]['tasks'][0]['hosts'].items():
            msg = res['msg']
            out['services'][host] = msg['services']
            out['tls'] = out['tls'] or msg['tls']
            out['passwords'].update(msg['passwords'])
        return out

    def shell(self, args, env):
        proc, wall, cpu = self.timed(['bash', SHELL_BASELINE] + args, dict(os.environ, **env))
        return {'rc': proc.returncode, 'wall': wall, 'cpu': cpu, 'stderr': proc.stderr}

    # -- the measures of the issue
    def run_triage(self, runs):
        print('\n== triage.yml vs the practice\'s shell commands (%s) and the ping playbook, alternately, %d runs each' % (
            os.path.relpath(SHELL_BASELINE, ROOT), runs), flush=True)
        settings = self.read_lab_settings()
        args, env = shell_invocation(settings)
        if not self.lab_url_ready(args[0]):
            print('  WARNING the lab is not ready (%s/health/ready): is a fault injected?' % args[0])
        print('  shell-baseline.sh %s  (containers %s, %s, %s)' % (
            ' '.join(args), env['BACKEND_CONTAINER'], env['DB_CONTAINER'], env['REDIS_CONTAINER']), flush=True)
        self.measure('triage', 'triage.yml (lab, 3 hosts)', GOAL_FLOOR_RATIO, 'triage/ping <= %.1fx' % GOAL_FLOOR_RATIO)
        self.measure('shell', 'shell-baseline.sh')
        self.measure('ping', 'ping playbook (lab, 3 hosts)')
        for _n in range(runs):
            run = self.playbook([LAB_INVENTORY], 'playbooks/triage.yml')
            self.record('triage', run)
            self.expect_incident('triage', run)
            self.record('shell', self.shell(args, env), counts=False)
            self.record('ping', self.playbook([LAB_INVENTORY], self.ping), counts=False)
        ratio = ratio_of_medians(self.measures['triage']['walls'], self.measures['ping']['walls'])
        self.measures['triage']['goal_value'] = ratio
        self.ratios.append(('triage / ping (lab)', ratio, GOAL_FLOOR_RATIO))
        self.ratios.append(('triage / shell baseline', ratio_of_medians(
            self.measures['triage']['walls'], self.measures['shell']['walls']), GOAL_SHELL_RATIO))

    def run_investigate(self, runs):
        print('\n== investigate.yml -e area=all and the ping playbook, alternately, %d runs each' % runs, flush=True)
        self.measure('investigate', 'investigate.yml area=all', GOAL_FLOOR_RATIO,
                     'investigate/ping <= %.1fx' % GOAL_FLOOR_RATIO)
        self.measure('ping', 'ping playbook (lab, 3 hosts)')
        for _n in range(runs):
            run = self.playbook([LAB_INVENTORY], 'playbooks/investigate.yml', ['-e', 'area=all'])
            self.record('investigate', run)
            self.expect_incident('investigate', run)
            self.record('ping', self.playbook([LAB_INVENTORY], self.ping), counts=False)
        ratio = ratio_of_medians(self.measures['investigate']['walls'], self.measures['ping']['walls'])
        self.measures['investigate']['goal_value'] = ratio
        self.ratios.append(('investigate all / ping (lab)', ratio, GOAL_FLOOR_RATIO))

    def lab_fault(self, name, state):
        """Inject or heal a lab fault (not timed)."""
        cmd = [PLAYBOOK, '-i', LAB_INVENTORY, 'tests/lab/playbooks/fault.yml', '-e', 'lab_fault=%s' % name,
               '-e', 'lab_fault_state=%s' % state, '-e', 'lab_fault_traffic=false']
        env = self.env()
        env.pop('ANSIBLE_STDOUT_CALLBACK')
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            raise SystemExit('fault %s %s failed:\n%s' % (name, state, proc.stdout[-2000:]))

    def own_wait_restart(self, base, container):
        """The restart's own wait, without the collection: docker restart, then /health/ready answers 200."""
        started = time.monotonic()
        subprocess.run(['docker', 'restart', '-t', '10', container], capture_output=True, timeout=120, check=False)
        while time.monotonic() - started < 120 and not self.lab_url_ready(base):
            time.sleep(0.2)
        return time.monotonic() - started

    def run_remediate(self, runs):
        """kill_query (the db_lock fault) and restart (the backend): triage, plan and apply + verify on one
        incident, alternately; plan / triage and apply+verify / (triage + the action's own wait)."""
        print('\n== remediation: triage, plan, apply + verify (%s), ' % ', '.join(self.opts.actions) +
              '%d runs each' % runs, flush=True)
        settings = self.read_lab_settings()
        base = shell_invocation(settings)[0][0]
        backend = [s for svcs in settings['services'].values() for s in svcs if s.get('kind') == 'backend'][0]
        container = backend['deploy']['container']
        approval = ['-e', 'apply=true', '-e', 'approved_by=bench-approver', '-e', 'approval_reason=bench']
        for action, fault, target, extra, wait_of in REMEDIATE_CASES:
            if action not in self.opts.actions:
                continue
            keys = dict((k, '%s_%s' % (action, k)) for k in ('triage', 'plan', 'apply', 'wait'))
            self.measure(keys['triage'], 'triage.yml (%s fault)' % (fault or 'no'))
            self.measure(keys['plan'], '%s plan' % action)
            self.measure(keys['apply'], '%s apply + verify' % action)
            self.measure(keys['wait'], '%s own wait' % action)
            tasks = []
            for _n in range(runs):
                if fault:
                    self.lab_fault(fault, 'present')
                try:
                    run = self.playbook([LAB_INVENTORY], 'playbooks/triage.yml')
                    self.record(keys['triage'], run)
                    incident = ['-e', 'incident_id=%s' % run['incidents'][0]] if run['incidents'] else []
                    state = os.path.join(ROOT, 'tests', 'lab', 'build', 'state%s' % (self.instance or ''))
                    args = ['-e', 'remediation_action=%s' % action] + incident + [x.format(state=state) for x in extra]
                    self.record(keys['plan'], self.playbook([LAB_INVENTORY], 'playbooks/remediate.yml', args),
                                counts=False)
                    applied = self.playbook([LAB_INVENTORY], 'playbooks/remediate.yml', args + approval)
                    self.record(keys['apply'], applied, counts=False)
                    tasks.append(play_tasks(applied['data'], target))
                finally:
                    if fault:
                        self.lab_fault(fault, 'absent')
                # kill_query's own wait: the grace period between cancel and terminate (5 s by default), which a
                # holder in an open transaction uses up (a cancelled statement leaves its transaction open)
                wait = (self.own_wait_restart(base, container) if wait_of == 'restart'
                        else GRACE_PERIOD_S if wait_of == 'grace' else 0.0)
                self.record(keys['wait'], {'rc': 0, 'wall': wait, 'cpu': 0.0}, counts=False)
            self.remediation_ratios(action, keys, tasks, target)

    def run_ssh_remediate(self, runs):
        """The remediate measure over SSH on the fleet lab: triage, plan and apply + verify on one incident."""
        print('\n== remediation over SSH on the fleet lab (instance %d), %d runs each' % (self.instance, runs), flush=True)
        found, fleet = self.fleet_hosts()
        if not found:
            line = 'SKIPPED ssh-remediate: the fleet lab is not up (%s); start it with LAB_INSTANCE=%d make fleet-up' % (
                fleet, self.instance)
            print(line, flush=True)
            self.skipped.append(line)
            return
        inventories, state = found
        env = {'FLEET_STATE_DIR': state}
        prep = self.playbook(inventories, 'playbooks/prepare.yml', env=env, ssh=True)
        print('  prepare.yml (client libraries, not timed): rc %d, %.1f s' % (prep['rc'], prep['wall']), flush=True)
        approval = ['-e', 'apply=true', '-e', 'approved_by=bench-approver', '-e', 'approval_reason=bench']
        with flock('/tmp/sre-incident-fleet-%d.lock' % self.instance):
            for action, fault, target, extra, wait_of in FLEET_REMEDIATE_CASES:
                name = '%s %s' % (action, fault[2] if isinstance(fault, tuple) else fault)
                keys = dict((k, 'ssh_%s_%s' % (name.replace(' ', '_'), k)) for k in ('triage', 'plan', 'apply', 'wait'))
                self.measure(keys['triage'], 'triage.yml (ssh, %s)' % name)
                self.measure(keys['plan'], '%s plan (ssh)' % name)
                self.measure(keys['apply'], '%s apply + verify (ssh)' % name)
                self.measure(keys['wait'], '%s own wait (ssh)' % name)
                tasks = []
                for _n in range(runs):
                    self.fleet_fault(inventories, env, fault, 'present')
                    try:
                        run = self.playbook(inventories, 'playbooks/triage.yml', env=env, ssh=True)
                        self.record(keys['triage'], run)
                        incident = ['-e', 'incident_id=%s' % run['incidents'][0]] if run['incidents'] else []
                        args = ['-e', 'remediation_action=%s' % action] + incident + list(extra)
                        self.record(keys['plan'], self.playbook(inventories, 'playbooks/remediate.yml', args, env=env,
                                                                ssh=True), counts=False)
                        applied = self.playbook(inventories, 'playbooks/remediate.yml', args + approval, env=env, ssh=True)
                        self.record(keys['apply'], applied, counts=False)
                        tasks.append(play_tasks(applied['data'], target))
                    finally:
                        self.fleet_fault(inventories, env, fault, 'absent')
                    wait = (self.own_wait_unit(wait_of) if isinstance(wait_of, tuple)
                            else GRACE_PERIOD_S if wait_of == 'grace' else 0.0)
                    self.record(keys['wait'], {'rc': 0, 'wall': wait, 'cpu': 0.0}, counts=False)
                self.remediation_ratios(name + ' (ssh)', keys, tasks, target)

    def fleet_fault(self, inventories, env, fault, state):
        """Inject or heal a fleet lab fault, or stop/start a unit in its container (not timed)."""
        if isinstance(fault, tuple):
            dummy, host, unit = fault
            verb = 'stop' if state == 'present' else 'start'
            subprocess.run(['docker', 'exec', 'fleet%d-%s' % (self.instance, host), 'systemctl', verb, unit],
                           capture_output=True, timeout=120, check=False)
            return
        cmd = [PLAYBOOK]
        for inv in inventories:
            cmd += ['-i', inv]
        cmd += ['tests/lab/fleet/playbooks/fault.yml', '-e', 'lab_fault=%s' % fault, '-e', 'lab_fault_state=%s' % state]
        run_env = self.env(env)
        run_env.pop('ANSIBLE_STDOUT_CALLBACK')
        proc = subprocess.run(cmd, cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            raise SystemExit('fleet fault %s %s failed:\n%s' % (fault, state, proc.stdout[-2000:]))

    def own_wait_unit(self, wait_of):
        """A unit's own restart in its fleet container, without the collection; for the backend until ready."""
        dummy, host, unit, ready = wait_of
        container = 'fleet%d-%s' % (self.instance, host)
        started = time.monotonic()
        subprocess.run(['docker', 'exec', container, 'systemctl', 'restart', unit], capture_output=True, timeout=120,
                       check=False)
        if ready:
            # the backend of web-k listens on 25000 + 100*N + k (inventory/fleet/group_vars/all/fleet.yml)
            port = 25000 + 100 * self.instance + int(host.rsplit('-', 1)[1])
            base = 'http://127.0.0.1:%d' % port
            while port and time.monotonic() - started < 120 and not self.lab_url_ready(base):
                time.sleep(0.2)
        return time.monotonic() - started

    def remediation_ratios(self, name, keys, tasks, target):
        triage = median(self.measures[keys['triage']]['walls'])
        wait = median(self.measures[keys['wait']]['walls'])
        self.ratios.append(('%s plan / triage' % name, ratio_of_medians(
            self.measures[keys['plan']]['walls'], self.measures[keys['triage']]['walls']), GOAL_PLAN_RATIO))
        apply_med = median(self.measures[keys['apply']]['walls'])
        self.ratios.append(('%s apply+verify / (triage + wait %.1f s)' % (name, wait),
                            apply_med / (triage + wait) if triage else None, GOAL_APPLY_RATIO))
        self.per_host.append(('%s tasks on %s (target host)' % (name, target),
                              max([t for t in tasks if t is not None] or [0]), GOAL_REMEDIATION_TASKS))

    def run_fleet100(self, runs, hosts):
        print('\n== triage of %d aliases of the lab\'s hosts (%s, local connection) and the ping playbook, %d run(s) each' % (
            hosts, os.path.relpath(FLEET_INVENTORY, ROOT), runs), flush=True)
        out = os.path.join(self.tmp, 'fleet%d' % hosts)
        proc = subprocess.run(['bash', FLEET_INVENTORY, str(hosts), out], cwd=ROOT, env=self.env(),
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit('fleet-inventory.sh failed: %s' % proc.stderr)
        key, ping = 'fleet%d' % hosts, 'ping%d' % hosts
        self.measure(ping, 'ping playbook (%d hosts)' % hosts)
        self.measure(key, 'triage.yml (%d hosts, local)' % hosts, GOAL_FLOOR_RATIO,
                     'triage/ping <= %.1fx' % GOAL_FLOOR_RATIO)
        for _n in range(runs):
            self.record(ping, self.playbook([out], self.ping), counts=False)
            run = self.playbook([out], 'playbooks/triage.yml')
            self.record(key, run)
            self.expect_incident(key, run)
        ratio = ratio_of_medians(self.measures[key]['walls'], self.measures[ping]['walls'])
        self.measures[key]['goal_value'] = ratio
        self.ratios.append(('triage %d / ping %d (local)' % (hosts, hosts), ratio, GOAL_FLOOR_RATIO))
        self.per_host.append(('triage %d hosts (local), CPU-s per host' % hosts,
                              per_host(self.measures[key]['cpus'], hosts), GOAL_CPU_PER_HOST))
        self.per_host.append(('ping %d hosts (local), CPU-s per host' % hosts,
                              per_host(self.measures[ping]['cpus'], hosts), None))

    def fleet_hosts(self):
        """(inventories, [(name, group, hostvars)] of the fleet hosts whose container runs) or (None, reason)."""
        state = os.path.join(ROOT, 'tests', 'lab', 'build', 'fleet%d' % self.instance)
        if not os.path.exists(os.path.join(state, 'id_ed25519')):
            return None, 'no fleet lab state in %s' % os.path.relpath(state, ROOT)
        proc = subprocess.run(['docker', 'ps', '--format', '{{.Names}}', '--filter', 'name=^fleet%d-' % self.instance],
                              capture_output=True, text=True, check=False)
        running = set(proc.stdout.split())
        inventories = [FLEET_INVENTORY_DIR]
        if os.path.exists(os.path.join(state, 'scale.yml')):
            inventories.append(os.path.relpath(os.path.join(state, 'scale.yml'), ROOT))
        cmd = [INVENTORY_CMD, '--list', '--export']
        for inv in inventories:
            cmd += ['-i', inv]
        proc = subprocess.run(cmd, cwd=ROOT, env=self.env(), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            return None, 'ansible-inventory failed: %s' % proc.stderr.strip()[-300:]
        inv = json.loads(proc.stdout)
        hosts = []
        for group in ('postgres', 'redis', 'web'):
            for name in sorted(inv.get(group, {}).get('hosts', []), key=lambda h: (len(h), h)):
                if 'fleet%d-%s' % (self.instance, name) in running:
                    hosts.append((name, group, inv['_meta']['hostvars'].get(name, {})))
        if not hosts:
            return None, 'no fleet%d-* container runs' % self.instance
        return (inventories, state), hosts

    def run_ssh(self, runs, runs_100, hosts, fleet_size):
        print('\n== the same over SSH on the fleet lab (instance %d)' % self.instance, flush=True)
        found, fleet = self.fleet_hosts()
        if found is None:
            line = 'SKIPPED ssh: the fleet lab is not up (%s); start it with LAB_INSTANCE=%d make fleet-up' % (
                fleet, self.instance)
            print('  ' + line)
            self.skipped.append(line)
            return
        if fleet_size and fleet_size > len(fleet):
            line = 'SKIPPED ssh: --fleet-size %d but the fleet lab has %d hosts up (FLEET_SIZE=%d make fleet-up)' % (
                fleet_size, len(fleet), fleet_size)
            print('  ' + line)
            self.skipped.append(line)
            return
        # in the order db-1, cache-1, web-1, web-2 ...: the first --fleet-size of them
        fleet = fleet[:fleet_size] if fleet_size else fleet
        # the fleet tests' lock: no fault is injected into the fleet lab while the bench runs
        with flock('/tmp/sre-incident-fleet-%d.lock' % self.instance):
            self.run_ssh_measures(runs, runs_100, hosts, found, fleet)

    def run_ssh_measures(self, runs, runs_100, hosts, found, fleet):
        inventories, state = found
        names = [h[0] for h in fleet]
        env = {'FLEET_STATE_DIR': state}
        print('  fleet hosts: %s' % ', '.join(names), flush=True)
        prep = self.playbook(inventories, 'playbooks/prepare.yml', ['--limit', ','.join(names)], env=env, ssh=True)
        print('  prepare.yml (client libraries, not timed): rc %d, %.1f s' % (prep['rc'], prep['wall']), flush=True)
        n = len(fleet)
        limit = ['--limit', ','.join(names)]
        self.calibrate('ssh_ping', 'ping playbook (ssh, %d hosts)' % n, inventories, runs, args=limit, env=env, ssh=True)
        self.measure('ssh', 'triage.yml (ssh, %d hosts)' % n)
        for _n in range(runs):
            run = self.playbook(inventories, 'playbooks/triage.yml', limit, env=env, ssh=True)
            self.record('ssh', run)
            self.expect_incident('ssh', run)
        # aliases: `hosts` SSH hosts, each an alias of a fleet host with a control socket of its own
        out = os.path.join(self.tmp, 'ssh%d' % hosts)
        os.makedirs(out)
        os.symlink(os.path.join(ROOT, FLEET_INVENTORY_DIR, 'group_vars'), os.path.join(out, 'group_vars'))
        with open(os.path.join(out, 'hosts.yml'), 'w') as handle:
            json.dump(alias_inventory(fleet, hosts, own_control_path=True), handle, indent=1)
        key = 'ssh%d' % hosts
        self.calibrate('ssh_ping%d' % hosts, 'ping playbook (ssh, %d aliases)' % hosts, [out], runs_100, env=env, ssh=True)
        self.measure(key, 'triage.yml (ssh, %d aliases of %d)' % (hosts, n), *host_goal(hosts, GOAL_SSH_HOSTS_S))
        for _n in range(runs_100):
            run = self.playbook([out], 'playbooks/triage.yml', env=env, ssh=True)
            self.record(key, run)
            self.expect_incident(key, run)
        self.ratios.append(('triage / ping (ssh, %d hosts)' % n, ratio_of_medians(
            self.measures['ssh']['walls'], self.measures['ssh_ping']['walls']), None))
        self.ratios.append(('triage %d / ping %d (ssh aliases)' % (hosts, hosts), ratio_of_medians(
            self.measures[key]['walls'], self.measures['ssh_ping%d' % hosts]['walls']), None))

    # -- the report
    def print_tasks(self):
        if not any(m['tasks'] for m in self.measures.values()):
            return
        print('\ntasks per host (ansible.posix.json; executed [skipped]; run-once: tasks reported for the '
              'first host only, and controller plays)')
        for key, m in self.measures.items():
            c = m['tasks']
            if not c:
                continue
            others = [h for h in c['hosts'] if h != c['first']]
            print('  %-34s first host %s: %d (%d per host +%d run-once) [%d +%d]; others (%d): at most %s [%s]' % (
                m['label'], c['first'], c['first_total'], c['hosts'][c['first']]['executed'] if c['first'] else 0,
                c['once_executed'], c['hosts'][c['first']]['skipped'] if c['first'] else 0, c['once_skipped'],
                len(others), c['others_max'] if c['others_max'] is not None else '-',
                max([c['hosts'][h]['skipped'] for h in others] or [0])))
            if len(c['hosts']) <= 5:
                for host in sorted(c['hosts']):
                    print('      %-16s %3d [%d]' % (host, c['hosts'][host]['executed'], c['hosts'][host]['skipped']))

    def rows(self):
        rows = [('measure', 'median', 'runs', 'CPU-s', 'tasks/host', 'goal')]
        for m in self.measures.values():
            med = median(m['walls'])
            goal = []
            if m['goal_text']:
                goal.append(('%s %s' % (m['goal_text'], verdict(m.get('goal_value', med), m['goal']))).strip())
            if m['tasks']:
                goal.append('tasks <= %d %s' % (GOAL_TASKS_PER_HOST, verdict(m['tasks']['per_host_max'], GOAL_TASKS_PER_HOST)))
            failed = sum(1 for rc in m['rcs'] if rc)
            if failed:
                goal.append('rc != 0 in %d run(s)' % failed)
            rows.append((m['label'], fmt_s(med), str(len(m['walls'])), '%.2f' % median(m['cpus']),
                         tasks_cell(m['tasks']), '; '.join(goal)))
        return rows

    def report(self, load_before, load_after):
        self.print_tasks()
        if self.measures:
            print('\n' + table(self.rows()))
        if self.ratios:
            print('\nratios of medians')
        for label, value, goal in self.ratios:
            print('  %-40s %8s%s' % (label, fmt_x(value), '   goal <= %.1fx %s' % (goal, verdict(value, goal))
                                     if goal else ''))
        for label, value, goal in self.per_host:
            print('  %-40s %8s%s' % (label, '-' if value is None else '%.2f' % value,
                                     '   goal <= %.1f %s' % (goal, verdict(value, goal)) if goal else ''))
        for line in self.skipped:
            print(line)
        print('\nload average before %s, after %s (%d CPUs); CPU-s: user+sys of the processes each run started '
              '(children rusage; the Docker daemon\'s work for docker exec is not in it)' % (
                  ' '.join('%.2f' % x for x in load_before), ' '.join('%.2f' % x for x in load_after),
                  os.cpu_count()))
        goals = (GOAL_FLOOR_RATIO, GOAL_CPU_PER_HOST, GOAL_TASKS_PER_HOST, GOAL_SHELL_RATIO, GOAL_SSH_HOSTS_S)
        print('goals: triage, investigate and 100 hosts <= %.1fx the ping playbook on the same inventory, 100 hosts '
              '<= %.1f CPU-s per host, %d task per host (+ run-once tasks); as before: triage/shell <= %.1fx, '
              'SSH 100 hosts <= %.0f s' % goals)

    def as_json(self, load_before, load_after):
        measures = {}
        for key, m in self.measures.items():
            measures[key] = dict(m, wall_s=[round(w, 3) for w in m['walls']], cpu_s=[round(c, 3) for c in m['cpus']],
                                 wall_median_s=round(median(m['walls']), 3), cpu_median_s=round(median(m['cpus']), 3))
            for k in ('walls', 'cpus'):
                measures[key].pop(k)
        return {'lab_instance': self.instance, 'cpus': os.cpu_count(), 'loadavg_before': load_before,
                'loadavg_after': load_after, 'measures': measures,
                'ratios': [{'label': label, 'value': None if value is None else round(value, 3), 'goal': goal}
                           for label, value, goal in self.ratios],
                'per_host': [{'label': label, 'value': None if value is None else round(value, 3), 'goal': goal}
                             for label, value, goal in self.per_host],
                'skipped': self.skipped}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, help='runs of the triage/shell, investigate and SSH fleet measures '
                                                 '(defaults 5, 3, 3)')
    parser.add_argument('--runs-100', dest='runs_100', type=int,
                        help='runs of the --hosts measures, local and SSH aliases (default 1)')
    parser.add_argument('--only', default=','.join(MEASURES),
                        help='comma-separated subset of %s (default: all)' % ','.join(MEASURES))
    parser.add_argument('--hosts', type=int, default=100, help='hosts of the fleet100 and ssh alias measures')
    parser.add_argument('--ssh-hosts', dest='ssh_hosts', type=int,
                        help='SSH aliases of the ssh measure (default --hosts; each is a connection of its own)')
    parser.add_argument('--fleet-size', dest='fleet_size', type=int,
                        default=int(os.environ.get('FLEET_SIZE') or 0) or None,
                        help='fleet hosts used by the ssh measures (default FLEET_SIZE, else every host up)')
    parser.add_argument('--actions', default=','.join(DEFAULT_ACTIONS),
                        help='remediations of the remediate measure, comma-separated subset of %s (default %s)' % (
                            ','.join(c[0] for c in REMEDIATE_CASES), ','.join(DEFAULT_ACTIONS)))
    parser.add_argument('--json', dest='json_out', help='write every measure to this file')
    parser.add_argument('--keep', action='store_true', help='keep the temporary directory (incidents, inventories)')
    opts = parser.parse_args(argv)
    only = [x.strip() for x in opts.only.split(',') if x.strip()]
    unknown = [x for x in only if x not in MEASURES]
    if unknown:
        parser.error('--only: unknown measure(s) %s (use %s)' % (', '.join(unknown), ','.join(MEASURES)))
    opts.only = only
    opts.actions = [x.strip() for x in opts.actions.split(',') if x.strip()]
    unknown = [x for x in opts.actions if x not in [c[0] for c in REMEDIATE_CASES]]
    if unknown:
        parser.error('--actions: unknown action(s) %s' % ', '.join(unknown))
    return opts


def runs_for(opts, measure):
    if measure in ('fleet100', 'ssh100'):
        return opts.runs_100 or DEFAULT_RUNS[measure]
    return opts.runs or DEFAULT_RUNS[measure]


@contextlib.contextmanager
def flock(path):
    with open(path, 'w') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main(argv=None):
    opts = parse_args(argv)
    bench = Bench(opts)
    load_before = loadavg()
    print('sre.incident_response bench: LAB_INSTANCE=%d, %d CPUs, load average %s; measures %s' % (
        bench.instance, os.cpu_count(), ' '.join('%.2f' % x for x in load_before), ','.join(opts.only)), flush=True)
    try:
        # the integration tests' locks: no fault is injected into the lab while the bench runs
        docker_lab = [m for m in opts.only if m not in ('ssh', 'ssh-remediate')]
        with flock('/tmp/sre-incident-lab-%d.lock' % bench.instance) if docker_lab else contextlib.nullcontext():
            if 'triage' in opts.only:
                bench.run_triage(runs_for(opts, 'triage'))
            if 'investigate' in opts.only:
                bench.run_investigate(runs_for(opts, 'investigate'))
            if 'fleet100' in opts.only:
                bench.run_fleet100(runs_for(opts, 'fleet100'), opts.hosts)
            if 'remediate' in opts.only:
                bench.run_remediate(runs_for(opts, 'remediate'))
        if 'ssh-remediate' in opts.only:
            bench.run_ssh_remediate(runs_for(opts, 'ssh-remediate'))
        if 'ssh' in opts.only:
            bench.run_ssh(runs_for(opts, 'ssh'), runs_for(opts, 'ssh100'), opts.ssh_hosts or opts.hosts, opts.fleet_size)
        load_after = loadavg()
        bench.report(load_before, load_after)
        if opts.json_out:
            with open(opts.json_out, 'w') as handle:
                json.dump(bench.as_json(load_before, load_after), handle, indent=2, default=str)
    finally:
        if opts.keep:
            print('kept %s' % bench.tmp)
        else:
            shutil.rmtree(bench.tmp, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
