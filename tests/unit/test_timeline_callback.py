"""Every v2_* hook of the timeline callback, driven one by one with stand-in objects (no playbook run).

The integration tests run the same hooks inside ansible-playbook and ansible-runner.
"""
import json

import pytest
from ansible.plugins.callback import CallbackBase

from ansible_collections.sre.incident_response.plugins.callback import timeline as timeline_cb
from ansible_collections.sre.incident_response.plugins.module_utils import incident_files as files

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
    assert [(e['data']['task'], e['host'], e['data']['status']) for e in tasks] == [
        ('Probe', 'db1', 'changed'), ('Probe', 'web1', 'ok'), ('Break', 'web1', 'failed'),
        ('Maybe', 'db1', 'skipped'), ('Reach', 'web1', 'unreachable'), ('Restart it', 'db1', 'ok')]
    assert tasks[0]['data']['duration_s'] == 2.5   # from v2_runner_on_start
    assert tasks[1]['data']['duration_s'] == 3.5   # from v2_playbook_on_task_start
    assert tasks[5]['data']['duration_s'] == 0.5   # from v2_playbook_on_handler_task_start
    assert tasks[5]['data']['no_log'] is True and 'msg' not in tasks[5]['data']
    assert tasks[0]['data']['role'] == 'postgres' and tasks[2]['summary'] == 'Break: failed - boom'
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
