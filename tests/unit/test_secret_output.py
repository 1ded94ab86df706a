"""Unit tests: what -v/-vvv prints carries no secret, as key or value.

- the probe action and every plain module's action return their result redacted with the task's secrets;
- the probe areas that hold a password scrub it from the keys of their own result (a module alone, e.g. pg_probe);
- the on-call console redacts what it prints, compact and verbose, with the secrets of the play;
- every option of every module (and action) that holds a secret is no_log (module_args at -vvv).
"""
import importlib
import json
import os
import pkgutil
import re
from unittest import mock

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.template import Templar

import ansible_collections.sre.incident_response.plugins.modules as modules_pkg
from ansible_collections.sre.incident_response.plugins.action import probe as probe_action
from ansible_collections.sre.incident_response.plugins.module_utils.areas import (
    postgres as area_postgres,
    redis as area_redis)
from ansible_collections.sre.incident_response.plugins.module_utils.redact import REDACTED
from test_oncall_callback import FakePlay, FakeResult, make
from test_oncall_callback import FakeTask as ConsoleTask

PG = 'lab-pg-S3cret-4f9a'
SU = 'lab-pgsu-S3cret-77c1'
ANALYST = 'lab-analyst-S3cret-2b8e'
REDIS = 'lab-redis-S3cret-9d3e'
SECRETS = (PG, SU, ANALYST, REDIS)
LAB_VARS = {'lab_pg_password': PG, 'lab_pg_superuser_password': SU, 'lab_analyst_password': ANALYST,
            'lab_redis_password': REDIS}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class FakeTask(ConsoleTask):
    def get_path(self):
        return 'roles/x/tasks/main.yml:1'


def module_result():
    """A module result as the probe returns it on the lab: secrets in request paths and application names."""
    return {
        'changed': False,
        'findings': [
            {'check': 'app.errors', 'host': 'app-backend', 'status': 'ok', 'summary': '4 requests',
             'evidence': {'by_path': dict(('/api/orders/%s' % s, {'requests': 1}) for s in SECRETS),
                          'failing_paths': ['/api/orders/%s' % PG]}},
            {'check': 'pg.connections', 'host': 'app-db', 'status': 'ok', 'summary': 'held by %s %s' % (PG, REDIS),
             'evidence': {'by_user_application': {'app/%s %s' % (PG, REDIS): 1},
                          'holders': [{'application_name': '%s %s' % (PG, REDIS), 'count': 1}]}}],
        'evidence_files': {'app.errors-backend.log': '\n'.join('GET /api/orders/%s 404' % s for s in SECRETS)},
        'invocation': {'module_args': {'postgres': [{'login_password': 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'}]}},
    }


def action(module, task_action, args=None):
    task = mock.MagicMock()
    task.args = args or {}
    task.action = task_action
    task.async_val = 0
    task.check_mode = False
    task.diff = False
    task.no_log = False
    loader = DataLoader()
    return module.ActionModule(task, mock.MagicMock(), PlayContext(), loader, Templar(loader=loader), None)


def assert_clean(data):
    text = json.dumps(data, default=str)
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, text


def test_probe_action_returns_its_module_result_redacted_keys_and_values():
    plugin = action(probe_action, 'sre.incident_response.probe', {'areas': ['health']})
    task_vars = dict(LAB_VARS, inventory_hostname='app-db', incident_services=[])
    with mock.patch.object(probe_action, 'role_settings', return_value={}), \
            mock.patch.object(probe_action, 'BUILDERS', {'health': lambda s, services, host: {'report_host': host}}), \
            mock.patch.object(plugin, '_execute_module', return_value=module_result()) as execute:
        res = plugin.run(task_vars=task_vars)
    assert execute.called
    assert_clean(res)
    by_path = res['findings'][0]['evidence']['by_path']
    assert len(by_path) == 4 and all(k.startswith('/api/orders/%s' % REDACTED) for k in by_path)
    assert res['findings'][1]['evidence']['by_user_application'] == {'app/%s %s' % (REDACTED, REDACTED): 1}
    assert res['report_host'] == 'app-db'


def test_probe_action_controller_checks_are_redacted_too():
    plugin = action(probe_action, 'sre.incident_response.probe', {'areas': ['controller']})
    with mock.patch.object(probe_action, 'role_settings', return_value={}), \
            mock.patch.object(plugin, '_controller', return_value=module_result()):
        res = plugin.run(task_vars=dict(LAB_VARS, inventory_hostname='localhost'))
    assert_clean(res)


def plain_modules():
    """Modules of the collection that run as a module (they have a main()); the others are action plugins."""
    out = []
    for info in pkgutil.iter_modules(modules_pkg.__path__):
        module = importlib.import_module('%s.%s' % (modules_pkg.__name__, info.name))
        if hasattr(module, 'main'):
            out.append(info.name)
    return sorted(out)


def test_every_plain_module_returns_through_an_action_that_redacts():
    names = plain_modules()
    assert 'pg_sessions' in names and 'app_logs_probe' in names
    missing = []
    for name in names:
        try:
            plugin = importlib.import_module('ansible_collections.sre.incident_response.plugins.action.%s' % name)
        except ImportError:
            missing.append(name)
            continue
        from ansible_collections.sre.incident_response.plugins.plugin_utils.scrubbed_action import ScrubbedModuleAction
        assert issubclass(plugin.ActionModule, ScrubbedModuleAction) or name == 'probe', name
    assert not missing, 'modules whose result -vvv prints raw: %s' % ', '.join(missing)


@pytest.mark.parametrize('name', ['pg_sessions', 'pg_probe', 'app_logs_probe', 'redis_evict'])
def test_a_plain_modules_action_redacts_its_result(name):
    plugin_module = importlib.import_module('ansible_collections.sre.incident_response.plugins.action.%s' % name)
    plugin = action(plugin_module, 'sre.incident_response.%s' % name)
    plugin._connection.has_native_async = False
    raw = {'changed': False, 'sessions': [{'pid': 42, 'application_name': '%s %s' % (PG, REDIS)}],
           'by_application': {'%s' % ANALYST: 1}, 'msg': 'keys session:%s' % SU}
    with mock.patch.object(plugin, '_execute_module', return_value=raw), mock.patch.object(plugin, '_remove_tmp_path'):
        res = plugin.run(task_vars=dict(LAB_VARS))
    assert_clean(res)
    assert res['sessions'][0]['pid'] == 42 and res['by_application'] == {REDACTED: 1}


class AreaModule(object):
    def __init__(self, params):
        self.params = params
        self.check_mode = False


def test_pg_area_scrubs_its_login_password_from_keys_of_its_own_result():
    """pg_probe alone (remediation evidence) knows only its login password: AnsibleModule scrubs values, the area keys."""
    activity = [{'pid': 1, 'usename': 'app', 'application_name': '%s x' % PG, 'state': 'idle', 'backend_type': 'client backend'}]
    finding = area_postgres.evaluate_connections('app-db', 'db', {'max_connections': 100}, activity, {
        'connections_warn_pct': 80, 'connections_crit_pct': 95, 'idle_in_transaction_warn_seconds': 30,
        'idle_in_transaction_crit_count': 5})
    assert 'app/%s x' % PG in finding['evidence']['by_user_application']  # the probe itself keys by application
    with mock.patch.object(area_postgres, '_run', return_value={'findings': [finding]}):
        out = area_postgres.run(AreaModule({'login_password': PG}))
    assert PG not in json.dumps(out) and out['findings'][0]['evidence']['by_user_application'] == {'app/%s x' % REDACTED: 1}
    with mock.patch.object(area_redis, '_run', return_value={'findings': [], 'evidence_files': {'k-%s' % REDIS: []}}):
        out = area_redis.run(AreaModule({'login_password': REDIS}))
    assert out['evidence_files'] == {'k-%s' % REDACTED: []}


# --- the on-call console -------------------------------------------------------------------------------------------

class FakeHostObj(object):
    def __init__(self, name):
        self.name = name


class FakeVM(object):
    """The variable manager of a play: extra vars, and the variables of each host (inventory/lab's shape)."""

    _loader = None

    def __init__(self, extra=None, host_vars=None):
        self.extra_vars = extra or {}
        self._host_vars = host_vars or {}
        self._inventory = self
        self.asked = []

    def get_hosts(self, pattern):
        return [FakeHostObj(name) for name in self._host_vars]

    def get_vars(self, play=None, host=None, include_hostvars=False):
        self.asked.append(host.name)
        return dict(self._host_vars[host.name])


class PlayWithVars(FakePlay):
    hosts = 'all'

    def __init__(self, name, vm):
        super(PlayWithVars, self).__init__(name)
        self._vm = vm

    def get_variable_manager(self):
        return self._vm

    def get_vars(self):
        return {}


def lab_vm():
    services = [{'name': 'db', 'kind': 'postgres', 'postgres': {'password_var': 'lab_pg_password'}}]
    return FakeVM(host_vars={'app-db': dict(LAB_VARS, incident_services=services), 'app-backend': dict(LAB_VARS)})


@pytest.mark.parametrize('verbosity', [1, 3])
def test_console_at_v_and_vvv_prints_results_redacted(verbosity):
    cb = make(verbosity=verbosity)
    cb.v2_playbook_on_play_start(PlayWithVars('Triage 1-3 min', lab_vm()))
    task = FakeTask('Show the sessions', 'sre.incident_response.pg_sessions', 'u1')
    cb.v2_playbook_on_task_start(task, False)
    cb.v2_runner_on_ok(FakeResult(task, 'app-db', module_result()))
    cb.v2_runner_on_failed(FakeResult(task, 'app-db', {'failed': True, 'msg': 'no session %s' % SU,
                                                       'sessions': {'app/%s' % ANALYST: 1}}))
    text = '\n'.join(m for m, _c in cb._display.lines)
    assert 'ok: [app-db]' in text and 'fatal: [app-db]: FAILED!' in text
    assert not [s for s in SECRETS if s in text], text
    assert '/api/orders/%s' % REDACTED in text and 'app/%s' % REDACTED in text


def test_console_compact_redacts_findings_messages_and_failures():
    cb = make(verbosity=0)
    vm = lab_vm()
    cb.v2_playbook_on_play_start(PlayWithVars('Triage 1-3 min', vm))
    assert vm.asked == []  # nothing printed yet: nothing scanned
    record = FakeTask('Record every finding', 'sre.incident_response.finding', 'u1')
    cb.v2_playbook_on_task_start(record, False)
    findings = [dict(f, status='crit', summary='x' * 200 + ' ' + f['summary']) for f in module_result()['findings']]
    cb.v2_runner_on_ok(FakeResult(record, 'app-db', {'findings': findings, 'recorded': True}))
    plan = FakeTask('Show the plan of pg_terminate', 'ansible.builtin.debug', 'u2', tags=['oncall_message'])
    cb.v2_runner_on_ok(FakeResult(plan, 'app-db', {'msg': ['terminate pid 42 (%s)' % REDIS]}))
    failing = FakeTask('Fail', 'ansible.builtin.fail', 'u3')
    cb.v2_playbook_on_task_start(failing, False)
    cb.v2_runner_on_failed(FakeResult(failing, 'app-db', {'failed': True, 'msg': 'session %s' % PG}))
    text = '\n'.join(m for m, _c in cb._display.lines)
    assert 'CRIT' in text and 'terminate pid 42' in text and 'FAILED!' in text
    assert not [s for s in SECRETS if s in text], text
    # a summary is cut at oncall_max_chars AFTER redaction: no half secret survives the cut
    assert not re.search(r'lab-(pg|redis)-S3', text)
    assert sorted(vm.asked) == ['app-backend', 'app-db']  # scanned once for the play


def test_play_secrets_collect_by_name_and_by_reference_each_host_once():
    from ansible_collections.sre.incident_response.plugins.plugin_utils.play_secrets import PlaySecrets
    vm = FakeVM(extra={'comms_webhook_token': 'tok-extra-123456'},
                host_vars={'app-db': {'db_pass_ref': 'lab-pg-S3cret-4f9a',
                                      'incident_services': [{'postgres': {'password_var': 'db_pass_ref'}}]}})
    secrets = PlaySecrets()
    literals, extra = secrets.scan(PlayWithVars('p', vm))
    assert {'tok-extra-123456', PG} <= literals and extra == {'comms_webhook_token': 'tok-extra-123456'}
    again, dummy = secrets.scan(PlayWithVars('p2', vm))
    assert vm.asked == ['app-db'] and PG not in again


# --- module_args at -vvv: every secret option is no_log ---------------------------------------------------------

SECRET_OPTION = re.compile(r'(?i)(^|_)(password|passwd|pass|passphrase|token|secret|api_?key|routing_?key|'
                           r'integration_?key|webhook_?url|credentials?|dsn|private_?key|cookie)$')


class Captured(Exception):
    pass


def module_spec(name):
    module = importlib.import_module('%s.%s' % (modules_pkg.__name__, name))
    seen = {}

    def capture(*args, **kwargs):
        seen['spec'] = kwargs.get('argument_spec') or args[0]
        raise Captured()
    with mock.patch.object(module, 'AnsibleModule', side_effect=capture):
        with pytest.raises(Captured):
            module.main()
    return seen['spec']


def action_specs():
    base = os.path.join(ROOT, 'plugins', 'action')
    for name in sorted(os.listdir(base)):
        if name.endswith('.py'):
            plugin = importlib.import_module('ansible_collections.sre.incident_response.plugins.action.%s' % name[:-3])
            spec = getattr(plugin.ActionModule, 'ARGSPEC', None)
            if spec:
                yield 'action %s' % name[:-3], spec


def options(spec, prefix=''):
    for name, option in (spec or {}).items():
        yield prefix + name, option
        for alias in option.get('aliases') or []:
            yield prefix + alias, option
        for sub in ('options', 'suboptions'):
            if option.get(sub):
                yield from options(option[sub], '%s%s.' % (prefix, name))


def test_every_secret_option_of_every_module_and_action_is_no_log():
    specs = [('module %s' % name, module_spec(name)) for name in plain_modules()] + list(action_specs())
    assert len(specs) > 15
    checked, missing = [], []
    for where, spec in specs:
        for name, option in options(spec):
            if SECRET_OPTION.search(name.rsplit('.', 1)[-1]):
                checked.append('%s %s' % (where, name))
                if option.get('no_log') is not True:
                    missing.append('%s %s' % (where, name))
    assert 'module probe postgres.login_password' in checked and 'module pg_sessions login_password' in checked
    assert not missing, 'secret options without no_log=True: %s' % ', '.join(missing)


# --- a redacted value never becomes a selector ----------------------------------------------------------------------

def test_a_redacted_application_name_never_selects_sessions_to_terminate():
    """The findings hold `******** ********` where an application_name carried the passwords: as a pg_terminate
    selector (a shell pattern) it would match every application name with a space. The first action selects
    by state, role and age (excluding the backend's sessions when some are past the threshold) instead."""
    from test_first_action_fixes import CTX, SERVER, T, session
    from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import diagnosis as dx
    from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor
    activity = [session(i, '%s %s' % (PG, REDIS)) for i in range(30)] + [session(100 + i, 'app-backend', 'idle', age=5)
                                                                         for i in range(3)]
    finding = Redactor(literals=SECRETS).data(area_postgres.evaluate_connections('app-db', 'db', SERVER, activity, T))
    top = dx.diagnose([finding], CTX)['hypotheses'][0]
    assert top['action'] == 'kill_query'
    assert 'pg_terminate_application_names' not in top['first_action'], top['first_action']
    assert "-e pg_terminate_states='idle in transaction' -e pg_terminate_roles=app" in top['first_action']
    # the backend's own sessions are not past the threshold: state, role and age select only the others'
    assert top['first_action'].endswith('-e pg_terminate_roles=app -e pg_terminate_min_age=30'), top['first_action']
    assert not [s for s in SECRETS if s in json.dumps(top)]
