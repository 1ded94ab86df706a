"""Unit tests of the runbook renderer (plugin_utils/render/runbook.py)."""
from markdown_it import MarkdownIt

from ansible_collections.sre.incident_response.plugins.plugin_utils.render.runbook import (
    ISSUES,
    RunbookRenderer,
    runbook_filename,
)

SERVICES = [
    {'host': 'app-backend', 'service': {
        'name': 'backend', 'kind': 'backend', 'purpose': 'Public API', 'owner_team': 'platform',
        'deploy': {'type': 'docker', 'container': 'app-backend'}, 'depends_on': ['db', 'payments'],
        'critical_paths': ['/api/orders'], 'health': [{'name': 'readiness', 'url': 'http://127.0.0.1:18000/health/ready',
                                                       'expect_status': 200, 'expect_json': {'status': 'ok'}}]}},
    {'host': 'app-db', 'service': {
        'name': 'db', 'kind': 'postgres', 'deploy': {'type': 'systemd', 'unit': 'postgresql.service'},
        'postgres': {'password_var': 'vault_pg_password', 'app_roles': ['app']}}},
]
CONTACTS = {'oncall': {'name': 'Backend on-call', 'handle': '@backend-oncall'},
            'owner_team': {'name': 'Platform team', 'channel': '#team-platform'}}
DEPENDENCIES = [{'name': 'payments', 'url': 'http://127.0.0.1:18081/health', 'critical': False}]


def render():
    return RunbookRenderer(list(reversed(SERVICES)), contacts=CONTACTS, dependencies=DEPENDENCIES,
                           inventory='inventory/prod').render_all()


def headings(text):
    tokens = MarkdownIt('commonmark').parse(text)
    assert not [t for t in tokens if t.type == 'html_block']
    return [(t.tag, tokens[i + 1].content) for i, t in enumerate(tokens) if t.type == 'heading_open']


def test_one_runbook_per_service_with_the_structure():
    docs = render()
    assert sorted(docs) == ['backend-runbook.md', 'db-runbook.md']
    heads = headings(docs['backend-runbook.md'])
    assert heads[0] == ('h1', 'backend runbook')
    assert [h for tag, h in heads if tag == 'h2'] == ['Overview', 'Common issues', 'Escalation']
    assert [h for tag, h in heads if tag == 'h3'] == [i['title'] for i in ISSUES['backend']]


def test_overview_dependencies_and_commands():
    docs = render()
    backend = docs['backend-runbook.md']
    assert '**Purpose:** Public API' in backend
    assert 'db (postgres on `app-db`)' in backend
    assert 'payments (external, `http://127.0.0.1:18081/health`, non-critical)' in backend
    assert '**Critical paths:** `/api/orders`' in backend
    assert 'ansible-playbook playbooks/investigate.yml -i inventory/prod -e incident_id=<INCIDENT_ID> -e area=changes' in backend
    assert ('ansible-playbook playbooks/remediate.yml -i inventory/prod -e incident_id=<INCIDENT_ID> -e remediation_action=rollback '
            '-e service=backend -e apply=true -e approved_by=<name>') in backend
    assert '**On-call:** Backend on-call (@backend-oncall)' in backend
    assert 'channel #team-platform' in backend
    db = docs['db-runbook.md']
    assert '**Depended on by:** backend' in db
    assert 'systemd unit `postgresql.service`' in db
    assert 'variable `vault_pg_password`' in db
    assert '-e remediation_action=kill_query -e service=db' in db


def test_deterministic():
    assert render() == render()
    assert runbook_filename('my service/1') == 'my_service_1-runbook.md'
