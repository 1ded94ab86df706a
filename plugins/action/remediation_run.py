# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: one remediation in one task - plan, gate, apply, record, verify (documentation in
plugins/modules/remediation_run.py).

The steps the remediation roles used to spread over 30 to 45 tasks (include_role, set_fact, assert, Jinja
filter chains) run here, in Python, in one task per target host:

plan    the action's module in its read-only form on the target (pg_sessions state=plan, docker_restart in
        check mode, systemctl show), recorded as the `plan` event;
gate    remediation_gate's decision (approval, four eyes, budget, the intent under the incident's lock);
apply   the same module, once, with what the plan saw (the pids, the container's start time); the `action` event
        settles the intent (done, or failed: the attempt counts against the budget);
verify  the action's own check (the re-listed sessions, the container running, the health endpoints) and the
        symptom checks of the hypothesis (the `evidence` of the gate) re-run by the probe areas with the settings
        and connection options triage uses (plugins/plugin_utils/settings.py: the role defaults and the
        inventory, TLS included), judged here; the `verify` event and, when the action's own symptom is gone but
        the services are still unhealthy, the next action of the diagnosis.

Every step writes the incident through the IncidentStore, redacted; the result is redacted too.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

from ansible.errors import AnsibleActionFail

try:  # ansible-core 2.19+
    from ansible.executor.module_common import _apply_action_arg_defaults as apply_module_defaults
except ImportError:  # ansible-core 2.17, 2.18
    from ansible.executor.module_common import get_action_args_with_defaults

    def apply_module_defaults(action, task, args, templar):
        return get_action_args_with_defaults(action, args, task.module_defaults, templar,
                                             action_groups=task._parent._play._action_groups)  # pylint: disable=protected-access

from ansible_collections.sre.incident_response.plugins.action import probe as probe_action
from ansible_collections.sre.incident_response.plugins.action.finding import finding_event, prepare
from ansible_collections.sre.incident_response.plugins.action.remediation_gate import ActionModule as GateAction
from ansible_collections.sre.incident_response.plugins.module_utils import probe_runner
from ansible_collections.sre.incident_response.plugins.module_utils.areas import health as area_health
from ansible_collections.sre.incident_response.plugins.module_utils.remediation import human_bytes
from ansible_collections.sre.incident_response.plugins.plugin_utils import disk_plan
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore, task_redactor
from ansible_collections.sre.incident_response.plugins.plugin_utils.remediation_redis_clients import KillClients
from ansible_collections.sre.incident_response.plugins.plugin_utils.remediation_options import as_bool, as_list, redis_login
from ansible_collections.sre.incident_response.plugins.plugin_utils.remediation_tls import ApplyCert
from ansible_collections.sre.incident_response.plugins.plugin_utils.remediation_rollback import Rollback

ACTIONS = ('kill_query', 'restart', 'flush_keys', 'apply_cert', 'rollback', 'raise_maxmemory', 'clean_disk',
           'kill_clients')
DEFAULT_STATES = ['active', 'idle in transaction', 'idle in transaction (aborted)']
EVIDENCE_RE = re.compile(r'^(pg[.]|redis[.]|host[.]disk$)')
AREA_OF = (('pg.', 'postgres'), ('redis.', 'redis'), ('host.disk', 'network'))
RETRY_DELAY = 2.0


def maxmemory_refusal(service, plan_lines):
    """Why raise_maxmemory is refused before the gate (the increase does not fit in the host's available memory)."""
    return ('raise_maxmemory on %s cannot be done safely: %s. Nothing was changed. Free memory on the host, raise '
            'redis_maxmemory_target_used_percent deliberately (a smaller increase), or find and stop the writer of the '
            'top key prefix (redis.memory evidence).' % (service, '; '.join(plan_lines or []) or 'no plan'))


def maxmemory_in_effect(in_effect, expected):
    """The maxmemory Redis reports is at least the one the apply set (another run may have raised it further; 0, no
    limit, stays no limit)."""
    return int(in_effect or 0) >= int(expected or 0)


def area_of(check):
    for prefix, area in AREA_OF:
        if check.startswith(prefix):
            return area
    return None


def judge_evidence(wanted, rerun):
    """(ok, summary) of the symptom checks [{'host', 'check'}] against the re-run findings."""
    got = dict(('%s/%s' % (f.get('host'), f.get('check')), f.get('status')) for f in rerun)
    parts, ok = [], True
    for item in wanted:
        key = '%s/%s' % (item['host'], item['check'])
        if key not in got:
            parts.append('%s not re-run' % key)
            ok = False
        else:
            parts.append('%s %s' % (key, got[key]))
            ok = ok and got[key] == 'ok'
    return ok, ', '.join(parts)


class ActionModule(GateAction):
    """plan -> gate -> apply -> record -> verify for one action on this host."""

    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True

    ARGSPEC = dict(GateAction.ARGSPEC, action=dict(type='str', required=True, choices=list(ACTIONS)),
                   options=dict(type='dict', default={}),
                   stage=dict(type='str', default='run', choices=['run', 'verify']),
                   previous=dict(type='dict', default={}),
                   verify_host=dict(type='str', default=''))

    # --- entry ---------------------------------------------------------------------------------

    def run(self, tmp=None, task_vars=None):
        result = super(GateAction, self).run(tmp, task_vars)  # ActionBase.run: the gate's own run is not wanted
        del tmp
        task_vars = task_vars or {}
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGSPEC)
        self._vars = task_vars
        self._redactor = task_redactor(task_vars, self._templar)
        self._host = task_vars.get('inventory_hostname')
        self._probed = {}  # (host, areas) -> findings the action's own check just probed (the symptom re-uses them)
        store = IncidentStore.resolve({'incident_id': args['incident_id'], 'incident_dir': args['incident_dir']}, task_vars)
        self._store = store
        if args['stage'] == 'verify':
            out = self._verify_elsewhere(args)
        else:
            svc = self._service(args['service'])
            handler = HANDLERS[args['action']](self, svc, args['options'])
            handler.preflight()
            out = self._run(args, handler, store)
        result.update(out)
        # printed whatever the callback (the plan before a refusal too); a refusal, a failed apply or a failed
        # verification fails the task after it is recorded
        result['msg'] = list(out.get('lines') or []) + ([out['failure']] if out.get('failure') else [])
        result['_ansible_verbose_always'] = True
        if out.get('failure'):
            result['failed'] = True
        return self._redactor.data(result)

    def _run(self, args, handler, store):
        action, service = args['action'], args['service']
        plan = handler.plan()
        head = 'PLAN %s on %s (%s):' % (action, service, self._host)
        lines = [head] + (plan['lines'] or ['nothing to do'])
        applying = args['apply'] and not self._task.check_mode
        lines.append('mode: %s' % ('apply requested' if applying else 'plan only'))
        self._event('plan', '%s on %s: %d target(s)%s' % (
            action, service, len(plan['lines']), (' - ' + plan['lines'][0][:160]) if plan['lines'] else ''), {
            'action': action, 'service': service, 'targets': plan['lines'], 'plan': plan['data'],
            'check_mode': bool(self._task.check_mode)})
        if plan.get('refuse') and (applying or getattr(handler, 'refuse_plan', False)):
            # a plan that cannot help says so before the gate: no approval is recorded, nothing changes (a handler
            # with refuse_plan fails a plan only run too: no option of the apply would make it help)
            return dict(changed=False, plan=plan['data'], plan_lines=plan['lines'], gate={}, evidence=[], verify_on='',
                        next=[], lines=lines, failure=plan['refuse'], verified=None, msg=plan['refuse'])
        decision, evidence, following = self.gate(args, self._vars, store)
        out = dict(changed=False, plan=plan['data'], plan_lines=plan['lines'], gate=decision, evidence=evidence, verify_on='',
                   next=following, lines=lines, failure='', verified=None, msg=decision['msg'])
        if decision['refused']:
            out['failure'] = decision['msg']
            return out
        if not decision['apply']:
            lines.append(decision['msg'])
            return out
        record = dict(action=action, service=service, approved_by=decision['approved_by'],
                      change_ref=decision['change_ref'], approval_id=decision.get('approval_id') or '',
                      intent_id=decision.get('intent_id') or '')
        try:
            applied = handler.apply(plan, decision)
        except Exception as exc:  # pylint: disable=broad-except
            text = ' '.join(str(exc).split())
            self._event('action', '%s on %s FAILED during the apply: %s' % (action, service, text[:300]), dict(
                record, status='failed', changed=None, result={'msg': text[:1000]}))
            out['failure'] = ('APPLY FAILED: %s on %s (%s) failed: %s. The attempt is recorded and counts against the '
                              'budget; check the target before retrying.' % (action, service, self._host, text))
            return out
        out['changed'] = bool(applied['changed'])
        lines.extend(applied.get('lines') or [])
        self._event('action', applied['summary'], dict(record, status='done', changed=bool(applied['changed']),
                                                       result=applied['result']))
        own = handler.verify(plan, applied)
        symptom = [e for e in evidence if EVIDENCE_RE.match(e['check'])
                   and e['host'] in (self._vars.get('groups') or {}).get('all', [e['host']])]
        pending = dict(action=action, service=service, own=own, symptom=symptom, next=following,
                       retries=handler.evidence_retries)
        elsewhere = sorted(set(e['host'] for e in symptom if e['host'] != self._host))
        if elsewhere:
            # another host's checks (the pool a restart of the backend frees is the database's): the role's next
            # task re-runs them there (delegate_to) and settles the verification
            out.update(verify_on=elsewhere[0], pending=pending)
            return out
        out.update(self._settle(pending, self._host))
        if out.get('verified'):
            lines.append(out.pop('verified_text'))
        return out

    def _verify_elsewhere(self, args):
        pending = args['previous'].get('pending') or {}
        if not pending:
            raise AnsibleActionFail('stage verify needs the result of stage run (previous) with a pending verification')
        out = self._settle(pending, args['verify_host'] or self._host)
        out['lines'] = [out.pop('verified_text')] if out.get('verified') else []
        out['changed'] = False
        return out

    def _settle(self, pending, host):
        """Judge the action's own check and the symptom checks of the hypothesis on `host`; record `verify`."""
        action, service, own, symptom = pending['action'], pending['service'], pending['own'], pending['symptom']
        symptom_ok, symptom_summary, rerun = True, '', []
        if symptom:
            symptom_ok, symptom_summary, rerun = self._evidence(symptom, int(pending.get('retries') or 5), host)
        verified = bool(own['ok'] and symptom_ok)
        remaining = own.get('remaining') or ''
        line = own['summary'] + (('; findings ' + own['findings']) if own.get('findings') else '') + \
            (('; symptom ' + symptom_summary) if symptom else '')
        nxt = ((pending.get('next') or [{}])[0].get('first_action') or '') if verified and remaining else ''
        outcome = 'verified' if verified else 'FAILED verification'
        self._event('verify', '%s on %s %s: %s' % (action, service, outcome, line), {
            'action': action, 'service': service, 'status': 'ok' if verified else 'failed', 'result': own['result'],
            'symptom_checks': [f.get('check') for f in rerun], 'symptom': symptom_summary,
            'remaining': remaining, 'next': nxt})
        out = dict(verified=verified, verify_line=line, remaining=remaining, next_action=nxt, failure='')
        if not verified:
            out['failure'] = ('VERIFICATION FAILED after %s on %s (%s): %s. The change was applied but the symptom is '
                              'not gone (or the service is not healthy): escalate and investigate.'
                              % (action, service, self._host, line))
            return out
        text = 'VERIFIED %s on %s: %s' % (action, service, line)
        if remaining:
            text += '. Still wrong: %s; NEXT: %s' % (remaining, nxt or 'no other action in the diagnosis: re-run triage')
        out['verified_text'] = text
        return out

    # --- shared steps ----------------------------------------------------------------------------

    def _event(self, kind, summary, data):
        if self._store is None:
            return
        self._store.append(self._store.event(kind, summary, host=self._host, data=data), self._redactor)

    def _service(self, name):
        for svc in probe_action.services_of(self._vars, self._templar):
            if svc.get('name') == name:
                return svc
        return {}

    def module(self, name, args, check=None):
        """Run a module on this host with the play's module_defaults for it and its action group (docker_host for
        group/sre.incident_response.docker, as when the roles ran the modules as tasks); raise AnsibleActionFail with
        its message when it fails."""
        args = apply_module_defaults(name, self._task, dict(args), self._templar)
        saved = self._task.check_mode
        if check is not None:
            self._task.check_mode = check
        try:
            res = self._execute_module(module_name=name, module_args=args, task_vars=self._vars)
        finally:
            self._task.check_mode = saved
        if res.get('failed') or res.get('unreachable'):
            raise AnsibleActionFail('%s: %s' % (name.rsplit('.', 1)[-1], res.get('msg') or 'failed'))
        return res

    def settings(self, role):
        return probe_action.role_settings(role, self._vars, self._templar, self._loader,
                                          cache_dir=probe_action.settings_cache_dir())

    def findings_of(self, area, checks, service=None):
        """(ok, summary, findings): the probe `area` re-run on this host with the triage settings (kept for the symptom
        checks of the hypothesis), recorded; ok when every finding of `checks` (of `service`, when given) is ok."""
        probed = self._probe([area])
        self._probed[(self._host, (area,))] = probed
        probe = [f for f in probed if service is None or f.get('service') in (None, service)]
        mine = [f for f in probe if f.get('check') in checks]
        self.record_findings(probe)
        ok = bool(mine) and all(f.get('status') == 'ok' for f in mine)
        return ok, ', '.join('%s %s' % (f['check'], f['status']) for f in mine) or 'no finding', mine

    def dependents(self, name):
        """The services of every host with a health endpoint that depend on the service `name`."""
        users = []
        hostvars = self._vars.get('hostvars') or {}
        for host in (self._vars.get('groups') or {}).get('all') or []:
            try:
                svcs = self._templar.template(hostvars[host].get('incident_services') or [])
            except Exception:  # pylint: disable=broad-except
                svcs = []
            users.extend(s.get('name') for s in svcs if isinstance(s, dict) and s.get('health')
                         and name in (s.get('depends_on') or []))
        return users

    def secret(self, name):
        return probe_action._secret(self._vars, self._templar, name)  # pylint: disable=protected-access

    def record_findings(self, findings):
        if self._store is None or not findings:
            return
        findings = [self._redactor.data(f) for f in prepare(findings, self._host)]
        self._store.record_findings(findings, [finding_event(self._store.incident_id, f) for f in findings],
                                    self._redactor)

    def _evidence(self, symptom, retries, host):
        """Re-run the probe areas of the symptom checks of `host` (the host this task's connection reaches: this one,
        or the delegate) with the triage settings, until ok or the retries are used."""
        mine = [e for e in symptom if e['host'] == host]
        areas = sorted(set(a for a in (area_of(e['check']) for e in mine) if a))
        rerun = []
        for attempt in range(max(1, retries)):
            if attempt:
                time.sleep(RETRY_DELAY)
            cached = self._probed.pop((host, tuple(areas)), None) if attempt == 0 else None
            rerun = cached if cached is not None else (self._probe(areas, host) if areas else [])
            rerun = [f for f in rerun if {'host': f.get('host'), 'check': f.get('check')} in symptom]
            ok, summary = judge_evidence(symptom, rerun)
            if ok or not areas:
                break
        self.record_findings(rerun)
        ok, summary = judge_evidence(symptom, rerun)
        return ok, summary, rerun

    def _host_vars(self, host):
        if host == self._host:
            return self._vars
        hostvars = self._vars.get('hostvars') or {}
        return dict(self._vars, **dict(hostvars[host])) if host in hostvars else self._vars

    def _probe(self, areas, host=None):
        host = host or self._host
        hvars = self._host_vars(host)
        services = probe_action.services_of(hvars, self._templar)

        def secret(name):
            return probe_action._secret(hvars, self._templar, name)  # pylint: disable=protected-access

        module_args = {'report_host': host, 'workers': 4}
        for area in areas:
            s = self.settings(area)
            if area in probe_action.BUILDERS:
                built = probe_action.BUILDERS[area](s, services, host)
            else:
                built = probe_action.SERVICE_BUILDERS[area](s, services, host, secret)
            if built:
                module_args[area] = built
        if len(module_args) == 2:
            return []
        res = self._execute_module(module_name='sre.incident_response.probe', module_args=module_args,
                                   task_vars=self._vars)
        return [f for f in res.get('findings') or [] if isinstance(f, dict)]

    def health(self, services, retries):
        """(ok, lines, findings): the health endpoints of `services` (by name) re-checked from the controller with the
        triage's health settings, until every one is ok or the retries are used (2 s apart)."""
        names = set(services)
        targets = {}
        hostvars = self._vars.get('hostvars') or {}
        for host in (self._vars.get('groups') or {}).get('all') or [self._host]:
            try:
                svcs = self._templar.template(hostvars[host].get('incident_services') or [])
            except Exception:  # pylint: disable=broad-except
                svcs = []
            chosen = [s for s in svcs if isinstance(s, dict) and s.get('name') in names and s.get('health')]
            if chosen:
                targets[host] = chosen
        if not targets:
            return True, [], []
        h = self.settings('health')
        params = {'http_targets': targets, 'timeout': h['health_timeout'], 'latency_warn_ms': h['health_latency_warn_ms'],
                  'latency_crit_ms': h['health_latency_crit_ms'], 'window': h['health_window'], 'restart_warn': 1,
                  'services': None, 'report_host': None, 'docker_host': None}
        found = []
        for attempt in range(max(1, retries)):
            if attempt:
                time.sleep(RETRY_DELAY)
            out = probe_runner.run_jobs([{'area': 'http', 'label': 'http', 'host': None, 'service': None,
                                          'run': area_health.run, 'module': probe_runner.AreaModule(self, params)}],
                                        workers=1)
            found = [f for f in out.get('findings') or [] if f.get('check') == 'health.endpoint']
            if found and all(f.get('status') == 'ok' for f in found):
                break
        self.record_findings(found)
        ok = bool(found) and all(f.get('status') == 'ok' for f in found)
        return ok, ['%s: %s' % (f.get('status'), f.get('summary')) for f in found], found

    # AreaModule's view of this action for the controller-side health area (it calls no command).
    check_mode = False

    def run_command(self, *args, **kwargs):
        raise AnsibleActionFail('a controller-side probe area ran a command')

    def get_bin_path(self, *args, **kwargs):
        return None


class KillQuery(object):
    """kill_query: pg_sessions (plan, terminate, re-list) on the service's connection settings."""

    evidence_retries = 5

    def __init__(self, engine, svc, options):
        self.e, self.svc, self.o = engine, svc, options

    def preflight(self):
        pg = self.svc.get('postgres') if isinstance(self.svc.get('postgres'), dict) else None
        roles = as_list(self.o.get('roles')) or as_list((pg or {}).get('app_roles'))
        if not pg or not pg.get('password_var') or not roles or float(self.o.get('min_age', 30)) < 0 \
                or float(self.o.get('grace_period', 5)) < 0:
            raise AnsibleActionFail(
                'pg_terminate needs a service %s with a postgres section (host, port, database, user, password_var, '
                'app_roles) in incident_services of %s, and application roles to act on (pg_terminate_roles or '
                'postgres.app_roles); it never acts on every role.' % (self.svc.get('name') or '?', self.e._host))
        self.filters = dict(
            roles=roles, databases=as_list(self.o.get('databases')) or [pg.get('database', 'postgres')],
            states=as_list(self.o.get('states')) or list(DEFAULT_STATES), min_age=float(self.o.get('min_age', 30)),
            application_names=as_list(self.o.get('application_names')),
            exclude_application_names=as_list(self.o.get('exclude_application_names')),
            include_blockers=bool(self.o.get('include_blockers', True)),
            allow_superuser=bool(self.o.get('allow_superuser', False)))
        s = self.e.settings('postgres')
        self.login = dict((k, v) for k, v in {
            'login_host': pg.get('host', '127.0.0.1'), 'login_port': int(pg.get('port', 5432)),
            'login_db': pg.get('database', 'postgres'), 'login_user': pg.get('user', 'postgres'),
            'login_password': self.e.secret(pg.get('password_var')),
            'ssl_mode': pg.get('ssl_mode', s['postgres_ssl_mode']), 'ca_cert': pg.get('ca_cert'),
            'connect_timeout': s['postgres_connect_timeout']}.items() if v not in (None, ''))

    def _sessions(self, state, pids=None, extra=None):
        args = dict(self.login, state=state, pids=list(pids or []), **self.filters)
        args.update(extra or {})
        return self.e.module('sre.incident_response.pg_sessions', args)

    def plan(self):
        res = self._sessions('plan', as_list(self.o.get('pids'), int))
        self.before = res
        return {'lines': res.get('plan') or [],
                'data': {'targets': res.get('targets') or [], 'filters': res.get('filters') or {}},
                'targets': res.get('targets') or []}

    def apply(self, plan, decision):
        targets = plan['targets']
        pids = [t['pid'] for t in targets]
        res = self._sessions('terminate', pids, {'grace_period': float(self.o.get('grace_period', 5))}) if pids else {}
        summary = 'kill_query on %s: cancelled %d, terminated %d session(s)%s' % (
            self.svc.get('name'), len(res.get('cancelled') or []), len(res.get('terminated') or []),
            (' (pids %s)' % ', '.join(str(p) for p in pids)) if pids else ', nothing to do')
        return {'changed': bool(res.get('changed')), 'summary': summary, 'lines': [],
                'result': {'targets': targets, 'cancelled': res.get('cancelled') or [],
                           'terminated': res.get('terminated') or [], 'remaining': res.get('remaining') or [],
                           'executed_queries': res.get('executed_queries') or []}}

    def verify(self, plan, applied):
        after = self._sessions('plan')
        planned = set(t['pid'] for t in plan['targets'])
        still = sorted(planned & set(t['pid'] for t in after.get('targets') or []))
        waiting = sorted(r['pid'] for r in after.get('excluded') or [] if r.get('blocked_by'))
        probed = self.e._probe(['postgres'])
        self.e._probed[(self.e._host, ('postgres',))] = probed
        probe = [f for f in probed if f.get('service') in (None, self.svc.get('name'))]
        checks = as_list(self.o.get('verify_checks')) or ['pg.locks']
        mine = [f for f in probe if f.get('check') in checks]
        self.e.record_findings(probe)
        findings_ok = bool(mine) and all(f.get('status') == 'ok' for f in mine)
        health_ok, health_lines = True, []
        if self.o.get('verify_health', True):
            users = []
            hostvars = self.e._vars.get('hostvars') or {}
            for host in (self.e._vars.get('groups') or {}).get('all') or []:
                try:
                    svcs = self.e._templar.template(hostvars[host].get('incident_services') or [])
                except Exception:  # pylint: disable=broad-except
                    svcs = []
                users.extend(s.get('name') for s in svcs if isinstance(s, dict) and s.get('health')
                             and self.svc.get('name') in (s.get('depends_on') or []))
            if users:
                health_ok, health_lines, dummy = self.e.health(users, int(self.o.get('health_retries', 5)))
        summary = '%d matching session(s) left%s, %d waiting on locks, health %s' % (
            len(after.get('targets') or []),
            (' (planned pids still there: %s)' % ', '.join(str(p) for p in still)) if still else '', len(waiting),
            'ok' if health_ok else 'NOT ok')
        return {'ok': findings_ok and not still and not waiting, 'summary': summary,
                'findings': ', '.join('%s %s' % (f['check'], f['status']) for f in mine) or 'no finding',
                'remaining': '' if health_ok else 'health NOT ok: %s' % '; '.join(health_lines)[:200],
                'result': {'after': after.get('targets') or [], 'waiting': waiting, 'health': health_lines}}


class Restart(object):
    """restart: docker_restart (check mode to plan, then once with the start time the plan saw) or systemd."""

    evidence_retries = 5

    def __init__(self, engine, svc, options):
        self.e, self.svc, self.o = engine, svc, options
        self.deploy = svc.get('deploy') if isinstance(svc.get('deploy'), dict) else {}

    def preflight(self):
        kind = self.deploy.get('type')
        if not ((kind == 'docker' and self.deploy.get('container')) or (kind == 'systemd' and self.deploy.get('unit'))):
            raise AnsibleActionFail(
                'restart needs the service %s in incident_services of %s with deploy.type docker (deploy.container) or '
                'systemd (deploy.unit); got %s.' % (self.svc.get('name') or '?', self.e._host, self.deploy or 'no service'))

    def _docker(self, check, started_at=None):
        args = {'name': self.deploy['container'], 'stop_timeout': int(self.o.get('stop_timeout', 10))}
        if started_at:
            args['started_at'] = started_at
        return self.e.module('sre.incident_response.docker_restart', args, check=check)

    def _unit_state(self):
        res = self.e.module('ansible.legacy.command', {'argv': [
            'systemctl', 'show', self.deploy['unit'], '--property=ActiveState,SubState,ActiveEnterTimestamp,NRestarts']},
            check=False)
        return [line for line in (res.get('stdout') or '').splitlines() if line.strip()]

    def plan(self):
        if self.deploy['type'] == 'docker':
            res = self._docker(True)
            return {'lines': [(res.get('plan') or [''])[0]], 'data': res.get('before') or {}, 'targets': [1]}
        state = self._unit_state()
        return {'lines': ['restart systemd unit %s (%s)' % (self.deploy['unit'], ', '.join(state))],
                'data': {'type': 'systemd', 'unit': self.deploy['unit'], 'state': ' '.join(state)}, 'targets': [1]}

    def apply(self, plan, decision):
        name = self.svc.get('name')
        what = self.deploy.get('container') or self.deploy.get('unit')
        if decision.get('already_applied') and not self.o.get('force'):
            earlier = ('was already restarted' if decision.get('already_applied_state') == 'done'
                       else 'had a restart that was interrupted (outcome unknown: check the container)')
            # the plan was read before the gate waited for the other run: judge the state as it is now
            self.after = ((self._docker(True).get('before') or plan['data']) if self.deploy['type'] == 'docker'
                          else {})
            return {'changed': False, 'lines': [
                '%s %s under this approval at %s; nothing to do. A new restart needs a new approval (another reason or '
                'change_ref) or restart_force=true.' % (name, earlier, decision.get('already_applied_at'))],
                'summary': 'restart of %s (%s): already restarted under this approval, nothing done' % (name, what),
                'result': {'before': plan['data']}}
        if self.deploy['type'] == 'docker':
            res = self._docker(False, plan['data'].get('started_at'))
            self.after = res.get('after') or plan['data']
            changed = bool(res.get('changed'))
            text = 'restarted' if changed else (res.get('plan') or [''])[0]
        else:
            res = self.e.module('ansible.legacy.systemd_service', {'name': self.deploy['unit'], 'state': 'restarted'},
                                check=False)
            self.after = {}
            changed = bool(res.get('changed'))
            text = 'restarted'
        return {'changed': changed, 'lines': [], 'summary': 'restart of %s (%s): %s' % (name, what, text),
                'result': {'before': plan['data']}}

    def verify(self, plan, applied):
        running = bool(self.after.get('running', True)) if self.deploy['type'] == 'docker' else True
        health_ok, health_lines = True, []
        if self.svc.get('health'):
            health_ok, health_lines, dummy = self.e.health([self.svc.get('name')], int(self.o.get('health_retries', 30)))
        started = self.after.get('started_at')
        summary = '%s, health %s %s' % (
            ('container %s since %s' % (self.after.get('status'), started)) if started else 'unit restarted',
            'ok' if health_ok else 'NOT ok', '; '.join(health_lines)[:200])
        return {'ok': running and health_ok, 'summary': summary.strip(),
                'result': {'started_at': started or '', 'health': health_lines}}


class FlushKeys(object):
    """flush_keys (role redis_evict): redis_evict (plan, then SCAN + UNLINK of the evictable patterns) on the
    service's connection settings; never a protected key, never KEYS/FLUSHALL."""

    evidence_retries = 5

    def __init__(self, engine, svc, options):
        self.e, self.svc, self.o = engine, svc, options

    def preflight(self):
        rd = self.svc.get('redis') if isinstance(self.svc.get('redis'), dict) else None
        self.patterns = as_list(self.o.get('patterns')) or as_list((rd or {}).get('evictable_patterns'))
        self.protected = as_list((rd or {}).get('protected_patterns')) + as_list(self.o.get('protected_patterns'))
        if rd is None or not self.patterns or [x for x in self.patterns if x[:1] in ('*', '?', '[')] \
                or int(self.o.get('batch_size', 500)) <= 0:
            raise AnsibleActionFail(
                'redis_evict needs a service %s with a redis section in incident_services of %s and evictable '
                'patterns with a literal prefix (redis_evict_patterns or redis.evictable_patterns, e.g. "cache:*"); '
                'got %s.' % (self.svc.get('name') or '?', self.e._host, self.patterns))
        self.login = redis_login(self.e, rd)
        self.limit = float(self.o.get('max_used_percent', 90))

    def _evict(self, state):
        return self.e.module('sre.incident_response.redis_evict', dict(
            self.login, patterns=self.patterns, protected_patterns=self.protected,
            batch_size=int(self.o.get('batch_size', 500)), max_keys=int(self.o.get('max_keys', 0)),
            max_used_percent=self.limit, state=state), check=False)

    def plan(self):
        res = self._evict('plan')
        out = {'lines': res.get('plan') or [], 'targets': [1] if res.get('keys') else [],
               'data': dict((k, res.get(k)) for k in ('patterns', 'keys', 'bytes', 'protected_keys', 'memory_before'))}
        if not res.get('enough', True) and not self.o.get('allow_partial'):
            out['refuse'] = ('flush_keys on %s was not applied, nothing changed: %s. Set -e redis_evict_allow_partial=true '
                             'to remove the evictable keys anyway.' % (self.svc.get('name'), res.get('sufficiency')))
        return out

    def apply(self, plan, decision):
        res = self._evict('absent')
        self.after = res
        summary = ('flush_keys on %s: removed %d key(s) of %s, %s freed; protected %s untouched' % (
            self.svc.get('name'), int(res.get('keys_removed') or 0), ', '.join(self.patterns),
            human_bytes(int(res.get('bytes_freed') or 0)), ', '.join(self.protected) or 'none'))
        return {'changed': bool(res.get('changed')), 'summary': summary, 'lines': [],
                'result': dict((k, res.get(k)) for k in (
                    'patterns', 'keys_removed', 'bytes', 'bytes_freed', 'protected_keys', 'protected_skipped',
                    'memory_before', 'memory_after'))}

    def verify(self, plan, applied):
        mem = self.after.get('memory_after') or {}
        pct = 100.0 * mem.get('used_memory', 0) / mem['maxmemory'] if mem.get('maxmemory') else 0.0
        intact = bool(self.after.get('protected_intact', True))
        findings_ok, findings, dummy = self.e.findings_of(
            'redis', as_list(self.o.get('verify_checks')) or ['redis.memory'], self.svc.get('name'))
        health_ok, health_lines = True, []
        users = self.e.dependents(self.svc.get('name')) if self.o.get('verify_health', True) else []
        if users:
            health_ok, health_lines, dummy = self.e.health(users, int(self.o.get('health_retries', 15)))
        protected = ', '.join('%s=%s' % (k, v.get('after')) for k, v in sorted((self.after.get('protected_keys') or {}).items()))
        summary = 'memory %s (%.1f %% of maxmemory, limit %s %%), protected keys %s (%s), health %s' % (
            mem.get('used_memory_human') or mem.get('used_memory'), pct, self.o.get('max_used_percent', 90),
            'intact' if intact else 'CHANGED', protected, 'ok' if health_ok else 'NOT ok')
        return {'ok': findings_ok and pct < self.limit and intact, 'summary': summary, 'findings': findings,
                'remaining': '' if health_ok else 'health NOT ok: %s' % '; '.join(health_lines)[:200],
                'result': {'memory_after': mem, 'protected_keys': self.after.get('protected_keys') or {},
                           'health': health_lines}}


class RaiseMaxmemory(object):
    """raise_maxmemory (role redis_maxmemory): redis_maxmemory (plan against the host's MemAvailable, then CONFIG SET
    maxmemory, CONFIG REWRITE with persist) on the service's connection settings; deletes no key, never lowers
    maxmemory, and refuses an increase the host has no room for."""

    evidence_retries = 5
    refuse_plan = True  # the old role's check: a plan the host has no room for fails, plan only too (no override)

    def __init__(self, engine, svc, options):
        self.e, self.svc, self.o = engine, svc, options
        self.after, self.expect = {}, 0

    def preflight(self):
        rd = self.svc.get('redis') if isinstance(self.svc.get('redis'), dict) else None
        try:
            self.target = float(self.o.get('target_used_percent', 75))
            self.fraction = float(self.o.get('max_free_fraction', 0.5))
        except (TypeError, ValueError):
            self.target = self.fraction = -1.0
        if rd is None or not 1 <= self.target < 100 or not 0 < self.fraction <= 1:
            raise AnsibleActionFail(
                'redis_maxmemory needs a service %s with a redis section in incident_services of %s, '
                'redis_maxmemory_target_used_percent in [1, 100) (got %s) and redis_maxmemory_max_free_fraction in '
                '(0, 1] (got %s).' % (self.svc.get('name') or '?', self.e._host, self.o.get('target_used_percent', 75),
                                      self.o.get('max_free_fraction', 0.5)))
        self.login = redis_login(self.e, rd)

    def _maxmemory(self, state):
        return self.e.module('sre.incident_response.redis_maxmemory', dict(
            self.login, target_used_percent=self.target, max_free_fraction=self.fraction,
            persist=as_bool(self.o.get('persist', False)), state=state), check=False)

    def plan(self):
        res = self._maxmemory('plan')
        before = res.get('memory_before') or {}
        needed = int(res.get('new_maxmemory') or 0) > int(before.get('maxmemory') or 0) and bool(before.get('maxmemory'))
        out = {'lines': res.get('plan') or [], 'targets': [1] if needed else [],
               'data': dict((k, res.get(k)) for k in ('memory_before', 'new_maxmemory', 'host_available', 'fits'))}
        out['data']['needed'] = needed
        if not res.get('fits', True):
            out['refuse'] = maxmemory_refusal(self.svc.get('name'), res.get('plan'))
        return out

    def apply(self, plan, decision):
        name = self.svc.get('name')
        if decision.get('already_applied') and decision.get('already_applied_state') == 'done':
            # single use per approval: the approver approved one raise of the planned size; what the plan reads now
            # (the writer may have filled the new room) needs a new approval (another reason or change_ref)
            self.after = {'memory_after': plan['data'].get('memory_before') or {}}
            self.expect = int((plan['data'].get('memory_before') or {}).get('maxmemory') or 0)
            return {'changed': False, 'lines': [
                'maxmemory of %s was already raised under this approval at %s; nothing to do. Another raise needs a new '
                'approval (another reason or change_ref).' % (name, decision.get('already_applied_at'))],
                'summary': 'raise_maxmemory on %s: already raised under this approval, nothing done; no key deleted' % name,
                'result': dict((k, plan['data'].get(k)) for k in ('memory_before', 'new_maxmemory', 'host_available'))}
        res = self._maxmemory('present')
        self.after = res
        self.expect = int(res.get('new_maxmemory') or 0)  # the apply's own plan (never below the maxmemory it read)
        before, after = res.get('memory_before') or {}, res.get('memory_after') or {}
        summary = 'raise_maxmemory on %s: maxmemory %s -> %s%s; no key deleted' % (
            name, human_bytes(before.get('maxmemory')), human_bytes(after.get('maxmemory')),
            '' if res.get('changed') else ' (already there)')
        return {'changed': bool(res.get('changed')), 'summary': summary, 'lines': [],
                'result': dict((k, res.get(k)) for k in ('memory_before', 'memory_after', 'new_maxmemory', 'host_available'))}

    def verify(self, plan, applied):
        name = self.svc.get('name')
        findings_ok, findings, dummy = self.e.findings_of(
            'redis', as_list(self.o.get('verify_checks')) or ['redis.memory'], name)
        # the maxmemory in effect as the probe reads it (its own connection), else as the apply read it back
        probed = [f for f in self.e._probed.get((self.e._host, ('redis',))) or []  # pylint: disable=protected-access
                  if f.get('check') == 'redis.memory' and f.get('service') in (None, name)]
        seen = (probed[0].get('evidence') or {}) if probed else {}
        mem = self.after.get('memory_after') or {}
        in_effect = int(seen.get('maxmemory') if seen.get('maxmemory') is not None else mem.get('maxmemory') or 0)
        used = int(seen.get('used_memory') if seen.get('used_memory') is not None else mem.get('used_memory') or 0)
        planned = self.expect
        effect_ok = maxmemory_in_effect(in_effect, planned)
        health_ok, health_lines = True, []
        users = self.e.dependents(name) if as_bool(self.o.get('verify_health', True)) else []
        if users:
            health_ok, health_lines, dummy = self.e.health(users, int(self.o.get('health_retries', 15)))
        summary = 'maxmemory %s (planned %s: %s), used %s (%.1f %% of it), health %s' % (
            human_bytes(in_effect), human_bytes(planned), 'in effect' if effect_ok else 'NOT in effect',
            human_bytes(used), (100.0 * used / in_effect) if in_effect else 0.0, 'ok' if health_ok else 'NOT ok')
        return {'ok': findings_ok and effect_ok, 'summary': summary, 'findings': findings,
                'remaining': '' if health_ok else 'health NOT ok: %s' % '; '.join(health_lines)[:200],
                'result': {'memory_after': dict(mem, maxmemory=in_effect, used_memory=used), 'planned': planned,
                           'in_effect': effect_ok, 'health': health_lines}}


class CleanDisk(object):
    """clean_disk (role disk_cleanup): disk_cleanup (plan, then delete/truncate) under the service's declared
    disk_paths only; the plan is refused when what it frees cannot get the disk below the limit."""

    evidence_retries = 5
    KEYS = ('files', 'bytes', 'disk_before', 'deleted_open', 'recommendations')

    def __init__(self, engine, svc, options):
        self.e, self.svc, self.o = engine, svc, options

    def preflight(self):
        # what may be cleaned is what the inventory declares: the disk_paths of the service on this host; a path
        # given with -e disk_cleanup_paths must be one of them or inside one (by name here, before anything is
        # listed; the module checks again on the host after resolving symlinks)
        name = self.svc.get('name') or self.e._task.args.get('service') or '?'
        declared = [str(x) for x in (self.svc.get('disk_paths') or [])] if isinstance(self.svc.get('disk_paths'), list) else []
        requested = disk_plan.requested_paths(self.o.get('paths'))
        error = disk_plan.preflight_error(self.e._host, name, declared, requested, self.o.get('older_than_days', 1))
        if error:
            raise AnsibleActionFail(error)
        self.allowed, self.paths = declared, requested or declared
        self.limit = float(self.o.get('max_used_percent', 90))
        self.args = dict(paths=self.paths, allowed_paths=self.allowed, older_than_days=float(self.o.get('older_than_days', 1)),
                         truncate_active=bool(self.o.get('truncate_active', True)),
                         truncate_over=int(self.o.get('truncate_over', 1048576)))
        for key in ('rotated_patterns', 'temp_patterns', 'active_patterns'):
            if self.o.get(key) not in (None, ''):
                self.args[key] = as_list(self.o.get(key))

    def _clean(self, state, planned=None):
        args = dict(self.args, state=state)
        if planned is not None:
            args['planned'] = planned
        return self.e.module('sre.incident_response.disk_cleanup', args, check=False)

    def plan(self):
        res = self._clean('plan')
        enough, disk_lines, per_fs = disk_plan.sufficiency(res, self.limit)
        data = dict((k, res.get(k)) for k in self.KEYS)
        data['sufficiency'] = per_fs
        out = {'lines': list(res.get('plan') or []) + disk_lines, 'data': data, 'targets': res.get('files') or []}
        if not enough and not self.o.get('allow_partial'):
            short = '; '.join(line for fs, line in zip(per_fs, disk_lines) if not fs['enough'])
            holders = res.get('recommendations') or []
            out['refuse'] = ('clean_disk on %s was not applied, nothing changed: %s.%s Set -e disk_cleanup_allow_partial=true '
                             'to clean anyway.' % (self.svc.get('name'), short,
                                                   (' What holds the rest: %s.' % '; '.join(holders)) if holders else ''))
        return out

    def apply(self, plan, decision):
        # nothing planned: nothing is run (the apply acts on what the plan showed, never on what it did not)
        # pinned to the plan: only the files and descriptors it listed, with the action it showed
        res = self._clean('absent', [f.get('fd_path') or f.get('path') for f in plan['targets']]) if plan['targets'] else {
            'changed': False, 'deleted': [], 'truncated': [], 'bytes': 0, 'bytes_freed': 0,
            'disk_before': plan['data'].get('disk_before') or [], 'disk_after': plan['data'].get('disk_before') or []}
        self.after = res
        summary = 'clean_disk on %s: deleted %d file(s), truncated %d, %s freed under %s' % (
            self.svc.get('name'), len(res.get('deleted') or []), len(res.get('truncated') or []),
            human_bytes(int(res.get('bytes_freed') or 0)), ', '.join(self.paths))
        return {'changed': bool(res.get('changed')), 'summary': summary, 'lines': [],
                'result': dict((k, res.get(k)) for k in ('deleted', 'truncated', 'bytes', 'bytes_freed', 'disk_before',
                                                         'disk_after', 'not_planned'))}

    def verify(self, plan, applied):
        # the planned files are gone (a re-plan lists none of them as planned) and nothing else was touched
        again = self._clean('plan')
        still, beyond = disk_plan.judge_cleanup(plan['targets'], self.after, again.get('files'))
        disk = again.get('disk_before') or self.after.get('disk_after') or []
        full = [d for d in disk if float(d.get('used_percent') or 0) >= self.limit]
        findings_ok, findings, dummy = self.e.findings_of(
            'network', as_list(self.o.get('verify_checks')) or ['host.disk'], self.svc.get('name'))
        health_ok, health_lines = True, []
        if self.svc.get('health') and self.o.get('verify_health', True):
            health_ok, health_lines, dummy = self.e.health([self.svc.get('name')], int(self.o.get('health_retries', 15)))
        summary = '%s %% used (limit %g %%)%s%s, health %s' % (
            ', '.join('%s at %s' % (d.get('path'), d.get('used_percent')) for d in disk) or 'no file system',
            self.limit,
            ('; planned files still there: %s' % ', '.join(still)) if still else '',
            ('; TOUCHED BEYOND THE PLAN: %s' % ', '.join(beyond)) if beyond else '', 'ok' if health_ok else 'NOT ok')
        return {'ok': findings_ok and not full and not still and not beyond, 'summary': summary, 'findings': findings,
                'remaining': '' if health_ok else 'health NOT ok: %s' % '; '.join(health_lines)[:200],
                'result': {'disk_after': disk, 'still': still, 'beyond': beyond, 'health': health_lines}}


# the action -> its handler (plan, apply, verify); one line per action
HANDLERS = {
    'kill_query': KillQuery,
    'restart': Restart,
    'flush_keys': FlushKeys,
    'apply_cert': ApplyCert,  # role tls_cert: plugins/plugin_utils/remediation_tls.py
    'rollback': Rollback,  # plugins/plugin_utils/remediation_rollback.py
    'raise_maxmemory': RaiseMaxmemory,
    'clean_disk': CleanDisk,
    'kill_clients': KillClients,  # role redis_kill_clients: plugins/plugin_utils/remediation_redis_clients.py
}
