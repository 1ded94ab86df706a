"""pg.vacuum held back (plugins/module_utils/areas/postgres.py evaluate_vacuum): dead tuples that vacuum cannot remove
while a session, a prepared transaction or a replication slot holds the xmin horizon, as a table; and the diagnosis
(rule_vacuum_held): kill_query of exactly the holder's pid when it is an application session idle in transaction,
else an escalation naming the holder and who owns it; never a restart of the database."""
import json

import pytest

from ansible_collections.sre.incident_response.plugins.module_utils.areas import postgres as area
from ansible_collections.sre.incident_response.plugins.module_utils.findings import validate
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import diagnosis as dx
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import safety

T = dict((k, v['default']) for k, v in area.THRESHOLD_SPEC.items())
LAB = dict(T, vacuum_dead_tuples_warn=10000, vacuum_xmin_holder_warn_seconds=30)
CTX = {'incident_id': 'INC-20261206-0400-aaaa', 'inventory': 'inventory/lab', 'playbook_dir': 'playbooks',
       'backends': ['app-backend'], 'backend_services': ['backend'], 'owners': {'db': 'platform'},
       'app_roles': {'db': ['app']}}


def session(pid=4242, user='app', app='report-export', state='idle in transaction', age=360.0, superuser=False):
    return {'kind': 'session', 'pid': pid, 'user': user, 'application': app, 'state': state, 'superuser': superuser,
            'xid_age': 5000, 'age_s': age, 'state_age_s': age - 1, 'name': None}


def prepared(gid='tx-billing-17', age=7200.0):
    return {'kind': 'prepared', 'pid': None, 'user': 'app', 'application': None, 'state': 'prepared', 'superuser': False,
            'xid_age': 9000, 'age_s': age, 'state_age_s': None, 'name': gid}


def slot(name='standby_a', state='inactive'):
    return {'kind': 'slot', 'pid': None, 'user': None, 'application': None, 'state': state, 'superuser': False,
            'xid_age': 12000, 'age_s': None, 'state_age_s': None, 'name': name}


def vac(dead=30000, holders=()):
    return {'databases': [{'database': 'app', 'xid_age': 100000}], 'autovacuum': 'on',
            'autovacuum_freeze_max_age': 200000000, 'xmin_holders': list(holders),
            'tables': [{'table': 'public.lab_vacuum', 'dead_tuples': dead, 'live_tuples': 30000,
                        'last_autovacuum_age_s': 20.0, 'last_vacuum_age_s': 25.0}]}


# (case, dead tuples, holders, thresholds, status, held back, holding pids)
TABLE = [
    ('no holder: dead tuples alone do not rate', 500000, [], T, 'ok', False, []),
    ('an idle snapshot past 5 min and many dead tuples', 150000, [session()], T, 'warn', True, [4242]),
    ('a young snapshot does not rate', 150000, [session(age=60)], T, 'ok', False, []),
    ('few dead tuples do not rate', 5000, [session()], T, 'ok', False, [4242]),
    ('the lab thresholds', 30000, [session(age=45)], LAB, 'warn', True, [4242]),
    ('a prepared transaction holds', 150000, [prepared()], T, 'warn', True, []),
    ('an inactive slot holds', 150000, [slot()], T, 'warn', True, []),
    ('an active slot does not count', 150000, [slot(state='active')], T, 'ok', False, []),
    ('an active statement holds', 150000, [session(state='active', app='etl')], T, 'warn', True, [4242]),
]


@pytest.mark.parametrize('case,dead,holders,t,status,held,pids', TABLE, ids=[c[0] for c in TABLE])
def test_vacuum_held_back_table(case, dead, holders, t, status, held, pids):
    f = area.evaluate_vacuum('app-db', 'db', vac(dead, holders), t)
    assert validate(f) == [], validate(f)
    assert f['status'] == status, (case, f['summary'])
    assert f['evidence']['held_back'] is held and f['evidence']['holding_pids'] == pids
    if held:
        assert f['summary'].startswith('vacuum held back: ') and 'public.lab_vacuum' in f['summary']
    if holders:
        assert 'xmin' in f['summary']


def test_the_holder_is_named_in_the_summary():
    f = area.evaluate_vacuum('app-db', 'db', vac(30000, [session(age=45)]), LAB)
    assert 'pid 4242 (app report-export, idle in transaction, transaction 45 s old)' in f['summary'], f['summary']


def test_text_from_the_database_is_cut_to_one_line():
    hostile = 'x\n{{ lookup("pipe", "id") }}' + 'y' * 300
    f = area.evaluate_vacuum('app-db', 'db', vac(30000, [session(app=hostile, age=45)]), LAB)
    holder = f['evidence']['xmin_holders'][0]
    assert '\n' not in holder['application'] and len(holder['application']) <= 70


def test_the_sql_collects_the_holders_in_the_same_query():
    assert 'backend_xmin' in area.SQL_VACUUM and 'pg_prepared_xacts' in area.SQL_VACUUM
    assert 'catalog_xmin' in area.SQL_VACUUM and 'AS xmin_holders' in area.SQL_VACUUM


def _diagnose(holders, t=None, ctx=None):
    t, ctx = t or LAB, ctx or CTX
    f = area.evaluate_vacuum('app-db', 'db', vac(150000, holders), t)
    return f, dx.diagnose([f], ctx)


def test_an_idle_app_snapshot_is_ended_by_kill_query_of_exactly_its_pid():
    f, doc = _diagnose([session(age=45)])
    top = doc['hypotheses'][0]
    assert top['pattern'] == 'gradual_degradation' and top['action'] == 'kill_query' and top['service'] == 'db'
    cmd = top['first_action']
    assert '-e remediation_action=kill_query' in cmd and '-e pg_terminate_pids=4242' in cmd
    assert "-e pg_terminate_states='idle in transaction'" in cmd and '-e pg_terminate_roles=app' in cmd
    assert '-e pg_terminate_min_age=44' in cmd
    assert top['symptom_checks'] == ['app-db/pg.vacuum'] and top['safety']['allowed'] is True
    assert 'report-export' in top['likely_cause']


@pytest.mark.parametrize('holder,named', [
    (prepared(), '"tx-billing-17"'),
    (slot(), '"standby_a"'),
    (session(superuser=True, user='postgres'), 'superuser'),
    (session(state='active', app='etl'), '"etl"'),
    (session(user='analyst'), '"analyst"'),
], ids=['prepared', 'slot', 'superuser', 'active statement', 'another role'])
def test_other_holders_are_escalated_naming_the_holder_and_owner(holder, named):
    f, doc = _diagnose([holder], T)
    top = doc['hypotheses'][0]
    assert top['action'] is None and 'investigate.yml' in top['first_action'] and 'remediate.yml' not in top['first_action']
    assert named in top['escalation'] and 'platform' in top['escalation'] and 'Do not restart db' in top['escalation']


def test_an_idle_session_next_to_a_slot_is_escalated_not_killed():
    f, doc = _diagnose([session(age=45), slot()])
    top = doc['hypotheses'][0]
    assert top['action'] is None and '"standby_a"' in top['escalation']


def test_without_the_service_app_roles_the_holder_is_escalated():
    f, doc = _diagnose([session(age=45)], ctx=dict(CTX, app_roles={}))
    assert doc['hypotheses'][0]['action'] is None


def test_not_held_back_no_hypothesis():
    f, doc = _diagnose([session(age=5)])
    assert doc['healthy'] is True and doc['hypotheses'] == []


def test_a_restart_of_the_database_is_refused():
    f = area.evaluate_vacuum('app-db', 'db', vac(30000, [session(age=45)]), LAB)
    verdict = safety.judge('restart', 'db', [f], CTX)
    assert verdict['allowed'] is False and verdict['kind'] == 'vacuum_held'
    assert safety.judge('kill_query', 'db', [f], CTX, ('vacuum_held',))['allowed'] is True


def test_holder_names_are_data_in_the_escalation():
    hostile = '{{ lookup("pipe", "id") }}$(id)'
    f, doc = _diagnose([prepared(gid=hostile)], T)
    text = json.dumps([doc['hypotheses'][0]['escalation'], doc['hypotheses'][0]['likely_cause']])
    assert '{{' not in text and '$(' not in text
