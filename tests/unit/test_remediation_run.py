"""The engine's pure parts (plugins/action/remediation_run.py): which probe area re-runs a symptom check, and how
the re-run symptom checks are judged (VERIFIED means every one of them is ok)."""
from ansible_collections.sre.incident_response.plugins.action import remediation_run as run


def test_each_symptom_check_has_its_probe_area():
    assert run.area_of('pg.locks') == 'postgres'
    assert run.area_of('redis.connectivity') == 'redis'
    assert run.area_of('host.disk') == 'network'
    assert run.area_of('health.endpoint') is None
    assert run.EVIDENCE_RE.match('pg.connections') and not run.EVIDENCE_RE.match('host.diskio')


def test_judge_evidence_needs_every_check_re_run_and_ok():
    wanted = [{'host': 'app-db', 'check': 'pg.locks'}, {'host': 'app-db', 'check': 'pg.connections'}]
    ok = [{'host': 'app-db', 'check': 'pg.locks', 'status': 'ok'},
          {'host': 'app-db', 'check': 'pg.connections', 'status': 'ok'}]
    assert run.judge_evidence(wanted, ok) == (True, 'app-db/pg.locks ok, app-db/pg.connections ok')
    assert run.judge_evidence(wanted, ok[:1]) == (False, 'app-db/pg.locks ok, app-db/pg.connections not re-run')
    bad = [dict(ok[0], status='crit'), ok[1]]
    assert run.judge_evidence(wanted, bad)[0] is False
    assert run.judge_evidence([], []) == (True, '')


def test_settings_given_with_e_are_comma_separated_strings():
    assert run.as_list('4001', int) == [4001]
    assert run.as_list('4001,4008', int) == [4001, 4008]
    assert run.as_list([4001, '4008'], int) == [4001, 4008]
    assert run.as_list('idle in transaction') == ['idle in transaction']
    assert run.as_list('') == [] and run.as_list(None) == []
