"""The rulebooks validate against ansible-rulebook's own schema and run the collection's alert playbook
(run_playbook) or its AWX job template (run_job_template) for every event of the alertmanager source, one at a
time, without ever copying event data into extra vars (ansible-playbook templates every extra var)."""
import importlib.util
import json
import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULEBOOKS = os.path.join(ROOT, 'extensions', 'eda', 'rulebooks')


def load(name):
    with open(os.path.join(RULEBOOKS, name)) as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize('name', ['incident_response.yml', 'incident_response_awx.yml'])
def test_rulebook_matches_the_ansible_rulebook_schema(name):
    validators = pytest.importorskip('ansible_rulebook.validators')
    validators.Validate.rulebook(load(name))


SPEC = importlib.util.spec_from_file_location(
    'alertmanager_source', os.path.join(ROOT, 'extensions/eda/plugins/event_source/alertmanager.py'))
src = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(src)


@pytest.mark.parametrize('name', ['incident_response.yml', 'incident_response_awx.yml'])
def test_rulebook_matches_every_event_of_the_source_runs_sequentially_and_passes_no_event_data(name):
    ruleset = load(name)[0]
    assert list(ruleset['sources'][0])[-1] == 'sre.incident_response.alertmanager'
    # one run at a time: never two triages of one alert group at once (docs/alerts.md, coalescing)
    assert ruleset['execution_strategy'] == 'sequential'
    assert [r['condition'] for r in ruleset['rules']] == ['event.format == "%s"' % src.EVENT_FORMAT]
    # firing and resolved events alike carry the format
    coalescer = src.Coalescer()
    for status in ('firing', 'resolved'):
        coalescer.offer({'groupKey': status, 'status': status, 'alerts': [
            {'status': status, 'fingerprint': 'f', 'labels': {'alertname': 'A'}}]})
        key, event = coalescer.peek()
        coalescer.take(key)
        assert event['format'] == src.EVENT_FORMAT and event['status'] == status
    actions = json.dumps([r['action'] for r in ruleset['rules']])
    assert not re.search(r'\bevents?\b', actions), 'event data must not be copied into extra vars: ' + actions


def test_local_rulebook_runs_the_alert_playbook():
    ruleset = load('incident_response.yml')[0]
    assert ruleset['sources'][0]['sre.incident_response.alertmanager']['host'].startswith("{{ alert_listen_host | default('127.0.0.1')")
    for rule in ruleset['rules']:
        action = rule['action']['run_playbook']
        assert action['name'] == 'sre.incident_response.alert'
        assert action['extra_vars']['incident_dir'] == '{{ incident_dir }}'
        assert 'alert_throttle_minutes' in action['extra_vars']


def test_awx_rulebook_runs_the_job_template_that_awx_configure_creates():
    ruleset = load('incident_response_awx.yml')[0]
    action = ruleset['rules'][0]['action']['run_job_template']
    with open(os.path.join(ROOT, 'playbooks', 'awx_configure.yml')) as handle:
        plays = yaml.safe_load(handle)
    templates = [t for play in plays for t in (play.get('vars') or {}).get('awx_configure_templates', [])]
    prefix = [play['vars']['awx_configure_prefix'] for play in plays if 'awx_configure_prefix' in (play.get('vars') or {})][0]
    alert = [t for t in templates if t['playbook'] == 'playbooks/alert.yml']
    assert alert and alert[0]['ask_variables_on_launch'] is True
    assert "default('%s%s')" % (prefix, alert[0]['name']) in action['name']
