"""Who launched a remediation (plugins/plugin_utils/incident/incident_approval.py): never an extra var or a caller's env.

The OS identity comes from a fake /proc tree (the same files the kernel shows) and a fake passwd database; the
AWX identity from a fake controller answer. The real controller API is exercised in test_approval_identity.py
(a local HTTP server) and the real playbook in tests/integration/test_approval_launcher.py.
"""
import os

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import incident_approval as ap
from ansible_collections.sre.incident_response.plugins.module_utils import remediation as rem

USERS = {0: 'root', 1000: 'alice', 1001: 'bob', 1002: 'carol'}


class FakeAccounts(object):
    def name(self, uid):
        return USERS.get(uid)

    def uid(self, name):
        return dict((v, k) for k, v in USERS.items()).get(name)


def proc_tree(tmp_path, procs, loginuid=None):
    """procs: [(pid, name, ppid, ruid, euid)]; the first is the run itself."""
    for pid, name, ppid, ruid, euid in procs:
        d = tmp_path / str(pid)
        d.mkdir()
        (d / 'status').write_text('Name:\t%s\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t%d\nPPid:\t%d\n'
                                  'Uid:\t%d\t%d\t%d\t%d\nGid:\t0\t0\t0\t0\n' % (name, pid, ppid, ruid, euid, euid, euid))
        (d / 'loginuid').write_text('%d' % (ap.UNSET_LOGINUID if loginuid is None else loginuid))
    return ap.Proc(str(tmp_path))


def ident(tmp_path, procs, environ=None, loginuid=None):
    run = procs[0]
    return ap.os_identity(environ=environ or {}, proc=proc_tree(tmp_path, procs, loginuid), accounts=FakeAccounts(),
                          pid=run[0], uid=run[3], euid=run[4])


ROOT_SHELL = [(300, 'python3', 200, 0, 0), (200, 'bash', 1, 0, 0), (1, 'systemd', 0, 0, 0)]
# alice's shell -> sudo (root after setuid(0)) -> sudo monitor (use_pty) -> ansible-playbook
SUDO_BY_ALICE = [(300, 'python3', 250, 0, 0), (250, 'sudo', 240, 0, 0), (240, 'sudo', 200, 0, 0),
                 (200, 'bash', 1, 1000, 1000), (1, 'systemd', 0, 0, 0)]


def test_root_is_root_whatever_sudo_user_user_and_logname_say(tmp_path):
    env = {'SUDO_USER': 'bob', 'SUDO_UID': '1001', 'USER': 'bob', 'LOGNAME': 'bob'}
    out = ident(tmp_path, ROOT_SHELL, env)
    assert (out['launcher'], out['identities'], out['problems']) == ('root', ['root'], [])
    assert out['notes'] == ['SUDO_USER=bob ignored: no sudo above this run was started by uid 1001']


def test_sudo_user_without_sudo_uid_is_ignored(tmp_path):
    out = ident(tmp_path, ROOT_SHELL, {'SUDO_USER': 'bob'})
    assert out['launcher'] == 'root' and out['notes'] == ['SUDO_USER=bob ignored: SUDO_UID is missing']


def test_sudo_user_is_the_launcher_only_when_sudo_really_ran_as_that_uid(tmp_path):
    out = ident(tmp_path, SUDO_BY_ALICE, {'SUDO_USER': 'alice', 'SUDO_UID': '1000'})
    assert out['launcher'] == 'alice' and out['source'].startswith('SUDO_USER alice, verified: sudo pid 250 run by uid 1000')
    assert set(out['identities']) == {'root', 'alice'} and out['problems'] == [] and out['notes'] == []


def test_a_sudo_user_that_disagrees_with_the_kernel_is_ignored_and_the_kernel_caller_is_the_launcher(tmp_path):
    # alice runs `sudo SUDO_USER=bob SUDO_UID=1001 ansible-playbook ...` (sudo lets some callers set variables)
    out = ident(tmp_path, SUDO_BY_ALICE, {'SUDO_USER': 'bob', 'SUDO_UID': '1001'})
    assert out['launcher'] == 'alice' and 'bob' not in out['identities']
    assert out['notes'] == ['SUDO_USER=bob ignored: no sudo above this run was started by uid 1001']


def test_the_caller_of_sudo_is_the_launcher_without_any_sudo_variable(tmp_path):
    out = ident(tmp_path, SUDO_BY_ALICE, {})
    assert out['launcher'] == 'alice' and out['source'] == 'sudo pid 250 run by alice (uid 1000)'


def test_sudo_user_is_not_trusted_when_the_run_is_not_root(tmp_path):
    procs = [(300, 'python3', 250, 1001, 1001), (250, 'sudo', 200, 0, 0), (200, 'bash', 1, 1000, 1000),
             (1, 'systemd', 0, 0, 0)]  # alice: sudo -u bob ansible-playbook
    out = ident(tmp_path, procs, {'SUDO_USER': 'alice', 'SUDO_UID': '1000'})
    assert out['notes'] == ['SUDO_USER=alice ignored: the run is not root (euid 1001)']
    assert out['launcher'] == 'alice' and set(out['identities']) == {'bob', 'alice'}


def test_a_process_named_sudo_that_is_not_root_is_not_sudo(tmp_path):
    procs = [(300, 'python3', 250, 0, 0), (250, 'sudo', 200, 1001, 1001), (200, 'bash', 1, 0, 0),
             (1, 'systemd', 0, 0, 0)]
    out = ident(tmp_path, procs, {'SUDO_USER': 'bob', 'SUDO_UID': '1001'})
    assert out['launcher'] == 'root' and 'bob' not in out['identities']


def test_su_caller_is_an_identity(tmp_path):
    procs = [(300, 'python3', 250, 0, 0), (250, 'su', 200, 0, 0), (200, 'bash', 1, 1002, 1002), (1, 'init', 0, 0, 0)]
    out = ident(tmp_path, procs)
    assert out['launcher'] == 'carol' and set(out['identities']) == {'root', 'carol'}


def test_login_uid_wins_and_survives_sudo(tmp_path):
    out = ident(tmp_path, SUDO_BY_ALICE, {'SUDO_USER': 'alice', 'SUDO_UID': '1000'}, loginuid=1002)
    assert out['launcher'] == 'carol' and out['source'] == 'login uid 1002 (carol)'
    assert set(out['identities']) == {'root', 'alice', 'carol'}


def test_unknown_accounts_are_problems(tmp_path):
    out = ident(tmp_path, [(300, 'python3', 1, 4242, 4242), (1, 'init', 0, 0, 0)])
    assert out['launcher'] == 'uid 4242' and out['problems'] == ['the account of the run (uid 4242) has no passwd entry']


def test_a_sudo_whose_caller_is_gone_is_a_problem_when_sudo_uid_disagrees(tmp_path):
    procs = [(300, 'python3', 250, 0, 0), (250, 'sudo', 1, 0, 0), (1, 'init', 0, 0, 0)]  # nohup sudo ...; logout
    out = ident(tmp_path, procs, {'SUDO_USER': 'alice', 'SUDO_UID': '1000'})
    assert out['problems'] and 'its caller is gone' in out['problems'][0]


def test_the_real_process_is_read_from_proc():
    out = ap.os_identity(environ={'USER': 'nobody-at-all', 'LOGNAME': 'nobody-at-all'})
    assert out['launcher'] != 'nobody-at-all' and 'nobody-at-all' not in out['identities']
    assert ap.Proc().status(os.getpid())['ruid'] == os.getuid()


# --- the launcher the gate uses ---------------------------------------------------------------------------

OS_ROOT = {'launcher': 'root', 'source': 'OS user root (uid 0)', 'identities': ['root'], 'problems': [], 'notes': []}


def launcher(task_vars, extra, environ=None, job=None, **kw):
    def fetch(url, job_id, env, validate_certs=True):
        fetch.calls.append((url, job_id, validate_certs))
        if isinstance(job, Exception):
            raise job
        return job
    fetch.calls = []
    out = ap.launcher_identity(task_vars, extra, environ or {}, os_ident=OS_ROOT, fetch_job=fetch, **kw)
    out['calls'] = fetch.calls
    return out


def test_row_4_awx_variables_and_job_id_without_the_controller_are_not_a_launcher():
    """JOB_ID=4242 ... -e awx_job_id=4242 -e awx_user_name=mallory -e approved_by=root, as root: self-approval."""
    extra = {'awx_job_id': 4242, 'awx_user_name': 'mallory'}
    out = launcher(dict(extra), extra, {'JOB_ID': '4242'})
    assert out['launcher'] == 'root' and out['calls'] == []
    assert out['problems'] == ['the run claims to be AWX job 4242 launched by mallory, which the controller does not '
                               'confirm: remediation_awx_url is not set in inventory, so the controller cannot be asked']
    gate = rem.decide('kill_query', service='db', apply=True, approved_by='root', reason='x', launcher=out['launcher'],
                      identities=out['identities'], identity_problems=out['problems'], incident_id='INC-1')
    assert gate['refused'] and 'four-eyes rule' in gate['msg'] and "the approver 'root' is the launcher" in gate['msg']
    # another approver: still refused, the launcher is not established
    gate = rem.decide('kill_query', service='db', apply=True, approved_by='bob', reason='x', launcher=out['launcher'],
                      identities=out['identities'], identity_problems=out['problems'], incident_id='INC-1')
    assert gate['refused'] and 'the launcher cannot be established' in gate['msg']
    # a non-destructive action goes on, recorded as launched by root
    assert rem.decide('restart', service='backend', apply=True, approved_by='root', reason='x', launcher='root',
                      identities=out['identities'], identity_problems=out['problems'])['apply']


def test_the_controller_names_the_launcher_of_a_running_job():
    tv = {'awx_job_id': 78, 'awx_user_name': 'mallory', 'remediation_awx_url': 'https://awx.example.com'}
    job = {'id': 78, 'status': 'running', 'launched_by': {'id': 7, 'name': 'alice', 'type': 'user'}}
    out = launcher(tv, {'awx_job_id': 78, 'awx_user_name': 'mallory'}, {'JOB_ID': '78'}, job)
    assert out['calls'] == [('https://awx.example.com', '78', True)]
    assert out['launcher'] == 'alice' and out['identities'] == ['alice', 'root'] and out['problems'] == []
    assert 'awx_user_name=mallory ignored: the controller says alice launched job 78' in out['notes']
    assert out['source'] == 'AWX job 78 launched by user alice (controller API)'


@pytest.mark.parametrize('job, why', [
    ({'id': 78, 'status': 'successful', 'launched_by': {'name': 'alice', 'type': 'user'}}, 'is not running (status successful)'),
    ({'id': 79, 'status': 'running', 'launched_by': {'name': 'alice', 'type': 'user'}}, 'answered job 79 for job 78'),
    ({'id': 78, 'status': 'running'}, 'does not say who launched'),
    (ap.AwxUnverified('the controller knows no job 78'), 'knows no job 78'),
])
def test_a_job_the_controller_does_not_confirm_is_a_problem(job, why):
    tv = {'awx_job_id': 78, 'remediation_awx_url': 'https://awx.example.com'}
    out = launcher(tv, {'awx_job_id': 78}, {'JOB_ID': '78'}, job)
    assert out['launcher'] == 'root' and len(out['problems']) == 1 and why in out['problems'][0]


def test_the_controller_url_is_inventory_only():
    tv = {'awx_job_id': 78, 'remediation_awx_url': 'http://127.0.0.1:9/fake', 'remediation_awx_validate_certs': False}
    out = launcher(tv, {'awx_job_id': 78, 'remediation_awx_url': 'http://127.0.0.1:9/fake',
                        'remediation_awx_validate_certs': False}, {'JOB_ID': '78'})
    assert out['calls'] == [] and out['problems']
    assert '-e remediation_awx_url ignored: the controller to ask is set in inventory only' in out['notes']
    assert '-e remediation_awx_validate_certs ignored: it is set in inventory only' in out['notes']


def test_job_id_and_awx_job_id_must_agree():
    tv = {'awx_job_id': 78, 'remediation_awx_url': 'https://awx.example.com'}
    out = launcher(tv, {'awx_job_id': 78}, {'JOB_ID': '4242'})
    assert out['calls'] == [] and 'JOB_ID 4242 and awx_job_id 78 disagree' in out['problems'][0]


def test_a_plan_does_not_ask_the_controller():
    tv = {'awx_job_id': 78, 'remediation_awx_url': 'https://awx.example.com'}
    out = launcher(tv, {'awx_job_id': 78}, {'JOB_ID': '78'}, ask_controller=False)
    assert out['calls'] == [] and out['problems'] == [] and out['launcher'] == 'root'


def test_extra_var_launcher_does_not_lower_the_os_user():
    out = launcher({'remediation_launcher': 'mallory'}, {'remediation_launcher': 'mallory'})
    assert (out['launcher'], out['allow_self_approval']) == ('root', False)
    assert out['notes'][0].startswith('-e remediation_launcher=mallory ignored: the launcher is root (OS user root (uid 0))')
    gate = rem.decide('flush_keys', service='redis', apply=True, approved_by='root', reason='full',
                      launcher=out['launcher'], identities=out['identities'])
    assert gate['refused'] and 'four-eyes rule' in gate['msg']


def test_inventory_policy_names_the_launcher_and_the_os_accounts_stay():
    out = launcher({'remediation_launcher': 'change-bot', 'remediation_allow_self_approval': True}, {})
    assert out['launcher'] == 'change-bot' and out['identities'] == ['change-bot', 'root']
    assert out['source'].startswith('inventory remediation_launcher (policy; OS user root (uid 0) was root')
    assert out['allow_self_approval'] is True and out['notes'] == []
    gate = rem.decide('flush_keys', service='redis', apply=True, approved_by='root', reason='x', launcher='change-bot',
                      identities=out['identities'])
    assert gate['refused'] and "(root runs or started this run)" in gate['msg']


def test_self_approval_from_the_command_line_is_ignored():
    out = launcher({'remediation_allow_self_approval': 'true'}, {'remediation_allow_self_approval': 'true'})
    assert out['allow_self_approval'] is False and 'remediation_allow_self_approval ignored' in out['notes'][0]


def test_awx_job_url():
    assert ap.awx_job_url('https://awx.example.com', 78) == 'https://awx.example.com/api/v2/jobs/78/'
    assert ap.awx_job_url('https://aap.example.com/api/controller/v2/', '78') == \
        'https://aap.example.com/api/controller/v2/jobs/78/'
    assert ap.awx_job_url('https://awx.example.com', '../x') == 'https://awx.example.com/api/v2/jobs/..%2Fx/'
