"""The rollback handler of the remediation engine (plugins/plugin_utils/remediation_rollback.py): the target it
chooses, when its plan refuses before the gate, and what a repeat under the same approval does - with a fake
engine whose modules answer like docker_rollback, stat, find, file and systemd_service on a target host."""
import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.sre.incident_response.plugins.plugin_utils import remediation_rollback as rb

DOCKER = {'name': 'backend', 'kind': 'backend', 'deploy': {'type': 'docker', 'container': 'app-backend'},
          'health': [{'name': 'ready', 'url': 'http://127.0.0.1:18000/health/ready'}],
          'critical_paths': ['/api/orders']}
SYMLINK = {'name': 'backend', 'kind': 'backend',
           'deploy': {'type': 'systemd', 'unit': 'app-backend.service', 'release_link': '/opt/app/current'},
           'health': [{'name': 'ready', 'url': 'http://127.0.0.1:18000/health/ready'}]}
RELEASES = ('/opt/app/releases/1.0.0', '/opt/app/releases/1.1.0', '/opt/app/releases/0.9.0')


class Store(object):
    def __init__(self, events=None):
        self.events = events or []

    def timeline(self, fresh=False):
        return self.events


class Engine(object):
    """The engine as the handler sees it: module() runs a module on the target host (here: canned answers)."""

    _host = 'web-1'

    def __init__(self, answers, store=None):
        self.answers = answers
        self.calls = []
        self._store = store

    def module(self, name, args, check=None):
        self.calls.append((name.rsplit('.', 1)[-1], dict(args), check))
        answer = self.answers[name.rsplit('.', 1)[-1]]
        res = answer(args, check) if callable(answer) else answer
        if res.get('failed'):
            raise AnsibleActionFail('%s: %s' % (name.rsplit('.', 1)[-1], res['msg']))
        return res


def handler(svc, answers, options=None, store=None):
    h = rb.Rollback(Engine(answers, store), svc, dict(options or {}))
    h.preflight()
    return h


def symlink_answers(link_to='/opt/app/releases/1.1.0', releases=RELEASES):
    def stat(args, check):
        if args['path'] == '/opt/app/current':
            return {'stat': {'exists': True, 'islnk': True, 'lnk_source': link_to}}
        return {'stat': {'exists': args['path'] in releases, 'isdir': args['path'] in releases}}
    return {'stat': stat, 'find': {'files': [{'path': p} for p in releases]},
            'file': {'changed': True}, 'systemd_service': {'changed': True}}


# --- pure logic -----------------------------------------------------------------------------------------------

def test_deploy_kind_is_a_container_else_a_release_link():
    assert rb.deploy_kind(DOCKER['deploy']) == 'docker'
    assert rb.deploy_kind(SYMLINK['deploy']) == 'symlink'
    assert rb.deploy_kind({'type': 'docker', 'release_link': '/srv/app/current'}) is None  # a container is needed
    assert rb.deploy_kind({'type': 'systemd', 'unit': 'x.service'}) is None
    assert rb.deploy_kind(None) is None


def test_previous_release_is_the_highest_below_the_current_one_versions_as_versions():
    assert rb.previous_release('/r/1.1.0', ['/r/1.0.0', '/r/1.1.0', '/r/0.9.0']) == '/r/1.0.0'
    assert rb.previous_release('/r/1.10.0', ['/r/1.9.0', '/r/1.10.0', '/r/1.2.0']) == '/r/1.9.0'
    assert rb.previous_release('/r/1.0.0', ['/r/1.0.0', '/r/1.1.0']) == ''
    assert rb.previous_release('/r/b', ['/r/a', '/r/b', '/r/c']) == '/r/a'
    assert rb.previous_release('/r/1.0.0', []) == ''


def test_docker_plan_refuses_only_when_the_previous_image_is_the_running_one():
    change = {'changed': True, 'plan': ['app-backend: app-backend:1.1.0 (3415f6) -> app-backend:1.0.0 (bf262f)'],
              'target': {'reason': 'highest local version below 1.1.0'}}
    assert rb.judge_docker_plan(change, False) == (change['plan'], [1], '')
    again = {'changed': False, 'plan': ['app-backend already runs app-backend:1.0.0'],
             'target': {'reason': 'already rolled back from app-backend:1.1.0 at 2026-12-06T00:00:00Z'}}
    assert rb.judge_docker_plan(again, False) == (again['plan'], [], '')
    requested = {'changed': False, 'plan': ['already runs'], 'target': {'reason': 'requested (image)'}}
    assert rb.judge_docker_plan(requested, True)[1:] == ([], '')
    label = {'changed': False, 'plan': ['already runs'], 'current': {'image': 'app-backend:1.1.0'},
             'target': {'reason': 'label sre.incident_response.previous_image'}}
    lines, targets, refuse = rb.judge_docker_plan(label, False)
    assert targets == [] and 'is the one running (app-backend:1.1.0)' in refuse


def test_symlink_plan_lines_and_refusals():
    assert rb.symlink_plan('/c', '/r/1.1.0', '/r/1.0.0', 'app.service', False) == (
        ['/c: /r/1.1.0 -> /r/1.0.0 then restart app.service'], [1], '')
    assert rb.symlink_plan('/c', '/r/1.1.0', '/r/1.0.0', '', False)[0] == ['/c: /r/1.1.0 -> /r/1.0.0']
    assert rb.symlink_plan('/c', '/r/1.0.0', '/r/1.0.0', '', True)[1:] == ([], '')
    lines, targets, refuse = rb.symlink_plan('/c', '/r/1.0.0', '', 'app.service', False)
    assert targets == [] and 'no earlier release is beside it' in refuse
    lines, targets, refuse = rb.symlink_plan('/c', '/r/1.0.0', '', 'app.service', False,
                                             {'from': '/r/1.1.0', 'at': '2026-12-06T00:01:02.000Z'})
    assert refuse == '' and targets == [] and 'rolled back from /r/1.1.0' in lines[0]


def test_running_is_the_target_image_in_the_replacement_or_the_unit_ok():
    state = [{'check': 'health.container', 'status': 'ok', 'summary': 'x running', 'evidence': {
        'name': 'app-backend', 'id': 'abcdef012345', 'image': 'app-backend:1.0.0', 'running': True, 'status': 'running'}}]
    target = {'image': 'app-backend:1.0.0'}
    assert rb.judge_running('docker', state, target, 'abcdef012345' + 'f' * 52)[0] is True
    assert rb.judge_running('docker', state, target)[0] is True  # nothing applied here: the image is enough
    ok, text = rb.judge_running('docker', state, target, '999999999999')
    assert not ok and 'not the replacement' in text
    assert rb.judge_running('docker', state, {'image': 'app-backend:1.1.0'})[0] is False
    stopped = [dict(state[0], evidence=dict(state[0]['evidence'], running=False))]
    assert rb.judge_running('docker', stopped, target)[0] is False
    assert rb.judge_running('symlink', [{'status': 'ok', 'summary': 'app.service active'}], {}) == (True, 'app.service active')
    assert rb.judge_running('symlink', [{'status': 'crit', 'summary': 'app.service failed'}], {})[0] is False
    assert rb.judge_running('docker', [], target)[0] is False


def test_log_window_paths_and_urls():
    assert rb.window_since(100.0, now=130.2) == '31s'
    assert rb.window_since(100.0, now=99.0) == '1s'
    assert rb.epoch('1970-01-01T00:01:00.000Z') == 60.0 and rb.epoch('not a time') is None and rb.epoch(None) is None
    assert rb.bad_paths([('/a', 200), ('/b', 503), ('/c', None), ('/d', 404)]) == ['/b', '/c']
    assert rb.base_url('http://127.0.0.1:18000/health/ready') == 'http://127.0.0.1:18000'
    assert rb.base_url('') == '' and rb.base_url('/health') == ''
    assert rb.names('app.errors,app.latency') == ['app.errors', 'app.latency'] and rb.names([]) == []


# --- the handler with a fake engine -----------------------------------------------------------------------------

def test_preflight_names_what_is_missing():
    with pytest.raises(AnsibleActionFail, match='deploy.container'):
        handler({'name': 'backend', 'deploy': {'type': 'systemd', 'unit': 'x.service'}}, {})
    with pytest.raises(AnsibleActionFail, match='health_timeout'):
        handler(DOCKER, {}, {'health_timeout': 0})
    h = handler(DOCKER, {}, {'health_timeout': 90})
    assert h.health_retries == 45 and h.health_url.endswith('/health/ready')
    assert handler(DOCKER, {}, {'health_timeout': 90, 'health_retries': 7}).health_retries == 7


def test_docker_plan_runs_the_module_in_check_mode_and_a_missing_target_refuses():
    seen = {'changed': True, 'plan': ['app-backend: 1.1.0 -> 1.0.0'], 'current': {'image': 'app-backend:1.1.0'},
            'target': {'image': 'app-backend:1.0.0', 'reason': 'highest local version below 1.1.0'}}
    h = handler(DOCKER, {'docker_rollback': seen})
    plan = h.plan()
    assert plan['targets'] == [1] and not plan.get('refuse') and plan['data']['target']['image'] == 'app-backend:1.0.0'
    assert h.e.calls == [('docker_rollback', {'name': 'app-backend', 'health_timeout': 90}, True)]
    missing = handler(DOCKER, {'docker_rollback': {'failed': True, 'msg': 'rollback target image app-backend:0.0.404 is '
                                                   'not present locally; nothing was stopped'}}, {'image': 'app-backend:0.0.404'})
    plan = missing.plan()
    assert 'not present locally; nothing was stopped' in plan['refuse'] and plan['targets'] == []
    assert missing.e.calls[0][1]['image'] == 'app-backend:0.0.404'


def test_docker_apply_uses_the_planned_target_once_and_a_repeat_under_the_approval_does_nothing():
    seen = {'changed': True, 'plan': ['p'], 'current': {'image': 'app-backend:1.1.0', 'digest': 'sha256:a'},
            'target': {'image': 'app-backend:1.0.0', 'digest': 'sha256:b', 'reason': 'r'}}
    applied = {'changed': True, 'container_id': 'f' * 64, 'steps': ['created ffffffffffff from app-backend:1.0.0']}
    h = handler(DOCKER, {'docker_rollback': lambda args, check: seen if check else applied}, {'keep_previous': True})
    plan = h.plan()
    out = h.apply(plan, {'apply': True})
    assert out['changed'] and out['result']['previous']['image'] == 'app-backend:1.1.0'
    assert 'app-backend:1.1.0 (sha256:a) -> app-backend:1.0.0 (sha256:b)' in out['summary']
    assert h.e.calls[-1] == ('docker_rollback', {'name': 'app-backend', 'image': 'app-backend:1.0.0', 'health_timeout': 90,
                                                 'keep_previous': True, 'health_url': DOCKER['health'][0]['url']}, False)
    again = handler(DOCKER, {'docker_rollback': seen})
    plan = again.plan()
    out = again.apply(plan, {'apply': True, 'already_applied': True, 'already_applied_state': 'done',
                             'already_applied_at': '2026-12-06T00:01:02.000Z'})
    assert out['changed'] is False and 'already rolled back under this approval' in out['summary']
    assert [c[2] for c in again.e.calls] == [True], 'a repeat under the approval runs nothing that changes'


def test_symlink_plan_apply_and_verify_switch_the_link_and_restart_the_unit():
    answers = symlink_answers()
    h = handler(SYMLINK, answers)
    plan = h.plan()
    assert plan['lines'] == ['/opt/app/current: /opt/app/releases/1.1.0 -> /opt/app/releases/1.0.0 then restart '
                             'app-backend.service']
    assert plan['data']['target'] == {'release': '/opt/app/releases/1.0.0'} and plan['targets'] == [1]
    assert all(c[0] in ('stat', 'find') for c in h.e.calls), 'the plan only reads'
    out = h.apply(plan, {'apply': True})
    assert out['changed'] and out['result']['restarted']
    assert ('file', {'src': '/opt/app/releases/1.0.0', 'dest': '/opt/app/current', 'state': 'link', 'force': True},
            False) in h.e.calls
    assert ('systemd_service', {'name': 'app-backend.service', 'state': 'restarted'}, False) in h.e.calls
    answers.update(symlink_answers(link_to='/opt/app/releases/1.0.0'))
    assert h._verify_link(plan['data']['target']) == (True, '/opt/app/current -> /opt/app/releases/1.0.0')


def test_symlink_without_an_earlier_release_refuses_unless_this_incident_rolled_it_back():
    answers = symlink_answers(link_to='/opt/app/releases/0.9.0')
    plan = handler(SYMLINK, answers).plan()
    assert 'no earlier release is beside it' in plan['refuse'] and plan['targets'] == []
    done = {'kind': 'action', 'host': 'web-1', 'ts': '2026-12-06T00:01:02.000Z', 'data': {
        'action': 'rollback', 'service': 'backend', 'status': 'done', 'changed': True, 'intent_id': 'i1',
        'result': {'previous': {'release': '/opt/app/releases/1.0.0'}, 'target': {'release': '/opt/app/releases/0.9.0'}}}}
    h = handler(SYMLINK, answers, store=Store([done]))
    plan = h.plan()
    assert not plan.get('refuse') and plan['targets'] == [] and 'rolled back from /opt/app/releases/1.0.0' in plan['lines'][0]
    out = h.apply(plan, {'apply': True})
    assert out['changed'] is False and h.since == rb.epoch(done['ts'])
    assert not [c for c in h.e.calls if c[0] in ('file', 'systemd_service')]


def test_symlink_requested_release_must_be_a_directory_and_the_current_one_is_no_change():
    plan = handler(SYMLINK, symlink_answers(), {'release': '/opt/app/releases/0.1.0'}).plan()
    assert 'is not a directory' in plan['refuse']
    plan = handler(SYMLINK, symlink_answers(), {'release': '/opt/app/releases/1.1.0'}).plan()
    assert not plan.get('refuse') and plan['targets'] == [] and 'already on' in plan['lines'][0]
    plan = handler(SYMLINK, symlink_answers(), {'release': '/opt/app/releases/0.9.0'}).plan()
    assert plan['targets'] == [1] and plan['data']['target'] == {'release': '/opt/app/releases/0.9.0'}


def test_not_a_symlink_refuses():
    answers = symlink_answers()
    answers['stat'] = {'stat': {'exists': True, 'islnk': False}}
    plan = handler(SYMLINK, answers).plan()
    assert 'must be a symlink' in plan['refuse']


class VerifyEngine(Engine):
    """The engine's verification helpers: the health wait, the triage settings, one probe on the host, findings."""

    _vars = {}

    def __init__(self, answers, findings):
        super(VerifyEngine, self).__init__(answers)
        self.findings, self.probes, self.recorded = findings, [], []

    def health(self, services, retries):
        self.health_call = (services, retries)
        return True, ['ok: 2 of 2 endpoints healthy'], []

    def settings(self, role):
        if role == 'health':
            return {'health_window': '15m', 'health_restart_warn': 1, 'health_docker_host': ''}
        return dict(('app_logs_' + k, v) for k, v in {
            'window': '15m', 'max_lines': 5000, 'excerpt_lines': 5, 'ignore_paths': [], 'runtime_command': '',
            'timeout': 30, 'docker_host': '', 'error_rate_warn_pct': 1, 'error_rate_crit_pct': 5, 'min_errors': 3,
            'error_lines_warn': 1, 'error_lines_crit': 10, 'latency_p95_warn_ms': 500, 'latency_p95_crit_ms': 2000}.items())

    def _execute_module(self, module_name, module_args, task_vars):
        self.probes.append(module_args)
        return {'findings': self.findings}

    def record_findings(self, findings):
        self.recorded.extend(findings)


def test_verify_probes_the_state_and_the_logs_since_the_switch_once(monkeypatch):
    findings = [
        {'check': 'health.container', 'service': 'backend', 'status': 'ok', 'summary': 's', 'evidence': {
            'name': 'app-backend', 'id': 'abcdef012345', 'image': 'app-backend:1.0.0', 'running': True, 'status': 'running'}},
        {'check': 'app.errors', 'service': 'backend', 'status': 'ok', 'summary': '0 errors'},
        {'check': 'app.errors', 'service': 'payments', 'status': 'crit', 'summary': 'not mine'}]
    h = rb.Rollback(VerifyEngine({}, findings), DOCKER, {'health_timeout': 10, 'verify_critical_paths': True})
    h.preflight()
    h.since, h.after = 1000.0, {'container_id': 'abcdef012345' + '0' * 52}
    monkeypatch.setattr(rb.time, 'time', lambda: 1029.5)
    monkeypatch.setattr(rb, 'http_status', lambda url, timeout=5: 200 if url.endswith('/api/orders') else 503)
    out = h.verify({'data': {'target': {'image': 'app-backend:1.0.0'}}}, {})
    assert out['ok'] is True, out
    assert h.e.health_call == (['backend'], 5)
    [probe] = h.e.probes
    assert sorted(probe) == ['app_logs', 'health', 'report_host', 'workers']
    assert probe['app_logs']['window'] == '30s' and probe['health']['services'] == [DOCKER]
    assert [f['service'] for f in h.e.recorded] == ['backend', 'backend']
    assert out['findings'] == 'app.errors ok' and 'critical paths /api/orders answer without 5xx' in out['summary']
    failing = rb.Rollback(VerifyEngine({}, findings), dict(DOCKER, critical_paths=['/api/orders', '/api/sessions']), {})
    failing.preflight()
    out = failing.verify({'data': {'target': {'image': 'app-backend:1.0.0'}}}, {})
    assert out['ok'] is False and 'still failing: /api/sessions' in out['summary']
    crit = [findings[0], dict(findings[1], status='crit')]
    bad = rb.Rollback(VerifyEngine({}, crit), DOCKER, {'verify_critical_paths': False})
    bad.preflight()
    out = bad.verify({'data': {'target': {'image': 'app-backend:1.0.0'}}}, {})
    assert out['ok'] is False and out['findings'] == 'app.errors crit'
