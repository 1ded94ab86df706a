# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who launched a remediation, for the four-eyes rule: only what the caller cannot set.

Trusted (the kernel, or AWX's own API):
- the real and effective uid of the run, named by the passwd database;
- the audit login uid (/proc/self/loginuid) when it is set: the account that logged in, kept across sudo and su;
- the account that started sudo, su or doas above this run: the real uid of the process that ran it, read from
  /proc/<pid>/status of the run's ancestors. SUDO_USER names the launcher only when it agrees with that (and
  euid is 0, and SUDO_UID is SUDO_USER's uid); otherwise it is ignored and the gate says so;
- in an AWX/AAP job, the user who launched the job according to the controller's API (GET jobs/<JOB_ID>/ on
  remediation_awx_url from inventory, with the controller credential's token): only for a job that is running.

Never trusted: extra vars (awx_user_name, awx_job_id, remediation_launcher, remediation_allow_self_approval,
remediation_awx_url given with -e), and environment variables a caller sets (USER, LOGNAME, SUDO_USER alone,
JOB_ID alone). A policy may name the launcher, or lift four eyes, only in inventory.

The four-eyes rule compares the approver with every account of the run (`identities`), so a claim that cannot be
checked never makes the launcher someone else. When the launcher cannot be established (an AWX job the API does
not confirm, an account without a passwd entry, a sudo whose caller is gone) `problems` says why, and the gate
refuses destructive classes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import pwd

from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlsplit, urlunsplit

from ansible.module_utils.urls import ConnectionError as UrlConnectionError
from ansible.module_utils.urls import SSLValidationError, open_url

UNSET_LOGINUID = 4294967295
# setuid-root programs that start a process for another account: their caller is an identity of the run
ELEVATORS = ('sudo', 'su', 'doas')
MAX_ANCESTORS = 64
AWX_CLAIM_VARS = ('awx_job_id', 'tower_job_id', 'awx_user_name', 'tower_user_name')
AWX_TOKEN_ENV = ('CONTROLLER_OAUTH_TOKEN', 'TOWER_OAUTH_TOKEN')
AWX_USER_ENV = (('CONTROLLER_USERNAME', 'CONTROLLER_PASSWORD'), ('TOWER_USERNAME', 'TOWER_PASSWORD'))
AWX_TIMEOUT = 10


def _text(value):
    return str(value).strip() if value is not None and str(value).strip() else ''


def _truthy(value):
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ('true', 'yes', 'on', '1')


# --- the kernel's view ----------------------------------------------------------------------------------------

class Accounts(object):
    """uid <-> name from the passwd database (replaceable in tests)."""

    def name(self, uid):
        try:
            return pwd.getpwuid(int(uid)).pw_name
        except (KeyError, ValueError, TypeError, OverflowError):
            return None

    def uid(self, name):
        try:
            return pwd.getpwnam(str(name)).pw_uid
        except (KeyError, TypeError):
            return None


class Proc(object):
    """Processes as /proc shows them; `root` may be a directory of the same shape (unit tests)."""

    def __init__(self, root='/proc'):
        self.root = root

    def _read(self, pid, name):
        try:
            with open(os.path.join(self.root, str(pid), name), 'r') as handle:
                return handle.read()
        except (IOError, OSError):
            return None

    def status(self, pid):
        """{'pid', 'name', 'ppid', 'ruid', 'euid', 'exe'} of a process, or None when it cannot be read."""
        text = self._read(pid, 'status')
        if text is None:
            return None
        out = {'pid': int(pid), 'name': None, 'ppid': None, 'ruid': None, 'euid': None}
        for line in text.splitlines():
            key, dummy, value = line.partition(':')
            value = value.strip()
            if key == 'Name':
                out['name'] = value
            elif key == 'PPid':
                out['ppid'] = int(value or 0)
            elif key == 'Uid':
                uids = value.split()
                out['ruid'], out['euid'] = int(uids[0]), int(uids[1])
        if out['ppid'] is None or out['ruid'] is None:
            return None
        try:
            out['exe'] = os.readlink(os.path.join(self.root, str(pid), 'exe'))
        except OSError:
            out['exe'] = None  # another account's setuid process: not readable unless we are root
        return out

    def loginuid(self, pid):
        text = self._read(pid, 'loginuid')
        try:
            value = int(text.strip())
        except (AttributeError, ValueError):
            return None
        return None if value in (UNSET_LOGINUID, -1) else value

    def ancestors(self, pid, limit=MAX_ANCESTORS):
        """The process and its ancestors, nearest first, up to pid 1 (bounded); an unreadable one ends the list."""
        chain, seen = [], set()
        current = pid
        while current and current not in seen and len(chain) < limit:
            seen.add(current)
            status = self.status(current)
            if status is None:
                break
            chain.append(status)
            current = status['ppid']
        return chain


def _program(status):
    """The program of a process: its executable's name when readable (a process can rename itself, not its exe)."""
    exe = status.get('exe')
    return os.path.basename(exe).split(' ')[0] if exe else status.get('name')


def _is_elevator(status):
    """A process of sudo/su/doas running with euid 0: only a setuid-root program gives a non-root caller euid 0."""
    return status.get('euid') == 0 and _program(status) in ELEVATORS


def _is_sudo(status):
    return _program(status) == 'sudo'


def elevations(chain):
    """[(elevator, caller or None)] for every sudo/su/doas above the run: caller = the first ancestor above it
    that is not an elevator itself (sudo's monitor process and sudo itself count as one)."""
    out = []
    index = 1  # chain[0] is the run itself
    while index < len(chain):
        if _is_elevator(chain[index]):
            top = index
            while top + 1 < len(chain) and _is_elevator(chain[top + 1]):
                top += 1
            caller = chain[top + 1] if top + 1 < len(chain) else None
            out.append((chain[index], caller))
            index = top + 1
        else:
            index += 1
    return out


def os_identity(environ=None, proc=None, accounts=None, pid=None, uid=None, euid=None):
    """Who runs this process according to the kernel: {'launcher', 'source', 'identities', 'problems', 'notes'}.

    launcher: the audit login uid's account when set, else the account that started the outermost sudo/su/doas,
    else the real uid's account. identities: every account of the run (real, effective, login, callers of
    sudo/su/doas). problems: why the launcher is not established (destructive classes are then refused).
    """
    environ = os.environ if environ is None else environ
    proc = proc or Proc()
    accounts = accounts or Accounts()
    pid = os.getpid() if pid is None else pid
    uid = os.getuid() if uid is None else uid
    euid = os.geteuid() if euid is None else euid
    identities, problems, notes = [], [], []

    def named(number, what):
        name = accounts.name(number)
        if name is None:
            return None, '%s (uid %d) has no passwd entry' % (what, number)
        return name, None

    def add(name):
        if name and name not in identities:
            identities.append(name)

    real_name, real_problem = named(uid, 'the account of the run')
    add(real_name)
    add(accounts.name(euid))
    chain = proc.ancestors(pid)
    callers = []  # (caller name, caller uid, elevator) outermost last
    for elevator, caller in elevations(chain):
        who = elevator['ruid'] if elevator['ruid'] != 0 else (caller['ruid'] if caller else None)
        if who is None:
            problems.append('%s (pid %d) was started by a process that is gone: who ran it is unknown'
                            % (elevator['name'], elevator['pid']))
            continue
        name, problem = named(who, 'the account that ran %s (pid %d)' % (elevator['name'], elevator['pid']))
        if problem:
            problems.append(problem)
            continue
        callers.append((name, who, elevator))
        add(name)
    login = proc.loginuid(pid)
    login_name = None
    if login is not None:
        login_name, problem = named(login, 'the login account')
        if problem:
            problems.append(problem)
        add(login_name)

    # SUDO_USER: only when sudo really started this run as that account
    sudo_user, sudo_uid = _text(environ.get('SUDO_USER')), _text(environ.get('SUDO_UID'))
    sudo_verified = None
    if sudo_user:
        why = None
        if euid != 0:
            why = 'the run is not root (euid %d)' % euid
        elif not sudo_uid.isdigit():
            why = 'SUDO_UID is missing'
        elif accounts.uid(sudo_user) != int(sudo_uid):
            why = 'SUDO_UID %s is not the uid of %s' % (sudo_uid, sudo_user)
        else:
            match = [c for c in callers if c[1] == int(sudo_uid) and _is_sudo(c[2])]
            if not match:
                why = 'no sudo above this run was started by uid %s' % sudo_uid
                reparented = [c for c in callers if _is_sudo(c[2]) and c[2]['ppid'] == 1]
                if reparented:
                    problems.append('sudo (pid %d) now belongs to pid 1 (its caller is gone) and SUDO_UID says %s: '
                                    'who ran it is unknown' % (reparented[0][2]['pid'], sudo_uid))
            else:
                sudo_verified = match[-1]
        if why:
            notes.append('SUDO_USER=%s ignored: %s' % (sudo_user, why))

    if login_name:
        launcher, source = login_name, 'login uid %d (%s)' % (login, login_name)
    elif login is not None:
        launcher, source = 'uid %d' % login, 'login uid %d' % login
    elif sudo_verified:
        name, who, elevator = sudo_verified
        launcher, source = name, 'SUDO_USER %s, verified: sudo pid %d run by uid %d' % (name, elevator['pid'], who)
    elif callers:
        name, who, elevator = callers[-1]
        launcher, source = name, '%s pid %d run by %s (uid %d)' % (elevator['name'], elevator['pid'], name, who)
    elif real_name:
        launcher, source = real_name, 'OS user %s (uid %d)' % (real_name, uid)
    else:
        launcher, source = 'uid %d' % uid, 'OS uid %d' % uid
        problems.append(real_problem)
    return {'launcher': launcher, 'source': source, 'identities': identities, 'problems': problems, 'notes': notes}


# --- AWX / AAP: ask the controller ----------------------------------------------------------------------------

class AwxUnverified(Exception):
    """The controller does not confirm the job (the message says why)."""


def _redact_url(url):
    """The URL without user:password@, query or fragment."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit('@', 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, '', ''))


def awx_job_url(base, job_id):
    """jobs/<id>/ under the API root: https://awx.example.com -> .../api/v2/jobs/<id>/; a URL that already holds
    /api/ (AAP gateway: https://aap.example.com/api/controller/v2/) is the API root itself."""
    base = str(base).rstrip('/') + '/'
    if '/api/' not in base:
        base += 'api/v2/'
    return base + 'jobs/%s/' % quote(str(job_id), safe='')


def fetch_awx_job(base, job_id, environ, validate_certs=True, timeout=AWX_TIMEOUT):
    """GET jobs/<job_id>/ with the controller credential from the environment; returns the job (dict)."""
    url = awx_job_url(_redact_url(str(base)), job_id)  # credentials come from the environment, never the URL
    shown = url
    scheme = urlsplit(url).scheme
    if scheme not in ('http', 'https'):
        raise AwxUnverified('remediation_awx_url must be an http(s) URL, got %s' % _redact_url(str(base)))
    headers = {'Accept': 'application/json'}
    token = next((environ.get(k) for k in AWX_TOKEN_ENV if _text(environ.get(k))), None)
    if token:
        headers['Authorization'] = 'Bearer %s' % token.strip()
    else:
        pair = next(((environ.get(u), environ.get(p)) for u, p in AWX_USER_ENV if _text(environ.get(u))), None)
        if not pair or pair[1] is None:
            raise AwxUnverified('no controller credential in the job environment (CONTROLLER_OAUTH_TOKEN or '
                                'CONTROLLER_USERNAME/CONTROLLER_PASSWORD): attach the controller credential')
        raw = ('%s:%s' % pair).encode('utf-8')
        headers['Authorization'] = 'Basic %s' % base64.b64encode(raw).decode('ascii')
    try:
        response = open_url(url, headers=headers, timeout=timeout, validate_certs=validate_certs,
                            follow_redirects='none', use_proxy=False)
        try:
            body = response.read(1024 * 1024)
        finally:
            response.close()
    except HTTPError as exc:
        if exc.code == 404:
            raise AwxUnverified('the controller knows no job %s (%s answered 404)' % (job_id, shown))
        raise AwxUnverified('%s answered HTTP %d' % (shown, exc.code))
    except (URLError, SSLValidationError, UrlConnectionError, OSError, ValueError) as exc:
        reason = getattr(exc, 'reason', exc)
        raise AwxUnverified('%s could not be read: %s' % (shown, reason))
    try:
        job = json.loads(body.decode('utf-8'))
    except ValueError:
        raise AwxUnverified('%s did not answer JSON' % shown)
    if not isinstance(job, dict):
        raise AwxUnverified('%s did not answer a job' % shown)
    return job


def awx_launcher(job, job_id):
    """(launcher, detail) of a job document that is this job and running now; AwxUnverified otherwise."""
    if str(job.get('id')) != str(job_id):
        raise AwxUnverified('the controller answered job %s for job %s' % (job.get('id'), job_id))
    status = job.get('status')
    if status != 'running':
        raise AwxUnverified('AWX job %s is not running (status %s): a finished or queued job launches nothing'
                            % (job_id, status))
    by = job.get('launched_by') or {}
    name = _text(by.get('name'))
    kind = _text(by.get('type'))
    if name and kind in ('user', ''):
        return name, 'AWX job %s launched by user %s (controller API)' % (job_id, name)
    if name:
        return '%s:%s' % (kind, name), 'AWX job %s launched by %s %s (controller API)' % (job_id, kind, name)
    created = _text(((job.get('summary_fields') or {}).get('created_by') or {}).get('username'))
    if created:
        return created, 'AWX job %s created by %s (controller API)' % (job_id, created)
    raise AwxUnverified('the controller does not say who launched AWX job %s' % job_id)


# --- the launcher the gate uses -------------------------------------------------------------------------------

def _policy(task_vars, extra_vars, key):
    """(value, given_with_e): an inventory/playbook policy variable; the same variable given as an extra var is
    ignored (value None) - the caller cannot set policy."""
    if key in extra_vars:
        return None, True
    return task_vars.get(key), False


def launcher_identity(task_vars, extra_vars, environ, os_ident=None, fetch_job=None, ask_controller=True):
    """The launcher for the gate.

    task_vars: the task's variables (inventory, play, role and extra vars merged); extra_vars: the extra vars alone
    (-e, AWX extra vars); environ: the controller's environment; os_ident: os_identity() (computed when None);
    fetch_job: fetch_awx_job (replaceable in tests); ask_controller: False for a plan, which applies nothing (an AWX
    job is then neither confirmed nor doubted).

    Returns {'launcher', 'source', 'identities', 'problems', 'notes', 'allow_self_approval', 'awx'}: problems
    non-empty means the launcher is not established (the gate refuses destructive classes and says why).
    """
    task_vars = task_vars or {}
    extra_vars = extra_vars or {}
    fetch_job = fetch_job or fetch_awx_job
    ident = os_ident if os_ident is not None else os_identity(environ)
    identities = list(ident['identities'])
    problems = list(ident['problems'])
    notes = list(ident['notes'])
    launcher, source = ident['launcher'], ident['source']
    awx = None

    claimed = dict((k, _text(task_vars.get(k))) for k in AWX_CLAIM_VARS if _text(task_vars.get(k)))
    job_env = _text(environ.get('JOB_ID'))
    if ask_controller and (job_env or claimed):
        job_var = claimed.get('awx_job_id') or claimed.get('tower_job_id')
        job_id = job_env or job_var
        said = claimed.get('awx_user_name') or claimed.get('tower_user_name')
        url, url_by_e = _policy(task_vars, extra_vars, 'remediation_awx_url')
        validate, validate_by_e = _policy(task_vars, extra_vars, 'remediation_awx_validate_certs')
        if url_by_e:
            notes.append('-e remediation_awx_url ignored: the controller to ask is set in inventory only')
        if validate_by_e:
            notes.append('-e remediation_awx_validate_certs ignored: it is set in inventory only')
        why = None
        if not job_id:
            why = '%s is set but no AWX job id (JOB_ID)' % ', '.join(sorted(claimed))
        elif job_env and job_var and job_env != job_var:
            why = 'JOB_ID %s and awx_job_id %s disagree' % (job_env, job_var)
        elif not _text(url):
            why = 'remediation_awx_url is not set in inventory, so the controller cannot be asked'
        else:
            try:
                job = fetch_job(_text(url), job_id, environ,
                                validate_certs=True if validate is None else _truthy(validate))
                awx_user, detail = awx_launcher(job, job_id)
            except AwxUnverified as exc:
                why = str(exc)
            else:
                awx = {'job_id': job_id, 'launcher': awx_user}
                launcher, source = awx_user, detail
                if said and said != awx_user:
                    notes.append('awx_user_name=%s ignored: the controller says %s launched job %s'
                                 % (said, awx_user, job_id))
        if why:
            problems.append('the run claims to be AWX job %s%s, which the controller does not confirm: %s'
                            % (job_id or '?', (' launched by %s' % said) if said else '', why))
            if said:
                notes.append('awx_user_name=%s ignored: the launcher is %s (%s)' % (said, launcher, source))

    policy, policy_by_e = _policy(task_vars, extra_vars, 'remediation_launcher')
    if policy_by_e:
        notes.append('-e remediation_launcher=%s ignored: the launcher is %s (%s); a policy that must name the '
                     'launcher sets remediation_launcher in inventory'
                     % (_text(extra_vars.get('remediation_launcher')), launcher, source))
    elif _text(policy) and _text(policy) != launcher:
        source = 'inventory remediation_launcher (policy; %s was %s)' % (source, launcher)
        launcher = _text(policy)
    identities = [launcher] + [i for i in identities if i != launcher]
    allow, allow_by_e = _policy(task_vars, extra_vars, 'remediation_allow_self_approval')
    if allow_by_e and _truthy(extra_vars.get('remediation_allow_self_approval')):
        notes.append('-e remediation_allow_self_approval ignored: lifting four eyes is a policy set in inventory')
    return {'launcher': launcher, 'source': source, 'identities': identities, 'problems': problems,
            'notes': notes, 'allow_self_approval': bool(allow is not None and _truthy(allow)), 'awx': awx}
