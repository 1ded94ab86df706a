"""Unit tests of the incident directory contracts (pure Python)."""
import json
import multiprocessing
import os

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files as f
from ansible_collections.sre.incident_response.plugins.module_utils import redact as r
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import severity as s


def _append_many(path, n, tag):
    for i in range(n):
        f.append_jsonl(path, f.make_event('INC-1', 'note', '%s-%d' % (tag, i)))


def test_append_jsonl_concurrent_writers_never_tear_lines(tmp_path):
    path = str(tmp_path / 'timeline.jsonl')
    procs = [multiprocessing.Process(target=_append_many, args=(path, 50, 'p%d' % k)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    lines = open(path).read().splitlines()
    assert len(lines) == 200
    events = [json.loads(line) for line in lines]
    assert {e['kind'] for e in events} == {'note'}
    for k in range(4):
        mine = [e['summary'] for e in events if e['summary'].startswith('p%d-' % k)]
        assert mine == ['p%d-%d' % (k, i) for i in range(50)], 'order within one writer is kept'


def test_read_jsonl_skips_a_torn_last_line(tmp_path):
    path = tmp_path / 'timeline.jsonl'
    path.write_text('{"a": 1}\n{"b": 2}\n{"c": ')
    assert f.read_jsonl(str(path)) == [{'a': 1}, {'b': 2}]


def test_make_event_rejects_unknown_kind():
    with pytest.raises(ValueError, match='kind'):
        f.make_event('INC-1', 'gossip', 'x')
    event = f.make_event('INC-1', 'finding', 'x', host='h', data={'k': 1})
    assert set(event) == {'ts', 'incident_id', 'kind', 'host', 'summary', 'data'}
    assert event['ts'].endswith('Z')


def test_merge_findings_keeps_latest_per_host_and_check(tmp_path):
    path = str(tmp_path / 'findings.json')
    first = f.normalize_finding({'check': 'pg.locks', 'host': 'db1', 'status': 'crit', 'summary': '2 blocked'})
    f.update_findings(path, [first])
    later = f.normalize_finding({'check': 'pg.locks', 'host': 'db1', 'status': 'ok', 'summary': 'no  locks\n'})
    other = f.normalize_finding({'check': 'redis.memory', 'host': 'r1', 'status': 'warn', 'summary': '92 %'})
    merged = f.update_findings(path, [later, other])
    assert [(x['host'], x['check'], x['status']) for x in merged] == [('r1', 'redis.memory', 'warn'),
                                                                      ('db1', 'pg.locks', 'ok')]
    assert merged[1]['summary'] == 'no locks'
    assert json.load(open(path)) == merged


@pytest.mark.parametrize('bad, field', [
    ({'host': 'h', 'status': 'ok', 'summary': 's'}, 'check'),
    ({'check': 'pg.locks', 'host': 'h', 'status': 'fine', 'summary': 's'}, 'status'),
    ({'check': 'NoDot', 'host': 'h', 'status': 'ok', 'summary': 's'}, 'area.name'),
])
def test_normalize_finding_names_the_bad_field(bad, field):
    with pytest.raises(ValueError, match=field):
        f.normalize_finding(bad)


@pytest.mark.parametrize('incident_id, ok', [
    ('INC-20261127-0312-a1b2', True), ('inc_1.2', True), ('../etc', False), ('', False), ('a b', False),
    ('x' * 65, False)])
def test_incident_id_validation(incident_id, ok):
    assert f.valid_incident_id(incident_id) is ok
    if not ok:
        with pytest.raises(ValueError, match='incident_id'):
            f.incident_path('/tmp', incident_id)


def test_parse_ts_and_isoformat_round_trip():
    dt = f.parse_ts('2026-11-27T03:12:09.412Z')
    assert f.isoformat(dt) == '2026-11-27T03:12:09.412Z'
    assert f.parse_ts('2026-11-27T04:12:09+01:00') == f.parse_ts('2026-11-27T03:12:09Z')


def test_redaction_of_keys_patterns_and_literals():
    data = {
        'password': 'hunter2-long',
        'nested': [{'webhook_url': 'https://hooks.slack.com/services/T1/B2/abcdef123456'}],
        'msg': 'connect postgresql://app:s3cr3t-pw@127.0.0.1:5432/app failed; token=abcd1234efgh',
        'auth': 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload',
        'free': 'the value plain-literal-secret appears here',
        'count': 3,
        'enabled': True,
    }
    out = r.redact(data, literals=['plain-literal-secret'])
    text = json.dumps(out)
    for secret in ('hunter2-long', 'abcdef123456', 's3cr3t-pw', 'abcd1234efgh', 'eyJhbGciOiJIUzI1NiJ9', 'plain-literal-secret'):
        assert secret not in text
    assert out['count'] == 3 and out['enabled'] is True
    assert '127.0.0.1:5432/app' in out['msg']


def test_severity_table_and_normalize():
    assert s.normalize('p2') == 'SEV2' and s.normalize(3) == 'SEV3' and s.normalize('sev1') == 'SEV1'
    with pytest.raises(ValueError, match='SEV1'):
        s.normalize('SEV5')
    assert [s.info(x)['update_minutes'] for x in s.SEVERITIES] == [15, 30, 120, 1440]
    assert [s.info(x)['response_minutes'] for x in s.SEVERITIES] == [5, 15, 60, 240]
    assert s.info('SEV1')['channel'] == '#incidents' and s.info('SEV3')['channel'] == '#incidents-low'
    assert s.more_severe('SEV3', 'SEV2') == 'SEV2'


def test_files_are_private(tmp_path):
    path = str(tmp_path / 'x' / 'findings.json')
    f.write_json_atomic(path, [])
    assert oct(os.stat(path).st_mode & 0o777) == '0o640'


def test_append_cuts_a_torn_tail_before_writing(tmp_path):
    path = tmp_path / 'timeline.jsonl'
    path.write_text('{"n": 1}\n{"n": 2}\n{"n": 3, "summary": "half wri')
    f.append_jsonl(str(path), {'n': 4})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{'n': 1}, {'n': 2}, {'n': 4}]
    path.write_text('no newline at all')
    f.append_jsonl(str(path), {'n': 5})
    assert path.read_text() == '{"n": 5}\n'
