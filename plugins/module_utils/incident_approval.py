# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who launched a remediation, for the four-eyes rule: never taken from a command-line variable.

- In AWX/AAP (the job's environment has JOB_ID and it is the awx_job_id AWX passes): awx_user_name.
- Otherwise the OS user that runs ansible-playbook, or SUDO_USER when it runs under sudo.
- A policy may name the launcher, or lift four eyes, only in inventory (remediation_launcher,
  remediation_allow_self_approval in group_vars/host_vars); the approval event records it. The same
  variables given with -e are ignored, and the gate says so.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _text(value):
    return str(value).strip() if value is not None and str(value).strip() else ''


def _truthy(value):
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ('true', 'yes', 'on', '1')


def in_awx(task_vars, environ):
    """True when the run is an AWX/AAP job: JOB_ID in the environment matches the awx_job_id extra var."""
    job = _text(environ.get('JOB_ID'))
    ids = [_text(task_vars.get(k)) for k in ('awx_job_id', 'tower_job_id')]
    return bool(job) and job in ids


def launcher_identity(task_vars, extra_vars, environ, os_user):
    """(launcher, source, allow_self_approval, notes) for the gate.

    task_vars: the task's variables (inventory, play, role and extra vars merged); extra_vars: the extra vars
    alone (-e, AWX extra vars); environ: the controller's environment; os_user: getpass.getuser().
    """
    task_vars = task_vars or {}
    extra_vars = extra_vars or {}
    notes = []
    if in_awx(task_vars, environ):
        launcher = _text(task_vars.get('awx_user_name')) or _text(task_vars.get('tower_user_name'))
        source = 'awx_user_name (AWX job %s)' % _text(environ.get('JOB_ID'))
        if not launcher:
            launcher, source = 'unknown', 'AWX job without awx_user_name'
    else:
        sudo_user = _text(environ.get('SUDO_USER'))
        launcher, source = (sudo_user, 'SUDO_USER') if sudo_user else (_text(os_user) or 'unknown', 'OS user')
        for key in ('awx_user_name', 'tower_user_name'):
            if _text(extra_vars.get(key)):
                notes.append('-e %s=%s ignored: this is not an AWX job (no JOB_ID matching awx_job_id)'
                             % (key, _text(extra_vars[key])))
    given = _text(extra_vars.get('remediation_launcher'))
    if given:
        notes.append('-e remediation_launcher=%s ignored: the launcher is %s (%s); a policy that must name the '
                     'launcher sets remediation_launcher in inventory' % (given, launcher, source))
    else:
        policy = _text(task_vars.get('remediation_launcher'))
        if policy and policy != launcher:
            source = 'inventory remediation_launcher (policy; %s was %s)' % (source, launcher)
            launcher = policy
    allow = False
    if 'remediation_allow_self_approval' in extra_vars:
        if _truthy(extra_vars['remediation_allow_self_approval']):
            notes.append('-e remediation_allow_self_approval ignored: lifting four eyes is a policy set in inventory')
    else:
        allow = _truthy(task_vars.get('remediation_allow_self_approval', False))
    return launcher, source, allow, notes
