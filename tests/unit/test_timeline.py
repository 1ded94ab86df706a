"""Unit tests of the timeline logic (plugin_utils/incident/timeline.py) without Ansible."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files
from ansible_collections.sre.incident_response.plugins.module_utils.redact import REDACTED, Redactor
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.timeline import (
    SecretCollector,
    TaskClock,
    TaskResults,
    TimelineWriter,
    compact_task_event,
    play_event,
    secret_literals,
    summarize_result,
    task_event,
    task_results,
    task_status,
)
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import resolve_incident


@pytest.mark.parametrize('hook,result,expected', [
    ('ok', {'changed': False}, 'ok'),
    ('ok', {'changed': True}, 'changed'),
    ('failed', {'changed': True}, 'failed'),
    ('skipped', {}, 'skipped'),
    ('unreachable', {}, 'unreachable'),
])
def test_task_status(hook, result, expected):
    assert task_status(hook, result) == expected


def test_summarize_result_keeps_message_rc_and_stderr_tail_but_never_args():
    result = {'msg': 'boom  \n twice', 'rc': 2, 'stderr': 'x' * 1000 + 'END', 'invocation': {'module_args': {'a': 1}},
              'results': [{}, {}]}
    out = summarize_result(result, max_chars=50)
    assert out['msg'] == 'boom twice'
    assert out['rc'] == 2
    assert out['stderr'].endswith('END') and len(out['stderr']) <= 50
    assert out['items'] == 2
    assert 'invocation' not in out and 'module_args' not in json.dumps(out)


@pytest.mark.parametrize('result', [
    {'_ansible_no_log': True, 'msg': 'secret'},
    {'censored': "the output has been hidden due to the fact that 'no_log: true' was specified", 'changed': False},
])
def test_summarize_result_no_log_keeps_nothing(result):
    assert summarize_result(result) == {'no_log': True}


def test_task_event_shape_and_failed_summary():
    event = task_event('INC-1', 'app-db', 'Check locks', 'failed', duration=1.23456,
                       result={'msg': 'connection refused'}, action='x.y.z', play='Triage', role='postgres',
                       run_id='r1', ignore_errors=True)
    assert set(event) == {'ts', 'incident_id', 'kind', 'host', 'summary', 'data'}
    assert event['kind'] == 'task' and event['host'] == 'app-db'
    assert event['summary'] == 'Check locks: failed - connection refused'
    data = event['data']
    assert data['status'] == 'failed' and data['duration_s'] == 1.235 and data['ignored'] is True
    assert data['run'] == 'r1' and data['role'] == 'postgres' and data['play'] == 'Triage'
    files.parse_ts(event['ts'])


def test_task_event_no_log_summary():
    event = task_event('INC-1', 'h', 'Read password', 'ok', result={'_ansible_no_log': True})
    assert event['summary'] == 'Read password: ok (output hidden by no_log)'
    assert event['data']['no_log'] is True


def test_play_event():
    start = play_event('INC-1', 'start', 'Triage', hosts=['all'], run_id='r', playbook='/x/triage.yml', check_mode=True)
    assert start['kind'] == 'play' and start['summary'] == 'Play started: Triage (triage.yml)'
    assert start['data']['phase'] == 'start' and start['data']['check_mode'] is True
    end = play_event('INC-1', 'end', 'Triage', stats={'h': {'ok': 1}})
    assert end['summary'].startswith('Play ended') and end['data']['stats'] == {'h': {'ok': 1}}


def test_task_clock_per_host_then_task_fallback():
    now = [100.0]
    clock = TaskClock(clock=lambda: now[0])
    clock.task_started('t1')
    now[0] = 101.0
    clock.host_started('a', 't1')
    now[0] = 103.5
    assert clock.elapsed('a', 't1') == 2.5
    assert clock.elapsed('b', 't1') == 3.5  # no host start: from the task start
    assert clock.elapsed('c', 'unknown') is None


def test_secret_collector_by_name_and_by_reference():
    variables = {
        'lab_pg_password': 'lab-pg-S3cret-4f9a',
        'comms_slack_webhook_url': 'https://hooks.example.com/services/T1/B2/xyz',
        'my_db_credential_ref': 'Planted-Pa55-by-reference',  # secret only because a password_var names it
        'incident_services': [{'name': 'db', 'postgres': {'password_var': 'my_db_credential_ref'}}],
        'api_token': 'tok',  # too short to redact literally
        'harmless': 'not-a-secret-value',
        'templated_password': '{{ vault_x }}',
        'secret_settings': {'a': 'nested-secret-value'},
    }
    found = SecretCollector().collect(variables)
    assert 'lab-pg-S3cret-4f9a' in found
    assert 'https://hooks.example.com/services/T1/B2/xyz' in found
    assert 'Planted-Pa55-by-reference' in found
    assert 'not-a-secret-value' not in found
    assert 'tok' not in found
    assert '{{ vault_x }}' not in found
    assert 'nested-secret-value' not in found  # "secret_settings" does not end like a secret name


def test_secret_collector_resolves_templates_and_survives_errors():
    def resolve(value):
        if value == '{{ boom }}':
            raise RuntimeError('undefined')
        return value.replace('{{ vault_x }}', 'resolved-secret-1')
    found = SecretCollector(name_patterns=[r'^custom_']).collect(
        {'db_password': '{{ vault_x }}', 'other_token': '{{ boom }}', 'custom_thing': 'custom-secret-2'}, resolve=resolve)
    assert found == {'resolved-secret-1', 'custom-secret-2'}


def test_secret_literals_skip_hostvars():
    found = secret_literals({'hostvars': {'h': {'x_password': 'hidden-in-hostvars'}}, 'x_password': 'top-level-pw'})
    assert found == {'top-level-pw'}


def test_resolve_incident_sources(tmp_path):
    assert resolve_incident({}, {}) == (None, None)
    fact_path = str(tmp_path / 'incs' / 'INC-A')
    assert resolve_incident({}, {'incident_id': 'INC-A', 'incident_path': fact_path}) == ('INC-A', fact_path)
    assert resolve_incident({'incident_id': 'INC-B', 'incident_dir': str(tmp_path)}, {'incident_id': 'INC-A'}) == \
        ('INC-B', str(tmp_path / 'INC-B'))
    # an id that differs from the fact's does not borrow the fact's path
    iid, path = resolve_incident({'incident_id': 'INC-C'}, {'incident_id': 'INC-A', 'incident_path': fact_path,
                                                            'incident_dir': str(tmp_path)})
    assert (iid, path) == ('INC-C', str(tmp_path / 'INC-C'))
    with pytest.raises(ValueError):
        resolve_incident({'incident_id': '../etc'}, {})


def test_writer_buffers_until_known_then_flushes_in_order(tmp_path):
    writer = TimelineWriter()
    writer.emit(files.make_event(None, 'play', 'first'))
    writer.emit(files.make_event(None, 'task', 'second'))
    assert not (tmp_path / 'INC-X').exists()
    assert writer.set_incident('INC-X', incident_dir=str(tmp_path)) is True
    writer.emit(files.make_event(None, 'task', 'third'))
    events = files.read_jsonl(str(tmp_path / 'INC-X' / 'timeline.jsonl'))
    assert [e['summary'] for e in events] == ['first', 'second', 'third']
    assert {e['incident_id'] for e in events} == {'INC-X'}
    assert writer.set_incident('INC-X', incident_dir=str(tmp_path)) is False
    assert writer.set_incident('not valid/id') is False


def test_writer_switching_incident_never_mixes(tmp_path):
    writer = TimelineWriter()
    writer.set_incident('INC-1', incident_dir=str(tmp_path))
    writer.emit(files.make_event(None, 'note', 'one'))
    writer.set_incident('INC-2', path=str(tmp_path / 'INC-2'))
    writer.emit(files.make_event(None, 'note', 'two'))
    one = files.read_jsonl(str(tmp_path / 'INC-1' / 'timeline.jsonl'))
    two = files.read_jsonl(str(tmp_path / 'INC-2' / 'timeline.jsonl'))
    assert [(e['incident_id'], e['summary']) for e in one] == [('INC-1', 'one')]
    assert [(e['incident_id'], e['summary']) for e in two] == [('INC-2', 'two')]


def test_writer_redacts_with_literals_learned_after_buffering(tmp_path):
    writer = TimelineWriter(redactor=Redactor(patterns=[r'CUSTOM-[0-9]+']))
    writer.emit(files.make_event(None, 'task', 'pw lab-pg-S3cret-4f9a id CUSTOM-42',
                                 data={'msg': 'https://u:p@db.example.com hooks.slack.com/services/T0/B0/abcdef',
                                       'password': 'x'}))
    writer.add_secrets({'lab-pg-S3cret-4f9a'})
    writer.set_incident('INC-R', incident_dir=str(tmp_path))
    raw = (tmp_path / 'INC-R' / 'timeline.jsonl').read_text()
    for secret in ('lab-pg-S3cret-4f9a', 'CUSTOM-42', 'u:p@', 'abcdef'):
        assert secret not in raw
    event = json.loads(raw)
    assert event['data']['password'] == REDACTED


def test_append_is_whole_lines_even_when_the_writer_is_killed(tmp_path):
    """A child appending in a loop is SIGKILLed; every line of the file parses."""
    path = tmp_path / 'INC-K' / 'timeline.jsonl'
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = textwrap.dedent('''
        import sys
        sys.path.insert(0, %r)
        from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files as f
        i = 0
        while True:
            f.append_jsonl(%r, f.make_event('INC-K', 'note', 'event %%d' %% i, data={'pad': 'x' * 3000}))
            i += 1
    ''' % (os.path.join(root, '.collections'), str(path)))
    proc = subprocess.Popen([sys.executable, '-c', code])
    try:
        import time
        deadline = time.time() + 10
        while time.time() < deadline and (not path.exists() or path.stat().st_size < 200000):
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files as f
    events = f.read_jsonl(str(path))  # a line torn by the kill (at most the last) is skipped
    assert len(events) > 10
    assert len(path.read_text().splitlines()) - len(events) <= 1
    numbers = [int(e['summary'].split()[1]) for e in events]
    assert numbers == list(range(len(numbers)))
    # the next writer cuts a torn tail off first: the file is whole lines again, every complete event kept
    f.append_jsonl(str(path), f.make_event('INC-K', 'note', 'event after the kill'))
    lines = path.read_text().splitlines()
    assert [json.loads(line)['summary'] for line in lines] == ['event %d' % n for n in numbers] + ['event after the kill']


def test_secret_urls_also_yield_their_token_parts():
    found = SecretCollector().collect({
        'comms_slack_webhook_url': 'https://hooks.slack.com/services/T0AB12CD/B0EF34GH/PlantedWebhookTok3n9x',
        'pagerduty_dsn': 'https://user:pa55w0rd@events.example.com/v2/enqueue?routing_key=R0uting12345'})
    for part in ('PlantedWebhookTok3n9x', 'T0AB12CD', 'B0EF34GH', 'user:pa55w0rd', 'R0uting12345'):
        assert part in found
    assert 'services' not in found and 'enqueue' not in found  # words without digits are not secrets


def test_variables_naming_secret_variables_make_those_secret():
    found = SecretCollector().collect({
        'comms_slack_webhook_url_var': 'ops_hook', 'ops_hook': 'http://127.0.0.1:9/hook/Tok3nValue99',
        'comms_pagerduty_routing_key_vars': {'oncall': 'pd_key_oncall'}, 'pd_key_oncall': 'R0utingKeyOncall',
        'comms_webhook_token_var': '', 'unrelated_var': 'harmless_name', 'harmless_name': 'visible-value-1'})
    assert {'http://127.0.0.1:9/hook/Tok3nValue99', 'Tok3nValue99', 'R0utingKeyOncall'} <= found
    assert 'visible-value-1' not in found


def test_resolve_incident_from_the_path_fact_when_the_id_var_is_empty(tmp_path):
    fact_path = str(tmp_path / 'INC-P')
    assert resolve_incident({}, {'incident_id': '', 'incident_path': fact_path}) == ('INC-P', fact_path)


def test_compact_task_event_shape():
    event = compact_task_event('INC-1', {'task': 'Probe', 'action': 'x.y.probe', 'play': 'Triage', 'role': None,
                                         'run': 'r1', 'task_id': 'u1'},
                               {'b': {'status': 'ok', 'duration_s': 1.0}, 'a': {'status': 'failed', 'duration_s': 2.0}})
    assert set(event) == {'ts', 'incident_id', 'kind', 'host', 'summary', 'data'}
    assert event['kind'] == 'task' and event['host'] is None
    assert event['summary'] == 'Probe: ok 1, changed 0, failed 1, unreachable 0, skipped 0'
    assert event['data']['counts'] == {'ok': 1, 'changed': 0, 'failed': 1, 'unreachable': 0, 'skipped': 0}
    assert 'status' not in event['data']  # a compact event has no status of its own (consumers key on that)
    one = compact_task_event(None, {'task': None, 'action': 'debug'}, {'h': {'status': 'changed', 'duration_s': None}})
    assert one['host'] == 'h' and one['summary'] == 'debug: ok 0, changed 1, failed 0, unreachable 0, skipped 0'


def test_task_results_buffer_groups_by_task_in_first_report_order():
    stamps = iter(['2026-11-27T03:00:0%d.000Z' % i for i in range(9)])
    buffer = TaskResults(now=lambda: next(stamps))
    assert len(buffer) == 0 and buffer.drain() == []
    buffer.add('t1', 'a', 'ok', duration=1.23456, task={'task': 'One'})
    buffer.add('t2', 'a', 'changed', task={'task': 'Two'})
    buffer.add('t1', 'b', 'failed', ignored=True, task={'task': 'ignored: taken from the first result'})
    buffer.add('t1', 'a', 'changed', duration=2.0)  # a host reporting again keeps its last result
    assert len(buffer) == 2
    one, two = buffer.drain(incident_id='INC-1')
    assert len(buffer) == 0
    assert one['data']['task'] == 'One' and one['data']['task_id'] == 't1' and one['incident_id'] == 'INC-1'
    assert one['data']['hosts'] == {'b': {'status': 'failed', 'duration_s': None, 'ignored': True},
                                    'a': {'status': 'changed', 'duration_s': 2.0}}
    assert one['ts'] == '2026-11-27T03:00:03.000Z'  # its last result
    assert two['data']['hosts'] == {'a': {'status': 'changed', 'duration_s': None}} and two['host'] == 'a'


def test_task_results_reads_old_events_unchanged():
    old = [task_event('INC-1', 'h%d' % i, 'Check', 'ok', duration=0.5, run_id='r') for i in range(3)]
    assert [(r['host'], r['status'], r['duration_s'], r['task']) for r in task_results(old)] == [
        ('h0', 'ok', 0.5, 'Check'), ('h1', 'ok', 0.5, 'Check'), ('h2', 'ok', 0.5, 'Check')]
    assert list(task_results([play_event('INC-1', 'start', 'P'), {'kind': 'task'}])) == [
        {'host': None, 'ts': None}]  # a malformed task event is still one (empty) result, never an error


def test_writer_emit_many_is_one_append(tmp_path):
    calls = []

    def append(path, records):
        calls.append(len(records))
        return files.append_jsonl(path, records)
    writer = TimelineWriter(append=append)
    writer.emit_many([files.make_event(None, 'task', 'a'), files.make_event(None, 'task', 'b')])
    assert calls == []  # kept until the incident is known
    writer.set_incident('INC-M', incident_dir=str(tmp_path))
    writer.emit_many([files.make_event(None, 'task', 'c', data={'hosts': {'h': {'status': 'ok'}}})])
    assert calls == [2, 1]
    assert [e['summary'] for e in files.read_jsonl(str(tmp_path / 'INC-M' / 'timeline.jsonl'))] == ['a', 'b', 'c']
