"""Every v2_* hook of the timeline callback, driven one by one with stand-in objects (no playbook run).

The integration tests run the same hooks inside ansible-playbook and ansible-runner.
"""
import json

import pytest
from ansible.plugins.callback import CallbackBase

from ansible_collections.sre.incident_response.plugins.callback import timeline as timeline_cb
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.timeline import task_results

OPTIONS = {'incident_dir': 'incidents', 'incident_id': None, 'incident_id_source': 'auto', 'redact_patterns': [],
           'secret_var_patterns': [], 'secret_scan_hosts': 50, 'record_skipped': True, 'result_max_chars': 300,
           'postmortem_draft': True}


class Host(object):
    def __init__(self, name):
        self.name = name

    def get_name(self):
        return self.name


class Role(object):
    def get_name(self):
        return 'postgres'


class Task(object):
    def __init__(self, uuid, name, action='ansible.builtin.command', no_log=False, role=None):
        self._uuid = uuid
        self.name = name
        self.action = action
        self.no_log = no_log
        self._role = role

    def get_name(self):
        return self.name


class Result(object):
    def __init__(self, host, task, result):
        self.host = host
        self.task = task
        self.result = result


class Inventory(object):
    def __init__(self, hosts):
        self.hosts = hosts

    def get_hosts(self, pattern):
        return list(self.hosts)


class VariableManager(object):
    _loader = None

    def __init__(self, extra_vars, host_vars, hosts):
        self.extra_vars = extra_vars
        self._host_vars = host_vars
        self._inventory = Inventory(hosts)

    def get_vars(self, play=None, host=None, include_hostvars=True):
        return dict(self._host_vars.get(host.name, {}))


class Play(object):
    def __init__(self, name, vm, hosts='all', play_vars=None):
        self.name = name
        self.hosts = hosts
        self._vm = vm
        self._vars = play_vars or {}

    def get_name(self):
        return self.name

    def get_variable_manager(self):
        return self._vm

    def get_vars(self):
        return self._vars


class Playbook(object):
    _file_name = '/x/playbooks/triage.yml'


class Stats(object):
    processed = {'db1': 1, 'web1': 1}

    def summarize(self, host):
        return {'ok': 2, 'changed': 1, 'failures': 0, 'unreachable': 0, 'skipped': 0, 'rescued': 0, 'ignored': 0}


@pytest.fixture
def callback(monkeypatch):
    monkeypatch.setattr(CallbackBase, 'set_options', lambda self, *a, **k: setattr(self, '_plugin_options',
                                                                                   dict(OPTIONS, **self._test_opts)))
    now = [1000.0]

    def make(**opts):
        cb = timeline_cb.CallbackModule()
        cb._test_opts = opts
        cb.set_options()
        cb.clock._clock = lambda: now[0]
        cb._finished = True  # no exit-time draft from this stand-in object
        return cb
    make.now = now
    return make


def events_of(path):
    return files.read_jsonl(str(path / 'timeline.jsonl'))


def test_every_hook_in_order(tmp_path, callback):
    cb = callback()
    hosts = [Host('db1'), Host('web1')]
    vm = VariableManager(
        extra_vars={'incident_id': 'INC-CB', 'incident_dir': str(tmp_path), 'slack_token': 'xoxb-planted-123'},
        host_vars={'db1': {'my_ref': 'hidden-by-reference-1',
                           'incident_services': [{'name': 'db', 'postgres': {'password_var': 'my_ref'}}],
                           'incident_contacts': {'oncall': {'handle': '@dba-oncall'}}}},
        hosts=hosts)
    path = tmp_path / 'INC-CB'
    path.mkdir()  # an existing incident: the extra vars bind it at once
    cb.v2_playbook_on_start(Playbook())
    cb.v2_playbook_on_play_start(Play('Triage', vm, play_vars={'play_api_key': 'play-level-key-9'}))
    assert [e['kind'] for e in events_of(path)] == ['play']  # the incident came from the extra vars

    ok_task = Task('u1', 'Probe', role=Role())
    cb.v2_playbook_on_task_start(ok_task, False)
    callback.now[0] += 1.0
    cb.v2_runner_on_start(hosts[0], ok_task)
    callback.now[0] += 2.5
    cb.v2_runner_on_ok(Result(hosts[0], ok_task, {'changed': True, 'msg': 'token xoxb-planted-123 pw hidden-by-reference-1'}))
    cb.v2_runner_on_ok(Result(hosts[1], ok_task, {'changed': False, 'msg': 'key play-level-key-9'}))  # no runner start
    cb.v2_runner_on_failed(Result(hosts[1], Task('u2', 'Break'), {'msg': 'boom'}), ignore_errors=False)
    cb.v2_runner_on_skipped(Result(hosts[0], Task('u3', 'Maybe'), {'skipped': True}))
    cb.v2_runner_on_unreachable(Result(hosts[1], Task('u4', 'Reach'), {'msg': 'ssh: connect refused'}))
    handler = Task('u5', 'Restart it', no_log=True)
    cb.v2_playbook_on_handler_task_start(handler)
    callback.now[0] += 0.5
    cb.v2_runner_on_ok(Result(hosts[0], handler, {'changed': False, 'stdout': 'secret output'}))
    cb.v2_playbook_on_stats(Stats())

    events = events_of(path)
    raw = (path / 'timeline.jsonl').read_text()
    for secret in ('xoxb-planted-123', 'hidden-by-reference-1', 'play-level-key-9', 'secret output'):
        assert secret not in raw
    tasks = [e for e in events if e['kind'] == 'task']
    compact = [e for e in tasks if 'hosts' in e['data']]
    details = [e for e in tasks if e['data'].get('detail')]
    assert len(compact) + len(details) == len(tasks)
    # one event per task; the host when one host ran it
    assert [(e['data']['task'], e['host']) for e in compact] == [
        ('Probe', None), ('Break', 'web1'), ('Maybe', 'db1'), ('Reach', 'web1'), ('Restart it', 'db1')]
    assert compact[0]['summary'] == 'Probe: ok 1, changed 1, failed 0, unreachable 0, skipped 0'
    assert compact[0]['data']['hosts'] == {'db1': {'status': 'changed', 'duration_s': 2.5},   # from v2_runner_on_start
                                           'web1': {'status': 'ok', 'duration_s': 3.5}}       # from the task start
    assert compact[0]['data']['counts'] == {'ok': 1, 'changed': 1, 'failed': 0, 'unreachable': 0, 'skipped': 0}
    assert compact[0]['data']['role'] == 'postgres' and compact[0]['data']['task_id'] == 'u1'
    assert compact[4]['data']['hosts'] == {'db1': {'status': 'ok', 'duration_s': 0.5}}  # the handler task start
    # failures also have their detailed, redacted event
    assert [(e['data']['task'], e['host'], e['data']['status'], e['summary']) for e in details] == [
        ('Break', 'web1', 'failed', 'Break: failed - boom'), ('Reach', 'web1', 'unreachable', 'Reach: unreachable - ssh: connect refused')]
    # read back per host, the same as the old one-event-per-result form
    results = list(task_results(events))
    assert [(r['task'], r['host'], r['status']) for r in results] == [
        ('Probe', 'db1', 'changed'), ('Probe', 'web1', 'ok'), ('Break', 'web1', 'failed'),
        ('Maybe', 'db1', 'skipped'), ('Reach', 'web1', 'unreachable'), ('Restart it', 'db1', 'ok')]
    assert results[2]['msg'] == 'boom' and results[4]['msg'] == 'ssh: connect refused'
    end = events[-1]
    assert end['kind'] == 'play' and end['data']['phase'] == 'end' and set(end['data']['stats']) == {'db1', 'web1'}
    assert {e['data']['run'] for e in events} == {cb.run_id}
    draft = list(path.glob('postmortem-*.md'))
    assert len(draft) == 1 and '@dba-oncall' in draft[0].read_text()  # v2_playbook_on_stats rendered the draft


def test_incident_from_facts_and_source_option(tmp_path, callback):
    vm = VariableManager({}, {}, [Host('h')])
    for source, expect_written in (('auto', True), ('facts', True), ('vars', False)):
        cb = callback(incident_id_source=source)
        cb.v2_playbook_on_start(Playbook())
        cb.v2_playbook_on_play_start(Play('Declare', vm))
        task = Task('t-%s' % source, 'Declare')
        target = tmp_path / source / 'INC-F'
        cb.v2_runner_on_ok(Result(Host('h'), task, {'ansible_facts': {'incident_id': 'INC-F',
                                                                      'incident_path': str(target)}}))
        cb.v2_playbook_on_stats(Stats())
        assert (target / 'timeline.jsonl').exists() is expect_written, source
        if expect_written:
            kinds = [e['kind'] for e in events_of(target)]
            assert kinds == ['play', 'task', 'play']  # the buffered play start was flushed first


def test_vars_source_ignores_facts_but_uses_the_option(tmp_path, callback):
    cb = callback(incident_id_source='vars', incident_id='INC-OPT', incident_dir=str(tmp_path))
    cb.v2_playbook_on_play_start(Play('P', VariableManager({}, {}, [])))
    cb.v2_playbook_on_stats(Stats())
    assert [e['summary'] for e in events_of(tmp_path / 'INC-OPT')][0] == 'Play started: P'


def test_skipped_results_can_be_left_out_and_draft_disabled(tmp_path, callback):
    cb = callback(record_skipped=False, postmortem_draft=False)
    (tmp_path / 'INC-S').mkdir()
    cb.v2_playbook_on_play_start(Play('P', VariableManager({'incident_id': 'INC-S', 'incident_dir': str(tmp_path)},
                                                           {}, [])))
    cb.v2_runner_on_skipped(Result(Host('h'), Task('s', 'Skip me'), {}))
    cb.v2_playbook_on_stats(Stats())
    assert [e['kind'] for e in events_of(tmp_path / 'INC-S')] == ['play', 'play']
    assert not list((tmp_path / 'INC-S').glob('postmortem-*.md'))


def test_resolved_incident_keeps_its_final_document(tmp_path, callback):
    path = tmp_path / 'INC-R'
    files.write_json_atomic(str(path / 'incident.json'), {'id': 'INC-R', 'status': 'Resolved',
                                                          'started_at': '2026-11-27T01:00:00Z'})
    (path / 'postmortem-2026-11-27.md').write_text('final\n')
    cb = callback()
    cb.v2_playbook_on_play_start(Play('P', VariableManager({'incident_id': 'INC-R', 'incident_dir': str(tmp_path)},
                                                           {}, [])))
    cb.v2_playbook_on_stats(Stats())
    assert (path / 'postmortem-2026-11-27.md').read_text() == 'final\n'


def test_exit_hook_records_an_interrupted_run(tmp_path, callback):
    cb = callback()
    cb._finished = False
    (tmp_path / 'INC-I').mkdir()
    cb.v2_playbook_on_play_start(Play('P', VariableManager({'incident_id': 'INC-I', 'incident_dir': str(tmp_path)},
                                                           {}, [])))
    cb._at_exit()
    cb._at_exit()  # once only
    events = events_of(tmp_path / 'INC-I')
    assert [e['data'].get('interrupted') for e in events] == [None, True]
    assert list((tmp_path / 'INC-I').glob('postmortem-*.md'))


def test_unwritable_directory_warns_once_and_never_raises(tmp_path, callback):
    blocker = tmp_path / 'file'
    blocker.write_text('not a directory')
    warnings = []
    cb = callback()
    cb._display.warning = lambda msg, **kw: warnings.append(msg)
    cb.v2_playbook_on_play_start(Play('P', VariableManager({'incident_id': 'INC-W', 'incident_dir': str(blocker)},
                                                           {}, [])))
    cb.v2_runner_on_ok(Result(Host('h'), Task('w', 'T'), {}))
    cb.v2_playbook_on_stats(Stats())
    assert len([w for w in warnings if 'cannot write' in w]) == 1
    json.dumps(warnings)


def test_a_new_incident_id_creates_nothing_until_the_incident_is_declared(tmp_path, callback):
    """-e incident_id=NEW of a run the input checks refuse must not leave a half-written incident directory."""
    cb = callback()
    vm = VariableManager(extra_vars={'incident_id': 'INC-NEW', 'incident_dir': str(tmp_path)}, host_vars={},
                         hosts=[Host('web1')])
    cb.v2_playbook_on_start(Playbook())
    cb.v2_playbook_on_play_start(Play('Triage', vm))
    bad = Task('u9', 'Check the input')
    cb.v2_playbook_on_task_start(bad, False)
    cb.v2_runner_on_failed(Result(Host('web1'), bad, {'msg': 'Invalid input'}))
    cb.v2_playbook_on_stats(Stats())
    assert not (tmp_path / 'INC-NEW').exists()


def bound(callback, tmp_path, incident_id='INC-C', **opts):
    """A callback in a play of an existing incident (bound at once by the extra vars)."""
    cb = callback(**opts)
    (tmp_path / incident_id).mkdir()
    vm = VariableManager({'incident_id': incident_id, 'incident_dir': str(tmp_path), 'slack_token': 'xoxb-planted-123'},
                         {}, [])
    cb.v2_playbook_on_start(Playbook())
    cb.v2_playbook_on_play_start(Play('Triage', vm))
    return cb, tmp_path / incident_id


def counting_appends(cb):
    calls = []
    append = cb.writer._append

    def counted(path, records):
        calls.append(len(records))
        return append(path, records)
    cb.writer._append = counted
    return calls


def test_n_hosts_one_task_is_one_event_written_in_one_append(tmp_path, callback):
    cb, path = bound(callback, tmp_path)
    hosts = [Host('node-%03d' % i) for i in range(100)]
    appends = counting_appends(cb)
    probe = Task('p1', 'Probe', action='sre.incident_response.probe')
    cb.v2_playbook_on_task_start(probe, False)
    for i, host in enumerate(hosts):
        callback.now[0] += 0.01
        if i == 7:
            cb.v2_runner_on_failed(Result(host, probe, {'msg': 'probe crashed'}))
        elif i == 8:
            cb.v2_runner_on_unreachable(Result(host, probe, {'msg': 'ssh timeout'}))
        elif i == 9:
            cb.v2_runner_on_skipped(Result(host, probe, {'skipped': True}))
        else:
            cb.v2_runner_on_ok(Result(host, probe, {'changed': False, 'findings': ['big'] * 50}))
    assert appends == [1, 1]  # only the two detailed failures so far, one append each
    cb.v2_playbook_on_task_start(Task('p2', 'Next'), False)
    assert appends == [1, 1, 1]  # the whole task: one append
    events = [e for e in events_of(path) if e['kind'] == 'task']
    compact = [e for e in events if 'hosts' in e['data']]
    assert len(compact) == 1 and len(events) == 3
    event = compact[0]
    assert event['host'] is None and set(event) == {'ts', 'incident_id', 'kind', 'host', 'summary', 'data'}
    assert event['summary'] == 'Probe: ok 97, changed 0, failed 1, unreachable 1, skipped 1'
    assert sorted(event['data']['hosts']) == [h.name for h in hosts]
    assert event['data']['hosts']['node-007'] == {'status': 'failed', 'duration_s': 0.08}
    assert event['data']['hosts']['node-009']['status'] == 'skipped'
    assert event['data']['action'] == 'sre.incident_response.probe' and event['data']['play'] == 'Triage'
    assert 'big' not in json.dumps(event)  # results are summarized, never copied
    details = [e for e in events if e['data'].get('detail')]
    assert [(e['host'], e['data']['status'], e['data']['msg']) for e in details] == [
        ('node-007', 'failed', 'probe crashed'), ('node-008', 'unreachable', 'ssh timeout')]
    assert all(e['data']['task_id'] == 'p1' for e in details)
    assert files.parse_ts(event['ts']) >= max(files.parse_ts(e['ts']) for e in details)


def test_a_task_whose_last_result_failed_keeps_the_file_in_time_order(tmp_path, callback, monkeypatch):
    # The wall clock ticks a millisecond per reading: the compact event, written at the next task, must not be
    # stamped before the detailed event of its last (failed) result, which was written at once.
    import datetime
    start = datetime.datetime(2026, 12, 1, 3, 0, tzinfo=datetime.timezone.utc)
    ticks = [0]

    def ticking():
        ticks[0] += 1
        return start + datetime.timedelta(milliseconds=ticks[0])
    monkeypatch.setattr(files, 'utcnow', ticking)
    cb, path = bound(callback, tmp_path)
    task = Task('f1', 'Ping')
    cb.v2_playbook_on_task_start(task, False)
    cb.v2_runner_on_ok(Result(Host('a'), task, {}))
    cb.v2_runner_on_unreachable(Result(Host('ghost'), task, {'msg': 'ssh timeout'}))
    cb.v2_playbook_on_task_start(Task('f2', 'Next'), False)
    events = events_of(path)
    assert [(e['kind'], e['data'].get('detail', False)) for e in events][-2:] == [('task', True), ('task', False)]
    stamps = [files.parse_ts(e['ts']) for e in events]
    assert stamps == sorted(stamps)


def test_ignored_failures_are_counted_apart_and_not_significant(tmp_path, callback):
    from ansible_collections.sre.incident_response.plugins.plugin_utils.render.postmortem import IncidentRecord, compute_metrics
    cb, path = bound(callback, tmp_path)
    task = Task('i1', 'Try')
    cb.v2_playbook_on_task_start(task, False)
    cb.v2_runner_on_failed(Result(Host('a'), task, {'msg': 'nope'}), ignore_errors=True)
    cb.v2_runner_on_ok(Result(Host('b'), task, {}))
    cb.v2_playbook_on_stats(Stats())
    events = events_of(path)
    compact = [e for e in events if e['kind'] == 'task' and 'hosts' in e['data']][0]
    assert compact['summary'] == 'Try: ok 1, changed 0, failed 1, unreachable 0, skipped 0 (1 failure ignored)'
    assert compact['data']['hosts']['a'] == {'status': 'failed', 'duration_s': 0.0, 'ignored': True}
    assert compact['data']['counts']['ignored'] == 1
    assert [r['ignored'] for r in task_results(events) if r['host'] == 'a'] == [True]
    assert compute_metrics(IncidentRecord({}, events)).get('failed_tasks') == 0


def test_a_failed_no_log_result_keeps_only_that_it_was_hidden(tmp_path, callback):
    cb, path = bound(callback, tmp_path)
    task = Task('n1', 'Use the password', no_log=True)
    cb.v2_playbook_on_task_start(task, False)
    cb.v2_runner_on_failed(Result(Host('a'), task, {'msg': 'auth failed for hunter2-secret', 'rc': 1}))
    cb.v2_playbook_on_stats(Stats())
    raw = (path / 'timeline.jsonl').read_text()
    assert 'hunter2-secret' not in raw
    detail = [e for e in events_of(path) if e['kind'] == 'task' and e['data'].get('detail')]
    assert len(detail) == 1 and detail[0]['data']['no_log'] is True and 'msg' not in detail[0]['data']
    assert detail[0]['summary'] == 'Use the password: failed (output hidden by no_log)'


def test_the_compact_event_is_redacted_host_names_too(tmp_path, callback):
    cb, path = bound(callback, tmp_path)
    task = Task('s1', 'Post to xoxb-planted-123')
    cb.v2_playbook_on_task_start(task, False)
    cb.v2_runner_on_ok(Result(Host('web-xoxb-planted-123'), task, {}))
    cb.v2_runner_on_ok(Result(Host('web2'), task, {}))
    cb.v2_playbook_on_stats(Stats())
    raw = (path / 'timeline.jsonl').read_text()
    assert 'xoxb-planted-123' not in raw
    compact = [e for e in events_of(path) if e['kind'] == 'task'][0]
    assert sorted(compact['data']['hosts']) == ['web-********', 'web2']
    assert compact['data']['task'] == 'Post to ********'


def test_one_host_sets_the_host_and_skipped_results_can_be_left_out(tmp_path, callback):
    cb, path = bound(callback, tmp_path, record_skipped=False)
    task = Task('k1', 'Only on the db')
    cb.v2_playbook_on_task_start(task, False)
    cb.v2_runner_on_skipped(Result(Host('web1'), task, {}))
    cb.v2_runner_on_ok(Result(Host('db1'), task, {'changed': True}))
    cb.v2_playbook_on_stats(Stats())
    compact = [e for e in events_of(path) if e['kind'] == 'task']
    assert len(compact) == 1 and compact[0]['host'] == 'db1'
    assert compact[0]['data']['hosts'] == {'db1': {'status': 'changed', 'duration_s': 0.0}}
    assert compact[0]['data']['counts']['skipped'] == 0


def test_exit_hook_writes_the_results_of_the_unfinished_task(tmp_path, callback):
    cb, path = bound(callback, tmp_path)
    cb._finished = False
    task = Task('x1', 'Slow step')
    cb.v2_playbook_on_task_start(task, False)
    cb.v2_runner_on_ok(Result(Host('fast'), task, {}))
    cb._at_exit()
    events = events_of(path)
    assert [(e['kind'], e['data'].get('interrupted')) for e in events] == [('play', None), ('task', True), ('play', True)]
    assert events[1]['host'] == 'fast' and events[1]['summary'].endswith(' - run interrupted')


def test_a_task_split_by_a_flush_reads_back_whole(tmp_path, callback):
    """The free strategy starts the next task while hosts still run the previous one: one task, two events."""
    cb, path = bound(callback, tmp_path)
    first, second = Task('f1', 'First'), Task('f2', 'Second')
    cb.v2_playbook_on_task_start(first, False)
    cb.v2_runner_on_ok(Result(Host('a'), first, {}))
    cb.v2_playbook_on_task_start(second, False)
    cb.v2_runner_on_ok(Result(Host('a'), second, {}))
    cb.v2_runner_on_failed(Result(Host('b'), first, {'msg': 'late'}))
    cb.v2_playbook_on_stats(Stats())
    events = events_of(path)
    assert [(e['data']['task'], e['host']) for e in events if e['kind'] == 'task' and 'hosts' in e['data']] == [
        ('First', 'a'), ('Second', 'a'), ('First', 'b')]
    assert sorted((r['task'], r['host'], r['status']) for r in task_results(events)) == [
        ('First', 'a', 'ok'), ('First', 'b', 'failed'), ('Second', 'a', 'ok')]


CHILD = '''
import os, signal, sys
sys.path.insert(0, %(collections)r)
sys.path.insert(0, %(unit)r)
from ansible.plugins.callback import CallbackBase
import test_timeline_callback as t
CallbackBase.set_options = lambda self, *a, **k: setattr(self, '_plugin_options', dict(t.OPTIONS))
from ansible_collections.sre.incident_response.plugins.callback import timeline
cb = timeline.CallbackModule()
cb.set_options()
cb.v2_playbook_on_start(t.Playbook())
cb.v2_playbook_on_play_start(t.Play('Run', t.VariableManager({'incident_id': 'INC-K', 'incident_dir': %(root)r}, {}, [])))
hosts = [t.Host('h%%02d' %% i) for i in range(20)]
for n in range(5):
    task = t.Task('t%%d' %% n, 'Task %%d' %% n)
    cb.v2_playbook_on_task_start(task, False)
    for i, host in enumerate(hosts):
        if n == 4 and i == 10:
            os.kill(os.getpid(), signal.%(signal)s)
        if i == 3:
            cb.v2_runner_on_failed(t.Result(host, task, {'msg': 'down'}))
        else:
            cb.v2_runner_on_ok(t.Result(host, task, {}))
cb.v2_playbook_on_stats(t.Stats())
'''


@pytest.mark.parametrize('sig', ['SIGKILL', 'SIGINT'])
def test_a_run_killed_mid_task_leaves_a_valid_file(tmp_path, sig):
    """Killed while its hosts run the 5th task: every line parses, the 4 done tasks are whole, failures kept."""
    import os
    import signal
    import subprocess
    import sys
    unit = os.path.dirname(os.path.abspath(__file__))
    (tmp_path / 'INC-K').mkdir()
    code = CHILD % {'collections': os.path.join(os.path.dirname(os.path.dirname(unit)), '.collections'), 'unit': unit,
                    'root': str(tmp_path), 'signal': sig}
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == -getattr(signal, sig), proc.stderr
    assert 'atexit' not in proc.stderr and proc.stderr.strip().splitlines()[-1:] == (
        ['KeyboardInterrupt'] if sig == 'SIGINT' else []), proc.stderr
    lines = (tmp_path / 'INC-K' / 'timeline.jsonl').read_text().splitlines()
    events = [json.loads(line) for line in lines]
    compact = [e for e in events if e['kind'] == 'task' and 'hosts' in e['data']]
    details = [e for e in events if e['kind'] == 'task' and e['data'].get('detail')]
    assert [e['data']['task'] for e in details] == ['Task %d' % n for n in range(5)]  # the 5th one's too
    whole = [e for e in compact if not e['data'].get('interrupted')]
    assert [(e['data']['task'], len(e['data']['hosts'])) for e in whole] == [('Task %d' % n, 20) for n in range(4)]
    if sig == 'SIGKILL':
        assert len(compact) == 4 and events[-1]['kind'] == 'task'  # the unfinished task's successes are lost
    else:  # Ctrl-C: the exit hook writes what the unfinished task did, then the interrupted play end
        assert compact[-1]['data']['interrupted'] is True and len(compact[-1]['data']['hosts']) == 10
        assert events[-1]['kind'] == 'play' and events[-1]['data']['interrupted'] is True


def test_documentation_parses_and_lists_every_option():
    import yaml
    doc = yaml.safe_load(timeline_cb.DOCUMENTATION)
    assert sorted(doc['options']) == sorted(OPTIONS)
    assert any('ONE C(task) event' in line for line in doc['description'])
