"""Who launched a remediation (plugins/module_utils/incident_approval.py): never an extra var."""
from ansible_collections.sre.incident_response.plugins.module_utils import incident_approval as ap
from ansible_collections.sre.incident_response.plugins.module_utils import remediation as rem


def test_extra_var_launcher_does_not_lower_the_os_user():
    tv = {'remediation_launcher': 'mallory'}
    launcher, source, allow, notes = ap.launcher_identity(tv, {'remediation_launcher': 'mallory'}, {}, 'root')
    assert (launcher, source, allow) == ('root', 'OS user', False)
    assert notes and '-e remediation_launcher=mallory ignored' in notes[0]
    gate = rem.decide('flush_keys', service='redis', apply=True, approved_by='root', reason='full', launcher=launcher,
                      allow_self_approval=allow)
    assert gate['refused'] and 'four-eyes rule' in gate['msg']


def test_sudo_user_is_the_launcher():
    assert ap.launcher_identity({}, {}, {'SUDO_USER': 'alice'}, 'root')[:2] == ('alice', 'SUDO_USER')


def test_awx_user_only_inside_an_awx_job():
    tv = {'awx_user_name': 'alice', 'awx_job_id': 42}
    assert ap.launcher_identity(tv, tv, {'JOB_ID': '42'}, 'runner')[0] == 'alice'
    launcher, _source, _allow, notes = ap.launcher_identity(tv, tv, {}, 'root')
    assert launcher == 'root' and '-e awx_user_name=alice ignored' in notes[0]


def test_inventory_policy_overrides_and_is_recorded():
    tv = {'remediation_launcher': 'change-bot', 'remediation_allow_self_approval': True}
    launcher, source, allow, notes = ap.launcher_identity(tv, {}, {}, 'root')
    assert launcher == 'change-bot' and source.startswith('inventory remediation_launcher (policy; OS user was root')
    assert allow is True and notes == []


def test_self_approval_from_the_command_line_is_ignored():
    tv = {'remediation_allow_self_approval': 'true'}
    _l, _s, allow, notes = ap.launcher_identity(tv, {'remediation_allow_self_approval': 'true'}, {}, 'root')
    assert allow is False and 'remediation_allow_self_approval ignored' in notes[0]
