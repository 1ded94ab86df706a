"""Severity classification: explicit values, impact-fact rules, findings that raise it, the incident record."""
import json
import os

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import classify
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import incident as incident_logic
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files


def f(host, check, status, summary='x', service=None, **evidence):
    return {'host': host, 'check': check, 'status': status, 'summary': summary, 'service': service, 'evidence': evidence}


@pytest.mark.parametrize('facts,expected,reason', [
    ({'security_breach': True}, 'SEV1', 'security breach'),
    ({'data_loss': 'yes'}, 'SEV1', 'data loss'),
    ({'service_down': True}, 'SEV1', 'service down (complete outage)'),
    ({'core_feature_broken': True}, 'SEV2', 'core feature broken'),
    ({'feature_broken': True}, 'SEV3', 'non-critical feature broken'),
    ({'intermittent_errors': 'true'}, 'SEV3', 'intermittent errors'),
    ({'cosmetic': True}, 'SEV4', 'cosmetic bug or edge-case error'),
    ({'users_affected_pct': 100}, 'SEV1', '100% of users affected (all users)'),
    ({'users_affected_pct': 60}, 'SEV2', '60% of users affected (most users)'),
    ({'users_affected_pct': '25%'}, 'SEV3', '25% of users affected (some users)'),
    ({'users_affected_pct': 2}, 'SEV4', '2% of users affected (few users)'),
    ({'latency_factor': 8}, 'SEV2', 'severe latency (8x normal)'),
    ({'latency_factor': '3x'}, 'SEV3', 'degraded latency (3x normal)'),
])
def test_impact_rules(facts, expected, reason):
    sev, reasons = classify.classify_impact(facts)
    assert sev == expected
    assert reason in reasons


def test_impact_most_severe_rule_wins_and_only_its_reasons_are_kept():
    sev, reasons = classify.classify_impact({'cosmetic': True, 'latency_factor': 6, 'core_feature_broken': True})
    assert sev == 'SEV2'
    assert reasons == ['core feature broken', 'severe latency (6x normal)']


def test_impact_nothing_decides():
    assert classify.classify_impact({}) == (None, [])
    assert classify.classify_impact({'service_down': False, 'latency_factor': 1.1, 'users_affected_pct': 0}) == (None, [])


def test_thresholds_can_be_overridden():
    assert classify.classify_impact({'users_affected_pct': 40}, {'users_most_pct': 30})[0] == 'SEV2'
    with pytest.raises(ValueError, match='unknown severity threshold'):
        classify.classify_impact({'users_affected_pct': 40}, {'nope': 1})


@pytest.mark.parametrize('facts,message', [
    ({'bogus': True}, "unknown impact fact 'bogus'"),
    ({'service_down': 'maybe'}, 'service_down must be true or false'),
    ({'users_affected_pct': 'lots'}, 'users_affected_pct must be a number'),
    ({'users_affected_pct': 140}, 'must be 0..100'),
    ({'latency_factor': -1}, 'must not be negative'),
])
def test_impact_facts_are_validated(facts, message):
    with pytest.raises(ValueError, match=message):
        classify.normalize_facts(facts)


def test_explicit_severity_wins_over_facts_and_accepts_p_levels():
    decision = classify.decide(explicit='p3', facts={'service_down': True})
    assert decision['severity'] == 'SEV3'
    assert decision['source'] == 'explicit'
    assert decision['update_minutes'] == 120
    assert decision['channel'] == '#incidents-low'


def test_unknown_explicit_severity_raises():
    with pytest.raises(ValueError, match='SEV5'):
        classify.decide(explicit='SEV5')


@pytest.mark.parametrize('sev,response,update,channel,page', [
    ('SEV1', 5, 15, '#incidents', True),
    ('SEV2', 15, 30, '#incidents', True),
    ('SEV3', 60, 120, '#incidents-low', False),
    ('SEV4', 240, 1440, '#incidents-low', False),
])
def test_decision_carries_the_table_row(sev, response, update, channel, page):
    decision = classify.decide(explicit=sev)
    assert (decision['response_minutes'], decision['update_minutes'], decision['channel'], decision['page']) == \
        (response, update, channel, page)
    assert decision['escalation_text']


def test_default_is_provisional():
    decision = classify.decide()
    assert decision['severity'] == 'SEV4' and decision['source'] == 'default'
    assert 'provisional' in decision['reasons'][0]


def test_findings_raise_but_never_lower():
    raised = classify.decide(explicit='SEV3', floor='SEV2', floor_reasons=['crit on every backend'])
    assert raised['severity'] == 'SEV2' and raised['raised'] and raised['source'] == 'findings'
    kept = classify.decide(explicit='SEV1', floor='SEV3')
    assert kept['severity'] == 'SEV1' and not kept['raised']


def test_floor_all_backends_down_is_sev1():
    findings = [f('b1', 'health.container', 'crit', 'b1 exited', running=False),
                dict(f('b2', 'health.container', 'crit', 'b2 exited'), evidence={'status': 'exited'}),  # docker's state
                f('db', 'pg.connectivity', 'ok')]
    sev, reasons = classify.severity_from_findings(findings, ['b1', 'b2'])
    assert sev == 'SEV1'
    assert 'every backend is down' in reasons[0]


def test_floor_one_of_two_backends_down_is_not_sev1():
    findings = [f('b1', 'health.container', 'crit', running=False), f('b2', 'health.endpoint', 'ok')]
    assert classify.severity_from_findings(findings, ['b1', 'b2'])[0] == 'SEV3'


def test_floor_crit_on_every_backend_is_sev2():
    findings = [f('b1', 'app.errors', 'crit'), f('b2', 'health.endpoint', 'crit'), f('db', 'pg.locks', 'warn')]
    sev, reasons = classify.severity_from_findings(findings, ['b1', 'b2'])
    assert sev == 'SEV2'
    assert 'b1/app.errors' in reasons[0] and 'b2/health.endpoint' in reasons[0]


def test_floor_warn_only_and_healthy():
    assert classify.severity_from_findings([f('b1', 'app.errors', 'warn')], ['b1'])[0] == 'SEV4'
    assert classify.severity_from_findings([f('b1', 'app.errors', 'ok'), f('b1', 'x.y', 'unknown')], ['b1']) == (None, [])


# --- the incident record ---------------------------------------------------------------------------------

def test_generate_id_format():
    import datetime
    now = datetime.datetime(2026, 11, 27, 3, 12, tzinfo=datetime.timezone.utc)
    assert incident_logic.generate_id(now, 'a1b2') == 'INC-20261127-0312-a1b2'
    assert files.INCIDENT_ID_RE.match(incident_logic.generate_id())


def test_declare_then_load_appends(tmp_path):
    out = incident_logic.declare_or_load(incident_dir=str(tmp_path), title='Orders fail',
                                         impact_facts={'core_feature_broken': True},
                                         contacts={'incident_commander': {'name': 'Ann', 'handle': '@ann'}})
    assert out['created'] and out['events'] == ['declared', 'severity']
    inc = out['incident']
    assert inc['severity'] == 'SEV2' and inc['commander'] == 'Ann (@ann)'
    assert inc['policy']['update_minutes'] == 30 and inc['policy']['channel'] == '#incidents'
    path = out['path']
    assert os.path.isdir(os.path.join(path, 'messages'))
    stored = json.load(open(os.path.join(path, 'incident.json')))
    assert stored['id'] == inc['id'] and stored['title'] == 'Orders fail'

    again = incident_logic.declare_or_load(incident_id=inc['id'], incident_dir=str(tmp_path))
    assert not again['created'] and again['events'] == [] and again['incident']['severity'] == 'SEV2'

    raised = incident_logic.declare_or_load(incident_id=inc['id'], incident_dir=str(tmp_path),
                                            severity_floor='SEV1', severity_floor_reasons=['every backend is down'])
    assert raised['events'] == ['severity']
    events = files.read_jsonl(os.path.join(path, 'timeline.jsonl'))
    assert [e['kind'] for e in events] == ['declared', 'severity', 'severity']
    assert events[-1]['summary'].startswith('Severity raised from SEV2 to SEV1')
    assert events[-1]['data']['source'] == 'findings'


@pytest.mark.parametrize('kwargs,message', [
    ({'incident_id': 'bad/id'}, 'incident_id'),
    ({'severity': 'SEV9'}, 'severity'),
    ({'impact_facts': {'nope': 1}}, 'impact_facts'),
    ({'started_at': 'yesterday'}, 'started_at'),
    ({'incident_id': 'INC-X', 'must_exist': True}, 'no incident'),
])
def test_declare_rejects_bad_input_naming_the_variable(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        incident_logic.declare_or_load(incident_dir=str(tmp_path), **kwargs)
    assert not os.listdir(str(tmp_path))


def test_floor_errors_only_on_non_critical_paths_are_sev3():
    findings = [f('b1', 'app.errors', 'crit', '/api/payments: 8 errors', 'backend', failing_paths=['/api/payments']),
                f('b1', 'dependency.reachability', 'crit', 'payments down', 'payments')]
    sev, dummy = classify.severity_from_findings(findings, ['b1'], ['backend'], ['/api/orders', '/api/sessions'])
    assert sev == 'SEV3'
    findings[0]['evidence']['failing_paths'] = ['/api/payments', '/api/orders']
    assert classify.severity_from_findings(findings, ['b1'], ['backend'], ['/api/orders'])[0] == 'SEV2'


def test_floor_counts_only_the_backend_services_findings():
    findings = [f('b1', 'dependency.reachability', 'crit', 'payments down', 'payments')]
    assert classify.severity_from_findings(findings, ['b1'], ['backend'])[0] == 'SEV3'
    assert classify.severity_from_findings(findings, ['b1'])[0] == 'SEV2'


def test_filters():
    from ansible_collections.sre.incident_response.plugins.filter.incident import FilterModule
    flt = FilterModule().filters()
    assert flt['severity_info']('p2')['update_minutes'] == 30
    assert flt['severity_normalize']('1') == 'SEV1'
    assert flt['severity_max']('SEV3', 'SEV2') == 'SEV2' and flt['severity_max']('', 'SEV4') == 'SEV4'
    assert flt['severity_from_impact']({'data_loss': True}) == 'SEV1'
    assert flt['severity_from_impact']({}) == ''
    assert flt['severity_from_findings']([f('b1', 'app.errors', 'crit')], ['b1']) == 'SEV2'
    assert flt['pattern_info']('memory_growth')['symptom'] == 'OOM kills, restarts'
    lines = flt['hypothesis_lines']([{'rank': 1, 'pattern': 'backend_down', 'confidence': 0.95, 'likely_cause': 'crashed',
                                      'evidence': ['h/health.container'], 'first_action': 'ansible-playbook x'}])
    assert lines == ['1. backend_down (confidence 0.95): crashed [evidence: h/health.container] -> first action: ansible-playbook x']
    from ansible.errors import AnsibleFilterError
    with pytest.raises(AnsibleFilterError):
        flt['severity_normalize']('SEV7')
