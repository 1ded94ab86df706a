"""pg.temp past its threshold (areas/postgres.py evaluate_temp, work_mem in the evidence) and pg.statements' top
statements by temporary blocks written: the diagnosis (rule_temp_spill) escalates naming the statement and work_mem;
never a restart, no automated action."""
import json

from ansible_collections.sre.incident_response.plugins.module_utils.areas import postgres as area
from ansible_collections.sre.incident_response.plugins.module_utils.findings import validate
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import diagnosis as dx
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import safety

T = dict((k, v['default']) for k, v in area.THRESHOLD_SPEC.items())
GIB = 1024 ** 3
CTX = {'incident_id': 'INC-20261206-0400-aaaa', 'inventory': 'inventory/lab', 'playbook_dir': 'playbooks',
       'owners': {'db': 'platform'}, 'app_roles': {'db': ['app']}}
EXT = {'version': '1.10', 'schema': 'public', 'database': 'app', 'server_version_num': 150005, 'on_search_path': True}
STATEMENTS = [{'queryid': '77', 'calls': 3, 'total_ms': 900.0, 'mean_ms': 300.0, 'rows': 3, 'query': 'SELECT 1'}]


def temp(bytes_):
    return [{'database': 'app', 'temp_files': 40, 'temp_bytes': bytes_, 'stats_reset_age_s': None, 'work_mem': '4MB'}]


def spill(query='SELECT * FROM orders ORDER BY note', blocks=262144):
    return [{'queryid': '-9', 'calls': 12, 'temp_blks_written': blocks, 'temp_bytes': blocks * 8192, 'query': query}]


def _findings(bytes_, top_temp):
    t = area.evaluate_temp('app-db', 'db', temp(bytes_), dict(T, temp_bytes_warn=GIB))
    s = area.evaluate_statements('app-db', 'db', EXT, STATEMENTS, temp_statements=top_temp)
    assert validate(t) == [] and validate(s) == [], (validate(t), validate(s))
    return t, s


def test_temp_past_the_threshold_warns_and_names_work_mem():
    t, s = _findings(2 * GIB, spill())
    assert t['status'] == 'warn' and '(work_mem 4MB)' in t['summary'] and t['evidence']['work_mem'] == '4MB'
    assert s['status'] == 'ok' and s['evidence']['top_temp'][0]['temp_blks_written'] == 262144
    ok, dummy = _findings(GIB // 2, spill())
    assert ok['status'] == 'ok' and 'work_mem' not in ok['summary']


def test_spill_is_an_escalation_naming_the_top_statement_and_work_mem():
    t, s = _findings(2 * GIB, spill())
    doc = dx.diagnose([t, s], CTX)
    top = doc['hypotheses'][0]
    assert top['action'] is None and 'investigate.yml' in top['first_action'] and 'area=db' in top['first_action']
    assert 'statement "SELECT \\x2a FROM orders ORDER BY note" (queryid "-9", 262144 temporary blocks' in top['escalation']
    assert '"4MB"' in top['escalation'] and 'platform' in top['escalation'] and 'Do not restart db' in top['escalation']
    assert safety.judge('restart', 'db', [t, s], CTX)['allowed'] is False


def test_without_pg_stat_statements_the_escalation_says_how_to_name_them():
    t = area.evaluate_temp('app-db', 'db', temp(2 * GIB), dict(T, temp_bytes_warn=GIB))
    absent = area.evaluate_statements('app-db', 'db', None, None)
    assert absent['evidence']['top_temp'] == []
    top = dx.diagnose([t, absent], CTX)['hypotheses'][0]
    assert 'install pg_stat_statements' in top['escalation']


def test_statement_text_is_data():
    hostile = "SELECT '{{ lookup(\"pipe\", \"id\") }}' || $(id)"
    t, s = _findings(2 * GIB, spill(query=hostile))
    top = dx.diagnose([t, s], CTX)['hypotheses'][0]
    text = json.dumps([top['escalation'], top['likely_cause']])
    assert '{{' not in text and '$(' not in text
