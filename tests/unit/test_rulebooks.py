"""The rulebooks validate against ansible-rulebook's own schema and run the collection's alert playbook
(run_playbook) or its AWX job template (run_job_template) for both firing and resolved alerts."""
import os

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


def test_local_rulebook_runs_the_alert_playbook_for_firing_and_resolved_alerts():
    ruleset = load('incident_response.yml')[0]
    assert list(ruleset['sources'][0])[-1] == 'sre.incident_response.alertmanager'
    assert ruleset['sources'][0]['sre.incident_response.alertmanager']['host'].startswith("{{ alert_listen_host | default('127.0.0.1')")
    conditions = [r['condition'] for r in ruleset['rules']]
    assert any('"firing"' in c for c in conditions) and any('"resolved"' in c for c in conditions)
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
