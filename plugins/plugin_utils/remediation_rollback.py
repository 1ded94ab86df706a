# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `rollback` handler of the remediation engine (plugins/action/remediation_run.py, HANDLERS; role rollback).

Docker (deploy.type docker, deploy.container): docker_rollback in check mode plans (the current and the target
image, the target checked locally before anything stops), then runs once on the planned target: the container is
recreated from its own spec with only the image changed, health is waited for and the previous container comes
back by itself when the new one is not healthy.

Release symlink (deploy.release_link): stat and find plan (the link, the releases beside the current one), file
switches the link and systemd_service restarts deploy.unit when given.

Verification: the container (or the link and the unit) on the target, the health endpoints of the service with the
triage's health settings, GET on its critical_paths without 5xx and the app_logs area on the new version (the log
lines since the switch) with the triage's settings; the engine re-runs the hypothesis's symptom checks after.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible.errors import AnsibleActionFail
from ansible.module_utils.six.moves.urllib.error import HTTPError
from ansible.module_utils.urls import open_url

from ansible_collections.sre.incident_response.plugins.action.probe import app_logs_args
from ansible_collections.sre.incident_response.plugins.module_utils import remediation as logic
from ansible_collections.sre.incident_response.plugins.module_utils.timefmt import parse_ts
from ansible_collections.sre.incident_response.plugins.plugin_utils.remediation_options import as_list

ACTION = 'rollback'
ALREADY_PREFIX = 'already rolled back'  # docker_rollback's reason when the container carries rolled_back_from
REQUESTED = 'requested (image)'         # docker_rollback's reason for an explicit image


# --- pure logic (tests/unit/test_remediation_rollback.py) -----------------------------------------------------

names = as_list  # a list setting, or a comma-separated string as -e gives it


def deploy_kind(deploy):
    """'docker', 'symlink' or None (the old preflight: a container, else a release link)."""
    if not isinstance(deploy, dict):
        return None
    if deploy.get('type') == 'docker':
        return 'docker' if deploy.get('container') else None
    return 'symlink' if deploy.get('release_link') else None


def previous_release(current, siblings):
    """The release directory to roll back to: the highest sibling below the current one (versions compare as
    versions, other names as text); '' when there is none."""
    def key(path):
        return (logic.version_key(os.path.basename(path.rstrip('/'))), path)
    lower = [p for p in siblings if p != current and key(p) < key(current)]
    return max(lower, key=key) if lower else ''


def judge_docker_plan(res, requested):
    """(lines, targets, refuse) of docker_rollback's check-mode result."""
    lines = list(res.get('plan') or [])
    if res.get('changed'):
        return lines, [1], ''
    reason = str((res.get('target') or {}).get('reason') or '')
    if reason.startswith(ALREADY_PREFIX) or (requested and reason == REQUESTED):
        return lines, [], ''  # rolled back before, or already on the requested image: nothing to do
    current = (res.get('current') or {}).get('image')
    return lines, [], ('the previous image (%s) is the one running (%s): a rollback cannot help; pass rollback_image'
                       % (reason or 'chosen automatically', current))


def symlink_plan(link, current, target, unit, requested, earlier=None):
    """(lines, targets, refuse) of a release-link rollback from `current` to `target` ('' when there is none);
    earlier: the done rollback of this incident that switched the link to `current` ({'from', 'at'}), if any."""
    if target and target == current:
        return ['%s: already on %s%s; nothing to do' % (link, current, ' (rollback_release)' if requested else '')], [], ''
    if target:
        return ['%s: %s -> %s%s' % (link, current, target, (' then restart %s' % unit) if unit else '')], [1], ''
    if earlier:
        return ['%s: on %s, rolled back from %s at %s; no earlier release beside it: nothing to do' % (
            link, current, earlier.get('from') or '?', earlier.get('at') or '?')], [], ''
    return (['%s: on %s, no earlier release beside it to roll back to' % (link, current)], [],
            '%s points to %s and no earlier release is beside it (or set rollback_release)' % (link, current))


def window_since(started, now=None, floor=1):
    """The app_logs window covering the log lines since `started` (epoch seconds): '<n>s'."""
    now = time.time() if now is None else now
    return '%ds' % max(floor, int(now - started) + 1)


def epoch(ts):
    try:
        return (parse_ts(ts) - parse_ts('1970-01-01T00:00:00Z')).total_seconds()
    except (TypeError, ValueError):
        return None


def judge_running(kind, state, target, replacement=''):
    """(ok, text) of the health area's health.container finding after the rollback: the container running the
    target image (the replacement the apply created, when it did), or the unit (process) ok."""
    if not state:
        return False, 'no state of the container or unit'
    f = state[0]
    if kind != 'docker':
        return f.get('status') == 'ok', f.get('summary') or ''
    ev = f.get('evidence') or {}
    same = not replacement or replacement.startswith(str(ev.get('id') or '-'))
    ok = bool(ev.get('running')) and ev.get('image') == target.get('image') and same
    return ok, 'container %s %s on %s%s' % (ev.get('name'), ev.get('status'), ev.get('image'),
                                            '' if same else ' (not the replacement %s)' % replacement[:12])


def bad_paths(statuses):
    """The critical paths still failing: a 5xx, or no answer (status None)."""
    return [path for path, status in statuses if status is None or int(status) >= 500]


def base_url(url):
    """scheme://host[:port] of a URL."""
    parts = str(url or '').split('/')
    return '/'.join(parts[:3]) if len(parts) >= 3 and parts[0] in ('http:', 'https:') else ''


def http_status(url, timeout=5):
    """The status of GET url (certificates not validated, as the old role's uri did); None when nothing answers."""
    try:
        resp = open_url(url, method='GET', timeout=timeout, validate_certs=False)
        return resp.getcode()
    except HTTPError as exc:
        return exc.code
    except Exception:  # pylint: disable=broad-except
        return None


# --- the handler ------------------------------------------------------------------------------------------

class Rollback(object):
    """rollback (role rollback): docker_rollback (check mode to plan, then once on the planned target) for a Docker
    service; stat + find to plan, file (the link) + systemd_service (deploy.unit) for a release symlink."""

    evidence_retries = 5

    def __init__(self, engine, svc, options):
        self.e, self.svc, self.o = engine, svc, options
        self.deploy = svc.get('deploy') if isinstance(svc.get('deploy'), dict) else {}
        self.kind = None
        self.since = None  # when the version switched (epoch): the log lines judged are the ones after
        self.after = {}

    # -- preflight

    def preflight(self):
        self.kind = deploy_kind(self.deploy)
        try:
            self.timeout = int(self.o.get('health_timeout', 90))
        except (TypeError, ValueError):
            self.timeout = -1
        if not self.kind or self.timeout < 1:
            raise AnsibleActionFail(
                'rollback needs the service %s in incident_services of %s deployed as a Docker container '
                '(deploy.type docker, deploy.container) or through a release symlink (deploy.release_link), and '
                'rollback_health_timeout of 1 s or more; got %s.' % (
                    self.svc.get('name') or '?', self.e._host, self.deploy or 'no service'))  # pylint: disable=protected-access
        urls = [h.get('url') for h in self.svc.get('health') or [] if isinstance(h, dict) and h.get('url')]
        self.health_url = urls[0] if urls else ''
        self.unit = self.deploy.get('unit') or ''
        retries = int(self.o.get('health_retries') or 0)
        self.health_retries = retries if retries > 0 else max(1, self.timeout // 2)

    # -- plan

    def plan(self):
        return self._plan_docker() if self.kind == 'docker' else self._plan_symlink()

    def _refused(self, lines, why, data):
        return {'lines': lines, 'targets': [], 'data': data,
                'refuse': '%s on %s was not applied, nothing changed: %s.' % (ACTION, self.svc.get('name'), why)}

    def _plan_docker(self):
        args = {'name': self.deploy['container'], 'health_timeout': self.timeout}
        if self.o.get('image'):
            args['image'] = self.o['image']
        try:
            res = self.e.module('sre.incident_response.docker_rollback', args, check=True)
        except AnsibleActionFail as exc:
            why = str(exc)
            return self._refused(['cannot roll back %s: %s' % (self.deploy['container'], why)], why, {})
        lines, targets, refuse = judge_docker_plan(res, bool(self.o.get('image')))
        data = {'current': res.get('current') or {}, 'target': res.get('target') or {}}
        if refuse:
            return self._refused(lines + ['cannot roll back: %s' % refuse], refuse, data)
        return {'lines': lines, 'targets': targets, 'data': data}

    def _stat(self, path):
        return self.e.module('ansible.legacy.stat', {'path': path, 'get_checksum': False, 'get_mime': False,
                                                     'get_attributes': False}).get('stat') or {}

    def _plan_symlink(self):
        link = self.deploy['release_link']
        st = self._stat(link)
        if not st.get('islnk'):
            why = '%s must be a symlink to a release directory with an earlier release beside it (or set rollback_release)' % link
            return self._refused(['%s is not a symlink (%s)' % (link, 'missing' if not st.get('exists') else 'not a link')],
                                 why, {})
        current = st.get('lnk_source') or ''
        requested = str(self.o.get('release') or '')
        earlier = None
        if requested:
            target = requested
            if target != current and not self._stat(target).get('isdir'):
                why = 'the release %s (rollback_release) is not a directory on %s' % (target, self.e._host)  # pylint: disable=protected-access
                return self._refused(['%s: %s -> %s: not a directory' % (link, current, target)], why,
                                     {'current': {'release': current}, 'target': {'release': target}})
        else:
            found = self.e.module('ansible.legacy.find', {'paths': [os.path.dirname(current)], 'file_type': 'directory'})
            target = previous_release(current, [f.get('path') for f in found.get('files') or [] if f.get('path')])
            if not target:
                earlier = self._rolled_back_to(current)
        lines, targets, refuse = symlink_plan(link, current, target, self.unit, bool(requested), earlier)
        data = {'current': {'release': current}, 'target': {'release': target or (current if earlier else '')}}
        if refuse:
            return self._refused(lines, refuse, data)
        if earlier:
            self.since = epoch(earlier.get('at'))
        return {'lines': lines, 'targets': targets, 'data': data}

    def _rolled_back_to(self, release):
        """The done rollback of this service (on this host) in the incident that switched the link to `release`."""
        store = self.e._store  # pylint: disable=protected-access
        if store is None:
            return None
        found = None
        for entry in logic.ledger(store.timeline(fresh=True)):
            if entry['action'] != ACTION or entry['service'] not in (None, self.svc.get('name')) or entry['state'] != 'done' \
                    or not entry['changed'] or (entry['host'] and entry['host'] != self.e._host):  # pylint: disable=protected-access
                continue
            result = (entry['event'].get('data') or {}).get('result') or {}
            if (result.get('target') or {}).get('release') == release:
                found = {'from': (result.get('previous') or {}).get('release'), 'at': entry['ts']}
        return found

    # -- apply

    def apply(self, plan, decision):
        name = self.svc.get('name')
        data = plan['data']
        result = {'previous': data.get('current') or {}, 'target': data.get('target') or {}, 'steps': []}
        if decision.get('already_applied'):
            earlier = ('was already rolled back' if decision.get('already_applied_state') == 'done'
                       else 'had a rollback that was interrupted (outcome unknown: check %s)' % (
                           self.deploy.get('container') or self.deploy.get('release_link')))
            self.since = epoch(decision.get('already_applied_at'))
            return {'changed': False, 'result': result, 'lines': [
                '%s %s under this approval at %s; nothing to do. A new rollback needs a new approval (another reason '
                'or change_ref).' % (name, earlier, decision.get('already_applied_at'))],
                'summary': 'rollback of %s: already rolled back under this approval, nothing done' % name}
        if not plan['targets']:
            return {'changed': False, 'result': result, 'lines': [],
                    'summary': 'rollback of %s: unchanged (already on the target) - %s' % (name, (plan['lines'] or [''])[0])}
        if self.kind == 'docker':
            return self._apply_docker(name, data, result)
        return self._apply_symlink(name, plan, result)

    def _apply_docker(self, name, data, result):
        current, target = data['current'], data['target']
        args = {'name': self.deploy['container'], 'image': target['image'], 'health_timeout': self.timeout,
                'keep_previous': bool(self.o.get('keep_previous', False))}
        if self.health_url:
            args['health_url'] = self.health_url
        self.since = time.time()
        res = self.e.module('sre.incident_response.docker_rollback', args, check=False)
        self.after = res
        changed = bool(res.get('changed'))
        result['steps'] = res.get('steps') or []
        summary = 'rollback of %s: %s (%s) %s' % (
            name, current.get('image'), current.get('digest'),
            ('-> %s (%s)' % (target.get('image'), target.get('digest'))) if changed else 'unchanged (already on the target)')
        return {'changed': changed, 'summary': summary, 'lines': [], 'result': result}

    def _apply_symlink(self, name, plan, result):
        link, target = self.deploy['release_link'], plan['data']['target']['release']
        self.since = time.time()
        res = self.e.module('ansible.legacy.file', {'src': target, 'dest': link, 'state': 'link', 'force': True},
                            check=False)
        changed = bool(res.get('changed'))
        result['steps'].append('%s -> %s%s' % (link, target, '' if changed else ' (already)'))
        if changed and self.unit:
            self.e.module('ansible.legacy.systemd_service', {'name': self.unit, 'state': 'restarted'}, check=False)
            result['steps'].append('restarted %s' % self.unit)
        result['restarted'] = bool(changed and self.unit)
        self.after = result
        return {'changed': changed, 'result': result, 'lines': [],
                'summary': 'rollback of %s: %s' % (name, plan['lines'][0] if changed else
                                                   '%s already on %s' % (link, target))}

    # -- verify

    def verify(self, plan, applied):
        target = plan['data'].get('target') or {}
        link_ok, where = (True, '') if self.kind == 'docker' else self._verify_link(target)
        health_ok, health_lines = True, []
        if self.svc.get('health'):
            health_ok, health_lines, dummy = self.e.health([self.svc.get('name')], self.health_retries)
        paths = self._critical_paths()
        failing = bad_paths(paths)
        running_ok, running, logs_ok, logs_summary, window = self._probe_after(target)
        where = ', '.join(x for x in (where, running) if x)
        summary = '%s on %s: %s, %s%s' % (
            self.svc.get('name'), target.get('image') or target.get('release') or '?', where,
            'no health endpoint' if not self.svc.get('health') else
            'health ok' if health_ok else 'health NOT ok %s' % '; '.join(health_lines)[:200],
            (', critical paths %s' % (('still failing: ' + ', '.join(failing)) if failing else
                                      '%s answer without 5xx' % ', '.join(p for p, dummy in paths))) if paths else '')
        return {'ok': link_ok and running_ok and health_ok and not failing and logs_ok, 'summary': summary,
                'findings': logs_summary, 'remaining': '',
                'result': {'running': where, 'health': health_lines, 'critical_paths': [list(p) for p in paths],
                           'findings': logs_summary, 'log_window': window}}

    def _verify_link(self, target):
        link = self.deploy['release_link']
        current = self._stat(link).get('lnk_source') or ''
        return current == target.get('release'), '%s -> %s' % (link, current or '(not a link)')

    def _critical_paths(self):
        base = base_url(self.health_url)
        if not (self.o.get('verify_critical_paths', True) and base):
            return []
        return [(path, http_status(base + path)) for path in names(self.svc.get('critical_paths'))]

    def _probe_after(self, target):
        """One probe on this host with the triage's settings: the health area's state of the container (or unit), and
        the app_logs area over the log lines since the switch (a log file or journald keeps the bad release's lines)
        judged on verify_checks. (running ok, running text, logs ok, logs summary, log window)."""
        e, name = self.e, self.svc.get('name')
        host = e._host  # pylint: disable=protected-access
        h = e.settings('health')
        module_args = {'report_host': host, 'workers': 2, 'health': dict((k, v) for k, v in {
            'report_host': host, 'services': [self.svc], 'window': h['health_window'],
            'restart_warn': h['health_restart_warn'], 'docker_host': h['health_docker_host']}.items() if v not in (None, ''))}
        checks = names(self.o.get('verify_checks', ['app.errors']))
        logs = app_logs_args(e.settings('app_logs'), [self.svc], host) if checks else None
        if logs and self.since:
            logs['window'] = window_since(self.since)
        if logs:
            module_args['app_logs'] = logs
        res = e._execute_module(module_name='sre.incident_response.probe', module_args=module_args,  # pylint: disable=protected-access
                                task_vars=e._vars)  # pylint: disable=protected-access
        found = [f for f in res.get('findings') or [] if isinstance(f, dict) and f.get('service') in (None, name)]
        e.record_findings(found)
        running_ok, running = judge_running(self.kind, [f for f in found if f.get('check') == 'health.container'],
                                            target, str(self.after.get('container_id') or ''))
        if not checks:
            return running_ok, running, True, 'no log check (rollback_verify_checks is empty)', ''
        if not logs:
            return running_ok, running, False, 'no log source for %s (logs, or kind backend)' % name, ''
        mine = [f for f in found if f.get('check') in checks]
        logs_ok = bool(mine) and all(f.get('status') == 'ok' for f in mine)
        return (running_ok, running, logs_ok, ', '.join('%s %s' % (f['check'], f['status']) for f in mine) or 'no finding',
                logs['window'])
