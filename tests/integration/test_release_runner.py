"""Entry playbooks under ansible-runner, as AWX runs them (awx_display stdout callback, artifacts, set_stats).

- triage: the timeline callback writes the same incident files, and the same play/task events, as the CLI run;
  the set_stats artifacts AWX hands to the next workflow node are published;
- a remediation plan (check mode, as the workflow's plan node and the plan templates run it) from the triage's
  artifacts: plan events recorded, nothing changed, same timeline kinds as the CLI plan;
- the workflow's apply node refuses to apply outside a workflow (no approval node to read the approver from).
"""
import json
import os

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.timeline import task_results

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, '.venv', 'bin')

ansible_runner = pytest.importorskip('ansible_runner')


def cli_run(*args, **kwargs):
    """The integration conftest's run() (ansible-playbook from the checkout with the lab inventory)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('_integration_conftest', os.path.join(os.path.dirname(__file__), 'conftest.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run(*args, **kwargs)


def _runner(tmp_path, playbook, extravars, cmdline=None, name='runner'):
    private = tmp_path / name
    private.mkdir()
    env = {'ANSIBLE_CONFIG': os.path.join(ROOT, 'ansible.cfg'), 'PATH': BIN + os.pathsep + os.environ.get('PATH', ''),
           'LAB_INSTANCE': os.environ.get('LAB_INSTANCE', '0'), 'ANSIBLE_NOCOLOR': '1'}
    kwargs = {}
    if cmdline:
        kwargs['cmdline'] = cmdline
    result = ansible_runner.run(private_data_dir=str(private), project_dir=ROOT, playbook=playbook,
                                inventory=os.path.join(ROOT, 'inventory', 'lab'), extravars=extravars, envvars=env,
                                quiet=True, timeout=600, **kwargs)
    stdout = result.stdout.read()
    return result, stdout


def _timeline(path):
    with open(os.path.join(path, 'timeline.jsonl')) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _files(path):
    out = set()
    for base, dirs, names in os.walk(path):
        for name in names:
            rel = os.path.relpath(os.path.join(base, name), path)
            # messages/ and evidence/ file names carry times; compare their directories and kinds
            parts = rel.split(os.sep)
            if parts[0] == 'messages':
                rel = 'messages/*-' + name.split('-')[-1]
            elif parts[0] == 'evidence':
                rel = os.sep.join(parts[:2]) + '/*'
            out.add(rel)
    return out


def _shape(events):
    """What the callback recorded, independent of times and ids: play names and the task names per status."""
    plays = [(e['data'].get('phase'), e['summary'].split(':')[0]) for e in events if e['kind'] == 'play']
    tasks = sorted(set((r.get('task'), r.get('status')) for r in task_results(events)))
    return plays, tasks


def _stats(result):
    stats = [e for e in result.events if e['event'] == 'playbook_on_stats']
    assert stats, 'no playbook_on_stats event'
    return stats[-1]['event_data'].get('artifact_data') or {}


@pytest.fixture(scope='module')
def triaged(lab, tmp_path_factory):
    """The same healthy-lab triage once from the CLI and once under ansible-runner."""
    tmp = tmp_path_factory.mktemp('runner')
    cli_dir, runner_dir = tmp / 'cli', tmp / 'awx'
    cli = cli_run('playbooks/triage.yml', {'incident_id': 'INC-CLI-TRIAGE', 'incident_dir': str(cli_dir), 'triage_deliver': False})
    assert cli.rc == 0, cli
    result, stdout = _runner(tmp, 'playbooks/triage.yml',
                             {'incident_id': 'INC-AWX-TRIAGE', 'incident_dir': str(runner_dir), 'triage_deliver': False})
    assert result.rc == 0 and result.status == 'successful', stdout[-4000:]
    return {'tmp': tmp, 'cli': str(cli_dir / 'INC-CLI-TRIAGE'), 'awx': str(runner_dir / 'INC-AWX-TRIAGE'),
            'awx_root': str(runner_dir), 'result': result, 'stdout': stdout}


def test_triage_under_runner_uses_the_awx_callback(triaged):
    result = triaged['result']
    assert result.config.env.get('ANSIBLE_STDOUT_CALLBACK') == 'awx_display'
    names = [e['event'] for e in result.events]
    assert 'playbook_on_play_start' in names and 'runner_on_ok' in names and 'playbook_on_stats' in names
    assert 'PLAY [Triage 4-5 min - mitigate or investigate]' in triaged['stdout']  # the last play ran
    assert 'Incident INC-AWX-TRIAGE - SEV' in triaged['stdout']  # and printed the summary


def test_triage_publishes_set_stats_for_the_workflow(triaged):
    artifacts = _stats(triaged['result'])
    assert artifacts.get('incident_id') == 'INC-AWX-TRIAGE', artifacts
    assert artifacts.get('severity') in ('SEV1', 'SEV2', 'SEV3', 'SEV4'), artifacts
    # the workflow's plan/apply nodes read action and service (the top hypothesis' remediation; empty when healthy)
    for key in ('top_pattern', 'first_action', 'remediation_action', 'service'):
        assert key in artifacts, 'triage does not publish %s for the workflow: %s' % (key, artifacts)
    with open(os.path.join(triaged['awx'], 'incident.json')) as handle:
        assert json.load(handle)['severity'] == artifacts['severity']


def test_triage_timeline_matches_the_cli(triaged):
    assert _files(triaged['awx']) == _files(triaged['cli'])
    cli_events, awx_events = _timeline(triaged['cli']), _timeline(triaged['awx'])
    assert _shape(awx_events) == _shape(cli_events)
    assert sorted(set(e['kind'] for e in awx_events)) == sorted(set(e['kind'] for e in cli_events))
    assert any(e['kind'] == 'play' for e in awx_events) and any(e['kind'] == 'task' for e in awx_events)
    assert all(e['incident_id'] == 'INC-AWX-TRIAGE' for e in awx_events)


def test_remediation_plan_under_runner_matches_the_cli(triaged, lab_env):
    """The workflow's plan node: triage's artifacts as extra vars, check mode; plan recorded, nothing changed."""
    import subprocess
    started = subprocess.run(['docker', 'inspect', '-f', '{{.State.StartedAt}}', lab_env.backend],
                             capture_output=True, text=True, check=True).stdout.strip()
    artifacts = _stats(triaged['result'])
    before = len(_timeline(triaged['awx']))
    extravars = dict(artifacts, incident_dir=triaged['awx_root'], remediation_action='restart', service='backend')
    result, stdout = _runner(triaged['tmp'], 'playbooks/awx_remediate.yml', extravars, cmdline='--check', name='plan')
    assert result.rc == 0 and result.status == 'successful', stdout[-4000:]
    assert 'PLAN restart on backend' in stdout
    new = _timeline(triaged['awx'])[before:]
    kinds = [e['kind'] for e in new]
    assert 'plan' in kinds and 'action' not in kinds and 'verify' not in kinds, kinds
    # the CLI plan of the same action on the CLI incident records the same kinds
    cli_before = len(_timeline(triaged['cli']))
    cli = cli_run('playbooks/remediate.yml', {'incident_id': 'INC-CLI-TRIAGE', 'incident_dir': os.path.dirname(triaged['cli']),
                                              'remediation_action': 'restart', 'service': 'backend'}, check=True)
    assert cli.rc == 0, cli
    cli_kinds = [e['kind'] for e in _timeline(triaged['cli'])[cli_before:]]
    assert sorted(set(k for k in kinds if k != 'play' and k != 'task')) == sorted(set(k for k in cli_kinds if k != 'play' and k != 'task'))
    assert subprocess.run(['docker', 'inspect', '-f', '{{.State.StartedAt}}', lab_env.backend],
                          capture_output=True, text=True, check=True).stdout.strip() == started, 'a plan restarted the backend'


def test_apply_node_refuses_outside_a_workflow(triaged):
    artifacts = _stats(triaged['result'])
    extravars = dict(artifacts, incident_dir=triaged['awx_root'], remediation_action='restart', service='backend', apply=True,
                     approved_by='someone-else')
    result, stdout = _runner(triaged['tmp'], 'playbooks/awx_remediate.yml', extravars, name='apply')
    assert result.rc != 0 and result.status == 'failed'
    assert 'only inside the AWX workflow' in stdout
    kinds = [e['kind'] for e in _timeline(triaged['awx'])]
    assert 'action' not in kinds


class _FakeController(object):
    """The two controller API endpoints the apply node reads, served on 127.0.0.1 (no AWX reachable in CI)."""

    def __init__(self, job_id, approval_id, approval_status, approver):
        import http.server
        import threading
        routes = {
            '/api/v2/workflow_jobs/%s/workflow_nodes/' % job_id: {'count': 3, 'next': None, 'previous': None, 'results': [
                {'id': 1, 'summary_fields': {'job': {'id': 900, 'type': 'job', 'status': 'successful'}}},
                {'id': 2, 'summary_fields': {'job': {'id': approval_id, 'type': 'workflow_approval', 'status': approval_status}}},
                {'id': 3, 'summary_fields': {}}]},
            '/api/v2/workflow_approvals/%s/' % approval_id: {
                'id': approval_id, 'status': approval_status,
                'summary_fields': {'approved_or_denied_by': {'id': 7, 'username': approver}}},
            # the gate asks who launched this job (JOB_ID 78): the launcher is what AWX says, never awx_user_name alone
            '/api/v2/jobs/78/': {'id': 78, 'status': 'running', 'launched_by': {'id': 5, 'name': 'alice', 'type': 'user'}},
        }
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                path = self.path.split('?')[0]
                outer.requests.append((path, self.headers.get('Authorization')))
                body = routes.get(path)
                self.send_response(200 if body is not None else 404)
                self.send_header('Content-Type', 'application/json')
                self.send_header('X-API-Product-Name', 'AWX')
                self.send_header('X-API-Product-Version', '24.6.1')
                self.end_headers()
                self.wfile.write(json.dumps(body if body is not None else {'detail': 'Not found.'}).encode())

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _apply_node(tmp_path, incident, controller, extra=None, name='apply-node'):
    extravars = dict(incident['vars'], remediation_action='restart', service='backend', apply=True,
                     awx_workflow_job_id=77, awx_job_id=78, awx_user_name='alice', remediation_budget={'restart': 5})
    extravars.update(extra or {})
    private = tmp_path / name
    private.mkdir()
    env = {'ANSIBLE_CONFIG': os.path.join(ROOT, 'ansible.cfg'), 'PATH': BIN + os.pathsep + os.environ.get('PATH', ''),
           'LAB_INSTANCE': os.environ.get('LAB_INSTANCE', '0'), 'ANSIBLE_NOCOLOR': '1',
           'JOB_ID': '78',  # AWX sets it for every job; the gate asks the controller (jobs/78/) who launched it
           'CONTROLLER_HOST': controller.url, 'CONTROLLER_OAUTH_TOKEN': 'test-token-not-secret', 'CONTROLLER_VERIFY_SSL': 'false'}
    awx_inventory = tmp_path / (name + '-awx.yml')  # the controller the gate asks: inventory only, like production
    awx_inventory.write_text('all:\n  vars:\n    remediation_awx_url: %s\n' % controller.url)
    result = ansible_runner.run(private_data_dir=str(private), project_dir=ROOT, playbook='playbooks/awx_remediate.yml',
                                inventory=[os.path.join(ROOT, 'inventory', 'lab'), str(awx_inventory)], extravars=extravars,
                                envvars=env,
                                quiet=True, timeout=600)
    return result, result.stdout.read()


def test_apply_node_takes_the_approver_from_the_approval_node(exclusive_lab, incident, tmp_path):
    """Approved by bob in the (fake) controller, launched by alice: the gate records bob, the change applies."""
    with _FakeController(77, 501, 'successful', 'bob') as controller:
        result, stdout = _apply_node(tmp_path, incident, controller)
    assert result.rc == 0 and result.status == 'successful', stdout[-5000:]
    assert ('/api/v2/workflow_approvals/501/', 'Bearer test-token-not-secret') in controller.requests
    events = _timeline(incident['path'])
    approvals = [e for e in events if e['kind'] == 'approval']
    assert approvals, [e['kind'] for e in events]
    data = approvals[-1]['data']
    assert data['approved_by'] == 'bob' and data['change_ref'] == 'AWX workflow job 77 approval 501', data
    assert data['launcher'] == 'alice' and 'AWX job 78' in data['launcher_source'], data
    assert ('/api/v2/jobs/78/', 'Bearer test-token-not-secret') in controller.requests
    assert any(e['kind'] == 'action' for e in events) and any(e['kind'] == 'verify' for e in events)
    assert 'test-token-not-secret' not in json.dumps(events)


@pytest.mark.parametrize('status, extra, message', [
    ('failed', {}, 'has no approved approval node'),
    ('successful', {'approved_by': 'mallory'}, 'must be the approver of the workflow'),
])
def test_apply_node_refuses_without_the_approval(lab, incident, tmp_path, status, extra, message):
    with _FakeController(77, 502, status, 'bob') as controller:
        result, stdout = _apply_node(tmp_path, incident, controller, extra)
    assert result.rc != 0 and result.status == 'failed'
    assert message in stdout, stdout[-3000:]
    if os.path.exists(os.path.join(incident['path'], 'timeline.jsonl')):
        assert not [e for e in _timeline(incident['path']) if e['kind'] in ('approval', 'action')]
