"""The findings contract (plugins/module_utils/findings.py): check names, statuses and their order, evidence keys.

(a) the diagnosis and the classification read only check names and evidence keys the contract declares
    (statically: every literal they use; at run time: STRICT, on for every unit test, see tests/conftest.py);
(b) what the probes produce conforms: the findings captured from real triage runs on the lab, and every
    finding the probes' unit tests build (validated by tests/conftest.py after each of those tests);
(c) one status order: worst, rank, worst-first sort and counts, used by every module that orders findings;
(d) docs/reference/contracts.md lists the same check names, statuses and patterns as the code.
"""
import ast
import glob
import json
import os
import re

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import classify
from ansible_collections.sre.incident_response.plugins.plugin_utils.render import console as console_mod
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import diagnosis as dx
from ansible_collections.sre.incident_response.plugins.module_utils import findings as F
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files as incident_files
from ansible_collections.sre.incident_response.plugins.module_utils import probe_common
from ansible_collections.sre.incident_response.plugins.module_utils.areas import (
    changes as area_changes,
    health as area_health)
from ansible_collections.sre.incident_response.plugins.module_utils.areas import (
    app_logs as area_app_logs,
    network as area_network,
    postgres as area_postgres,
    redis as area_redis)
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import prom_trend

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE_UTILS = os.path.join(ROOT, 'plugins', 'module_utils')
DIAGNOSIS = os.path.join(ROOT, 'plugins', 'plugin_utils', 'diagnosis')  # the rules: diagnosis, classify, severity
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures')
TRIAGE = sorted(glob.glob(os.path.join(FIXTURES, 'triage', '*.json')))
# A string that reads like a check name (area.name), not a file name.
CHECK_LIKE = re.compile(r'^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$')
FILE_SUFFIXES = ('yml', 'yaml', 'json', 'jsonl', 'md', 'txt', 'py', 'j2', 'log')
FINDING_FIELDS = ('check', 'host', 'service', 'status', 'summary', 'evidence', 'ts')


def source(name):
    path = os.path.join(DIAGNOSIS, name)
    with open(path if os.path.exists(path) else os.path.join(MODULE_UTILS, name), encoding='utf-8') as handle:
        return ast.parse(handle.read(), name)


def constants(node):
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def read_keys(tree):
    """Literal keys the code reads: x.get('k'), x['k'], and the key tuples passed to _any / _values / _text."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == 'get' \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            out.append(node.args[0].value)
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            out.append(node.slice.value)
    return out, helper_keys(tree)


def helper_keys(tree):
    """Keys named in calls of the evidence helpers: _any(f, names), _values(f, names), findings.require(check, names)."""
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, 'id', None)
        if name in ('_any', '_values') and len(node.args) >= 2:
            out.extend(constants(node.args[1]))
        elif name == 'require' and len(node.args) >= 2:
            out.extend(constants(node.args[1]))
    return out


ALL_EVIDENCE_NAMES = set().union(*(F.evidence_names(c) for c in F.CHECKS))


# --- (a) the diagnosis reads only what probes produce ---------------------------------------------------------

@pytest.mark.parametrize('name', ['diagnosis.py', 'classify.py', 'severity.py'])
def test_every_check_name_the_rules_use_is_in_the_contract(name):
    names = [s for s in constants(source(name)) if CHECK_LIKE.match(s) and s.rsplit('.', 1)[1] not in FILE_SUFFIXES]
    unknown = sorted({s for s in names if not F.is_known_check(s)})
    assert not unknown, '%s names checks no probe emits: %s' % (name, unknown)


def test_the_rules_use_the_check_names_they_are_about():
    """The scan above must see the rules' check names (else it proves nothing)."""
    names = {s for s in constants(source('diagnosis.py')) if CHECK_LIKE.match(s)}
    assert {'deploy.recent', 'app.errors', 'pg.connections', 'redis.memory', 'host.disk', 'net.tls_expiry'} <= names


def test_every_evidence_key_the_diagnosis_names_is_produced_by_a_probe():
    gets, helpers = read_keys(source('diagnosis.py'))
    assert helpers and gets
    not_evidence = sorted(set(helpers) - ALL_EVIDENCE_NAMES)
    assert not not_evidence, 'diagnosis.py matches evidence keys no probe emits: %s' % not_evidence
    vocabulary = (set(FINDING_FIELDS) | set(dx.CONTEXT_KEYS) | set(dx.DOCUMENT_FIELDS) | set(dx.HYPOTHESIS_FIELDS)
                  | ALL_EVIDENCE_NAMES)
    unknown = sorted(set(gets) - vocabulary)
    assert not unknown, ('diagnosis.py reads keys that are neither finding fields, context keys (CONTEXT_KEYS), '
                         'fields of its document (DOCUMENT_FIELDS, HYPOTHESIS_FIELDS) nor evidence keys of '
                         'findings.EVIDENCE: %s' % unknown)


def test_every_evidence_key_the_classification_reads_is_produced_by_a_probe():
    gets, helpers = read_keys(source('classify.py'))
    vocabulary = (set(FINDING_FIELDS) | set(classify.IMPACT_FACTS) | set(classify.DEFAULT_THRESHOLDS)
                  | ALL_EVIDENCE_NAMES)
    unknown = sorted(set(gets + helpers) - vocabulary)
    assert not unknown, 'classify.py reads keys no probe emits: %s' % unknown


def test_the_key_scan_sees_a_key_no_probe_emits():
    tree = ast.parse("def r(f):\n    return _any(f, ('mem_pct',)) or _ev(f).get('in_window') or _ev(f)['image_changed']\n")
    gets, helpers = read_keys(tree)
    assert helpers == ['mem_pct'] and sorted(gets) == ['image_changed', 'in_window']
    assert not {'mem_pct', 'in_window', 'image_changed'} & ALL_EVIDENCE_NAMES


def test_strict_reads_refuse_keys_the_check_does_not_produce():
    assert F.STRICT, 'tests/conftest.py turns STRICT on for the unit tests'
    resources = {'check': 'container.resources', 'host': 'h', 'status': 'crit', 'summary': 'memory 95%',
                 'evidence': {'memory_pct': 95.0, 'network': {'rx_bytes': 1}}}
    assert dx._any(resources, ('memory_pct',))
    with pytest.raises(F.ContractError, match='mem_pct'):
        dx._any(resources, ('mem_pct',))
    with pytest.raises(F.ContractError, match='restart_count'):
        dx._values(resources, ('restart_count',))  # a health.container key, not a container.resources one
    view = F.evidence(resources)
    assert view.get('memory_pct') == 95.0 and view['network'].get('rx_bytes') == 1
    with pytest.raises(F.ContractError):
        view.get('memory_percent')
    with pytest.raises(F.ContractError):
        view['network'].get('rx_packets')
    deploy = {'check': 'deploy.recent', 'host': 'h', 'status': 'warn', 'summary': 's',
              'evidence': {'deploys': [{'image': 'a:2', 'previous_image': 'a:1', 'deployed_in_window': True}]}}
    assert F.evidence(deploy)['deploys'][0].get('previous_image') == 'a:1'
    with pytest.raises(F.ContractError):
        F.evidence(deploy)['deploys'][0].get('previous_tag')
    with pytest.raises(F.ContractError):
        F.evidence(deploy).get('in_window')
    # a check outside the contract (a user's own finding) is not checked
    assert F.evidence({'check': 'my.check', 'evidence': {'x': 1}}).get('y') is None


def test_strict_is_off_outside_the_tests(monkeypatch):
    monkeypatch.setattr(F, 'STRICT', False)
    finding = {'check': 'container.resources', 'evidence': {'memory_pct': 95.0}}
    assert F.evidence(finding).get('mem_pct') is None and not isinstance(F.evidence(finding), F._Strict)
    F.require('container.resources', 'mem_pct')


@pytest.mark.parametrize('path', TRIAGE, ids=[os.path.basename(p) for p in TRIAGE])
def test_diagnosis_of_real_findings_reads_only_declared_keys(path):
    """STRICT is on: a rule that reads an undeclared key of a real finding raises ContractError here."""
    with open(path) as handle:
        findings = json.load(handle)
    ctx = {'backends': ['app-backend'], 'backend_services': ['backend'], 'backend_service': 'backend',
           'endpoints': ['/api/orders', '/api/products', '/api/sessions', '/api/payments']}
    dx.diagnose(findings, ctx)
    for finding in findings:  # each finding alone, and without its neighbours: more rule branches
        dx.diagnose([finding], ctx)
        dx.diagnose([f for f in findings if f is not finding], ctx)
        classify.down_strength(finding, ['backend'])


def test_change_checks_are_the_real_ones_and_not_symptoms():
    assert dx.CHANGE_CHECKS == F.CHANGE_CHECKS == ('deploy.recent', 'host.changes')
    changes = {'check': 'host.changes', 'host': 'h', 'status': 'warn', 'summary': '3 package changes',
               'evidence': {'packages': [{'package': 'openssl'}]}}
    assert not dx.is_symptom(changes)
    doc = dx.diagnose([changes], {})
    assert doc['healthy'] is True and doc['hypotheses'] == [] and doc['affected_services'] == []


# --- (b) what the probes produce conforms ---------------------------------------------------------------------

def _oncall_findings():
    with open(os.path.join(FIXTURES, 'oncall', 'bad_deploy_triage.json')) as handle:
        events = json.load(handle)
    return [f for e in events for f in ((e.get('result') or {}).get('findings') or [])]


def test_findings_of_real_triage_runs_conform():
    seen = set()
    problems = []
    for path in TRIAGE:
        with open(path) as handle:
            for finding in json.load(handle):
                seen.add(finding['check'])
                problems.extend('%s: %s' % (os.path.basename(path), p) for p in F.validate(finding))
    oncall = _oncall_findings()
    assert oncall
    for finding in oncall:
        seen.add(finding['check'])
        problems.extend('oncall: %s' % p for p in F.validate(finding))
    assert not problems, problems
    assert len(seen) >= 18, sorted(seen)  # nearly every check of the contract is in a capture


def test_validate_names_what_breaks_the_contract():
    good = F.make_finding('redis.memory', 'r1', 'redis', 'crit', '99%', {'used_memory': 1, 'top_prefixes': [{'prefix': 'a:*'}]})
    assert F.validate(good) == []
    assert F.validate(dict(good, check='redis.mem')) == ["check 'redis.mem' is not in the contract"]
    assert F.validate(dict(good, status='bad')) == ["status 'bad' is not one of ok, warn, crit, unknown"]
    assert F.validate(dict(good, evidence={'used_mem': 1})) == ['redis.memory: evidence.used_mem is not a declared evidence key']
    nested = dict(good, evidence={'top_prefixes': [{'prefix': 'a:*', 'size': 3}]})
    assert F.validate(nested) == ['redis.memory: evidence.top_prefixes[].size is not a declared evidence key']
    combined = probe_common.combine([good, dict(good, service='cache', evidence={'maxmem': 1})])
    assert F.validate(combined[0]) == ['redis.memory: services.cache.evidence.maxmem is not a declared evidence key']
    assert F.validate(F.make_finding('trend.queue_depth', 'h', 's', 'ok', 'flat', {'growth_pct': 0})) == []
    assert F.validate(F.make_finding('trend.queue_depth', 'h', 's', 'ok', 'flat', {'slope': 0}))


def test_every_probe_builds_its_findings_through_make_finding():
    """The probes' unit tests are validated through findings.recording() (tests/conftest.py): that sees only
    findings built by make_finding, so every probe must build them there."""
    logs = {'error_rate_warn_pct': 5, 'error_rate_crit_pct': 25, 'min_errors': 3, 'error_lines_warn': 10,
            'error_lines_crit': 100, 'latency_p95_warn_ms': 1000, 'latency_p95_crit_ms': 5000}
    with F.recording() as built:
        area_postgres.evaluate_connectivity('db1', 'db', None, None, error='refused')
        area_redis.evaluate_connectivity('r1', 'redis', {}, error='refused')
        area_health.endpoint_findings([{'host': 'h', 'service': 's', 'url': 'http://x/health'}],
                                      [{'status': 200, 'latency_ms': 3.0}])
        area_network.evaluate_disk('h', None, [], [], 90, 95)
        area_changes.evaluate_host_changes('h', [], [], '15m', ['/etc'])
        area_app_logs.evaluate(area_app_logs.analyze([]), 'h', 'backend', '15m', logs, 'test')
        prom_trend.probe_service('h', {'name': 'backend', 'kind': 'backend', 'prometheus': {'url': 'http://p:9090'}},
                                 query_fn=lambda *a, **k: ([(0, 1.0), (60, 1.0)], {'step': '60s'}))
    assert [f['check'] for f in built] == ['pg.connectivity', 'redis.connectivity', 'health.endpoint', 'host.disk',
                                           'host.changes', 'app.errors', 'trend.memory', 'trend.latency']
    assert all(F.validate(f) == [] for f in built), [F.validate(f) for f in built]


# --- (c) one status order ------------------------------------------------------------------------------------

def test_status_order_and_worst():
    assert F.STATUSES == ('ok', 'warn', 'crit', 'unknown')
    assert sorted(F.STATUSES, key=F.rank) == ['ok', 'unknown', 'warn', 'crit']
    assert F.worst([]) == 'ok'
    assert F.worst(['ok', 'unknown']) == 'unknown'
    assert F.worst(['ok', 'unknown', 'warn']) == 'warn'
    assert F.worst(['unknown', 'crit', 'warn']) == 'crit'
    assert F.worst(['ok', 'bogus']) == 'ok'  # a status outside the contract never wins
    assert F.rank('bogus') == F.rank('ok') == 0


def test_worst_first_sort_and_counts():
    items = [{'status': 'ok', 'host': 'a', 'check': 'x.y'}, {'status': 'bogus', 'host': 'a', 'check': 'x.y'},
             {'status': 'warn', 'host': 'b', 'check': 'x.y'}, {'status': 'crit', 'host': 'c', 'check': 'x.y'},
             {'status': 'unknown', 'host': 'a', 'check': 'x.y'}, {'status': 'crit', 'host': 'a', 'check': 'z.z'},
             {'status': 'crit', 'host': 'a', 'check': 'a.a'}]
    ordered = sorted(items, key=F.worst_first)
    assert [(i['status'], i['host'], i['check']) for i in ordered] == [
        ('crit', 'a', 'a.a'), ('crit', 'a', 'z.z'), ('crit', 'c', 'x.y'), ('warn', 'b', 'x.y'), ('unknown', 'a', 'x.y'),
        ('ok', 'a', 'x.y'), ('bogus', 'a', 'x.y')]
    assert F.counts(items) == {'ok': 1, 'warn': 1, 'crit': 3, 'unknown': 1, 'bogus': 1}
    assert F.counts([]) == {'ok': 0, 'warn': 0, 'crit': 0, 'unknown': 0}


def test_every_module_orders_findings_the_contract_way():
    items = [{'status': s, 'host': h, 'check': c, 'summary': s} for s, h, c in
             (('ok', 'a', 'pg.locks'), ('warn', 'b', 'pg.locks'), ('crit', 'c', 'pg.locks'), ('unknown', 'd', 'pg.locks'),
              ('crit', 'a', 'pg.disk'))]
    expected = sorted(items, key=F.worst_first)
    assert [(i['status'], i['host']) for i in expected] == [('crit', 'a'), ('crit', 'c'), ('warn', 'b'), ('unknown', 'd'),
                                                            ('ok', 'a')]
    assert incident_files.merge_findings([], items) == expected
    assert incident_files.STATUSES is F.STATUSES
    from ansible_collections.sre.incident_response.plugins.filter import incident as filters
    assert filters.finding_lines(items, statuses=F.STATUSES) == [
        '%s %s/%s: %s' % (i['status'].upper(), i['host'], i['check'], i['status']) for i in expected]
    console = console_mod.Console(show_ok=True)
    lines = [text for text, style in console._findings(items)]
    assert [line.split()[0] for line in lines] == [i['status'].upper() for i in expected]
    assert dx.diagnose(items, {})['counts'] == F.counts(items)


def test_a_finding_is_printed_one_way():
    """'CRIT host/check: summary' is written by findings.finding_line for the filter, the triage decision and the
    console (which pads the status to line them up)."""
    from ansible_collections.sre.incident_response.plugins.filter import incident as filters
    from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import triage
    items = [{'status': 'warn', 'host': 'db-1', 'check': 'pg.locks', 'summary': '2 sessions blocked'},
             {'status': 'crit', 'host': 'app-1', 'check': 'app.errors', 'summary': '/api/orders: 20 errors'}]
    expected = ['CRIT app-1/app.errors: /api/orders: 20 errors', 'WARN db-1/pg.locks: 2 sessions blocked']
    assert F.finding_lines(items) == expected == filters.finding_lines(items) == triage.finding_lines(items)
    assert [text for text, style in console_mod.Console()._findings(items)] == [
        '   CRIT    app-1/app.errors: /api/orders: 20 errors', '   WARN    db-1/pg.locks: 2 sessions blocked']
    assert F.finding_line(items[0], width=7) == 'WARN    db-1/pg.locks: 2 sessions blocked'
    from ansible_collections.sre.incident_response.plugins.plugin_utils.comms import comms
    assert comms.summarize_findings(None, items) == '; '.join(expected)


def test_the_status_order_is_written_once():
    """No module keeps its own status ranking: a dict literal whose keys are statuses and values numbers."""
    offenders = []
    for path in glob.glob(os.path.join(ROOT, 'plugins', '**', '*.py'), recursive=True):
        if path.endswith(os.path.join('module_utils', 'findings.py')):
            continue
        with open(path, encoding='utf-8') as handle:
            tree = ast.parse(handle.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict) and len(node.keys) >= 2 and all(
                    isinstance(k, ast.Constant) and k.value in F.STATUSES for k in node.keys) and all(
                    isinstance(v, ast.Constant) and isinstance(v.value, int) for v in node.values):
                offenders.append('%s:%d' % (os.path.relpath(path, ROOT), node.lineno))
    assert not offenders, 'rank statuses with findings.STATUS_RANK / worst / worst_first: %s' % offenders


def _module_level_names(path):
    with open(path, encoding='utf-8') as handle:
        tree = ast.parse(handle.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    yield target.id, node


def test_each_status_name_has_one_meaning_and_one_home():
    """`STATUSES` is the findings' statuses and nothing else; the incident's communicated status (Investigating ..
    Resolved) is INCIDENT_STATUSES, defined once (plugin_utils/incident/incident.py)."""
    homes = {}
    for path in glob.glob(os.path.join(ROOT, 'plugins', '**', '*.py'), recursive=True) + \
            glob.glob(os.path.join(ROOT, 'extensions', '**', '*.py'), recursive=True):
        for name, node in _module_level_names(path):
            if name in ('STATUSES', 'INCIDENT_STATUSES'):
                homes.setdefault(name, []).append(os.path.relpath(path, ROOT))
    assert homes == {'STATUSES': ['plugins/module_utils/findings.py'],
                     'INCIDENT_STATUSES': ['plugins/plugin_utils/incident/incident.py']}, homes


# --- (d) the reference says the same ---------------------------------------------------------------------------

def _contracts_doc():
    with open(os.path.join(ROOT, 'docs', 'reference', 'contracts.md'), encoding='utf-8') as handle:
        return handle.read()


def _paragraph(doc, label):
    start = doc.index(label)
    end = doc.find('\n\n', start)
    return doc[start:end if end >= 0 else len(doc)]


def test_the_reference_lists_the_check_names_of_the_code():
    listed = re.findall(r'`([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)`', _paragraph(_contracts_doc(), 'Check names:'))
    assert len(listed) == len(set(listed))
    assert set(listed) == set(F.CHECKS), ('in the doc only: %s; in findings.py only: %s'
                                          % (sorted(set(listed) - set(F.CHECKS)), sorted(set(F.CHECKS) - set(listed))))
    assert '`trend.<name>`' in _paragraph(_contracts_doc(), 'Check names:')


def test_the_reference_lists_the_statuses_and_patterns_of_the_code():
    doc = _contracts_doc()
    assert re.findall(r'`([a-z]+)`', _paragraph(doc, 'Finding statuses:')) == list(F.STATUSES)
    assert tuple(re.findall(r'`([a-z_]+)`', _paragraph(doc, 'Pattern names:'))) == dx.PATTERNS
