"""The shipped Prometheus alert rules: promtool check + promtool unit tests, and the label contract the
rulebook relies on (severity, service, runbook_url -> docs/runbooks/<service>-runbook.md), and that every *Down
rule fires on each way a dead target shows (down_signal), each case unit-tested."""
import glob
import os
import re
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.sre.incident_response.plugins.plugin_utils.comms import alerts

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(ROOT, 'extensions/prometheus/rules/incident-response.yml')
TESTS = sorted(glob.glob(os.path.join(ROOT, 'extensions/prometheus/tests/*.test.yml')))
PATTERNS = {'BackendDown', 'BackendHighErrorRate', 'BackendHighLatency', 'PostgresConnectionsNearMax',
            'PostgresLongTransaction', 'PostgresLockWaits', 'RedisMemoryNearMax', 'RedisRejectedWrites',
            'DiskFilling', 'CertificateExpiringSoon', 'DependencyDown'}


def promtool():
    path = shutil.which('promtool')
    assert path, 'promtool is missing: make setup (scripts/setup-system.sh installs the Debian package prometheus)'
    return path


def rules():
    with open(RULES) as handle:
        return [r for g in yaml.safe_load(handle)['groups'] for r in g['rules']]


def test_promtool_check_rules():
    out = subprocess.run([promtool(), 'check', 'rules', RULES], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def alert_tests():
    """Every alert_rule_test of every test file, as (file name, test case name, alert_rule_test)."""
    out = []
    for path in TESTS:
        with open(path) as handle:
            for case in yaml.safe_load(handle)['tests']:
                out.extend((os.path.basename(path), case.get('name', ''), t) for t in case['alert_rule_test'])
    return out


def test_promtool_unit_tests():
    assert len(TESTS) >= 2, TESTS
    out = subprocess.run([promtool(), 'test', 'rules'] + TESTS, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count('SUCCESS') == len(TESTS), out.stdout


def test_every_pattern_of_the_issue_has_an_alert_and_a_unit_test():
    names = {r['alert'] for r in rules()}
    assert PATTERNS <= names
    tested = {t['alertname'] for dummy, dummy, t in alert_tests()}
    assert names <= tested, 'alerts without a promtool unit test: %s' % sorted(names - tested)


DOWN_RULES = [r for r in rules() if r['alert'].endswith('Down')]
# The job and the exporter metric each *Down rule reads besides up (the backend is scraped directly: up is its metric).
JOB = {'BackendDown': 'backend', 'PostgresDown': 'postgres', 'RedisDown': 'redis', 'DependencyDown': 'dependencies'}
EXPORTER_METRIC = {'BackendDown': None, 'PostgresDown': 'pg_up', 'RedisDown': 'redis_up', 'DependencyDown': 'probe_success'}
# Services as in inventory (incident_services), as tests/unit/test_alerts.py: the hosts the intake triages.
HOSTS_SERVICES = {
    'app-backend': [{'name': 'backend', 'depends_on': ['db', 'redis', 'payments']},
                    {'name': 'proxy', 'depends_on': ['backend']}],
    'app-db': [{'name': 'db'}],
    'app-redis': [{'name': 'redis'}],
    'other': [{'name': 'batch'}],
}


def test_the_down_rules_are_known():
    assert sorted(r['alert'] for r in DOWN_RULES) == sorted(EXPORTER_METRIC)


@pytest.mark.parametrize('rule', DOWN_RULES, ids=lambda r: r['alert'])
def test_down_rule_fires_on_every_signal_of_a_dead_target(rule):
    """A target that is down may show as its exporter's metric at 0, as a failed scrape (up 0: the postgres
    exporter fails its scrape while PostgreSQL is stopped, pg_up is then never 0), as an exporter that answers
    without its metric, or as no up series at all. The rule covers each, labelled down_signal."""
    expr = ' '.join(rule['expr'].split())
    job = JOB[rule['alert']]
    metric = EXPORTER_METRIC[rule['alert']]
    wanted = {'scrape_failed': 'up{job="%s"} == 0' % job, 'job_missing': 'absent(up{job="%s"})' % job}
    if metric:
        wanted['reported_down'] = '%s{job="%s"} == 0' % (metric, job)
        wanted['series_missing'] = 'up{job="%s"} == 1 unless on (job, instance) %s{job="%s"}' % (job, metric, job)
    for signal, part in wanted.items():
        assert part in expr, (signal, expr)
        assert '"down_signal", "%s"' % signal in expr, (signal, expr)
    assert set(re.findall(r'"down_signal", "([a-z_]+)"', expr)) == set(wanted), expr

    fired = {}
    quiet = False
    for dummy, case, test in alert_tests():
        if test['alertname'] != rule['alert']:
            continue
        quiet = quiet or (case.startswith('healthy') and test['exp_alerts'] == [])
        for alert in test['exp_alerts']:
            fired.setdefault(alert['exp_labels'].get('down_signal'), []).append(alert['exp_labels'])
    assert quiet, '%s: no promtool test that healthy series fire nothing' % rule['alert']
    assert set(wanted) <= set(fired), '%s: signals without a promtool test: %s' % (rule['alert'], sorted(set(wanted) - set(fired)))
    for signal, labels_list in fired.items():
        for labels in labels_list:
            # the intake reads `service` (alerts.triage_hosts): every signal maps to the rule's service and its hosts
            assert labels['service'] == rule['labels']['service'], (signal, labels)
            pattern, reason = alerts.triage_hosts(dict(labels, alertname=rule['alert']), HOSTS_SERVICES)
            assert pattern != 'all' and reason.startswith('service %s' % labels['service']), (signal, pattern, reason)
            assert labels['job'] == job, labels
            assert ('instance' in labels) == (signal != 'job_missing'), labels


@pytest.mark.parametrize('rule', rules(), ids=lambda r: r['alert'])
def test_labels_and_runbook(rule):
    labels, annotations = rule['labels'], rule['annotations']
    assert labels['severity'] in ('critical', 'warning')
    assert labels['service']
    assert annotations['summary'] and annotations['runbook_url']
    if '{{' not in labels['service']:
        assert annotations['runbook_url'] == 'docs/runbooks/%s-runbook.md' % labels['service']
    match = re.match(r'^docs/runbooks/([a-z]+)-runbook\.md$', annotations['runbook_url'])
    if match:
        assert os.path.exists(os.path.join(ROOT, annotations['runbook_url']))
