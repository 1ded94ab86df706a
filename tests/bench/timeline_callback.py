"""Micro-benchmark of the timeline callback in-process: N hosts x T tasks of fake results, no Ansible run.

Drives plugins/callback/timeline.py (play start, then per task: task start, runner start and a result per host,
then stats) with stand-in objects, writing to a real incident directory on the checkout's file system (fsync
included), and prints the time spent in the callback, the events and bytes written and the number of appends.

    .venv/bin/python tests/bench/timeline_callback.py [--hosts 100] [--tasks 10] [--failed 1] [--runs 5]
        [--collections DIR]   # another checkout's collections root (e.g. an older version extracted with git archive)

No timed assertions anywhere: compare versions by running this script against each, on the same machine, in turn.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

OPTIONS = {'incident_dir': 'incidents', 'incident_id': None, 'incident_id_source': 'auto', 'redact_patterns': [],
           'secret_var_patterns': [], 'secret_scan_hosts': 50, 'record_skipped': True, 'result_max_chars': 300,
           'postmortem_draft': False}


class Host(object):
    def __init__(self, name):
        self.name = name

    def get_name(self):
        return self.name


class Task(object):
    def __init__(self, uuid, name):
        self._uuid = uuid
        self.name = name
        self.action = 'sre.incident_response.probe'
        self.no_log = False
        self._role = None

    def get_name(self):
        return self.name


class Result(object):
    def __init__(self, host, task, result):
        self.host = host
        self.task = task
        self.result = result


class VariableManager(object):
    _loader = None

    def __init__(self, extra_vars, hosts):
        self.extra_vars = extra_vars
        self._inventory = self
        self._hosts = hosts

    def get_hosts(self, pattern):
        return list(self._hosts)

    def get_vars(self, play=None, host=None, include_hostvars=True):
        return {'lab_pg_password': 'bench-S3cret-pw', 'incident_services': [{'name': 'db', 'kind': 'postgres'}]}


class Play(object):
    hosts = 'all'

    def __init__(self, vm):
        self._vm = vm

    def get_name(self):
        return 'Investigate'

    def get_variable_manager(self):
        return self._vm

    def get_vars(self):
        return {}


class Playbook(object):
    _file_name = 'playbooks/investigate.yml'


class Stats(object):
    def __init__(self, hosts):
        self.processed = dict((h.name, 1) for h in hosts)

    def summarize(self, host):
        return {'ok': 1, 'changed': 0, 'failures': 0, 'unreachable': 0, 'skipped': 0, 'rescued': 0, 'ignored': 0}


def one_run(timeline_cb, files, hosts, tasks, failed, workdir):
    incident_id = 'INC-BENCH'
    path = os.path.join(workdir, incident_id)
    os.makedirs(path)
    cb = timeline_cb.CallbackModule()
    cb.set_options()
    cb._finished = True  # no exit-time draft
    appends = []
    append = cb.writer._append

    def counted(target, records):
        appends.append(1)
        return append(target, records)
    cb.writer._append = counted
    vm = VariableManager({'incident_id': incident_id, 'incident_dir': workdir}, hosts)
    result = {'changed': False, 'msg': 'probed 4 areas', 'findings': [{'check': 'app.errors', 'status': 'ok'}] * 8}
    started, cpu = time.perf_counter(), time.process_time()
    cb.v2_playbook_on_start(Playbook())
    cb.v2_playbook_on_play_start(Play(vm))
    for n in range(tasks):
        task = Task('task-%d' % n, 'Probe %d' % n)
        cb.v2_playbook_on_task_start(task, False)
        for host in hosts:
            cb.v2_runner_on_start(host, task)
        for i, host in enumerate(hosts):
            if i < failed:
                cb.v2_runner_on_failed(Result(host, task, {'msg': 'probe failed: connection refused', 'rc': 1}))
            else:
                cb.v2_runner_on_ok(Result(host, task, result))
    cb.v2_playbook_on_stats(Stats(hosts))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    timeline = os.path.join(path, files.TIMELINE)
    events = files.read_jsonl(timeline)
    return {'seconds': elapsed, 'cpu_seconds': cpu, 'events': len(events), 'task_events': sum(1 for e in events if e['kind'] == 'task'),
            'bytes': os.path.getsize(timeline), 'appends': len(appends)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--hosts', type=int, default=100)
    parser.add_argument('--tasks', type=int, default=10)
    parser.add_argument('--failed', type=int, default=1, help='failed hosts per task')
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--collections', default=os.path.join(ROOT, '.collections'))
    parser.add_argument('--json', action='store_true', help='print the result as JSON')
    args = parser.parse_args()
    sys.path.insert(0, os.path.abspath(args.collections))
    from ansible.plugins.callback import CallbackBase
    CallbackBase.set_options = lambda self, *a, **k: setattr(self, '_plugin_options', dict(OPTIONS))
    from ansible_collections.sre.incident_response.plugins.callback import timeline as timeline_cb
    from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files

    hosts = [Host('node-%03d' % i) for i in range(args.hosts)]
    scratch = os.path.join(ROOT, '.cache')
    os.makedirs(scratch, exist_ok=True)
    runs = []
    for dummy in range(args.runs):
        workdir = tempfile.mkdtemp(prefix='bench-timeline-', dir=scratch)
        try:
            runs.append(one_run(timeline_cb, files, hosts, args.tasks, args.failed, workdir))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    out = dict(runs[-1], seconds=statistics.median(r['seconds'] for r in runs),
               cpu_seconds=statistics.median(r['cpu_seconds'] for r in runs),
               runs=[round(r['seconds'], 4) for r in runs], hosts=args.hosts, tasks=args.tasks,
               collections=os.path.abspath(args.collections))
    if args.json:
        print(json.dumps(out, sort_keys=True))
    else:
        print('%(hosts)d hosts x %(tasks)d tasks: median %(seconds).3f s in the callback, %(cpu_seconds).3f s CPU '
              '(runs %(runs)s), '
              '%(events)d events (%(task_events)d task), %(bytes)d bytes, %(appends)d appends' % out)


if __name__ == '__main__':
    main()
