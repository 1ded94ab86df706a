"""The shipped Prometheus alert rules: promtool check + promtool unit tests, and the label contract the
rulebook relies on (severity, service, runbook_url -> docs/runbooks/<service>-runbook.md)."""
import os
import re
import shutil
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(ROOT, 'extensions/prometheus/rules/incident-response.yml')
TESTS = os.path.join(ROOT, 'extensions/prometheus/tests/incident-response.test.yml')
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


def test_promtool_unit_tests():
    out = subprocess.run([promtool(), 'test', 'rules', TESTS], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_pattern_of_the_issue_has_an_alert_and_a_unit_test():
    names = {r['alert'] for r in rules()}
    assert PATTERNS <= names
    with open(TESTS) as handle:
        tested = {t['alertname'] for case in yaml.safe_load(handle)['tests'] for t in case['alert_rule_test']}
    assert names <= tested, 'alerts without a promtool unit test: %s' % sorted(names - tested)


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
