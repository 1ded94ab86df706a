# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kill_clients (role redis_kill_clients) on the remediation engine (plugins/action/remediation_run.py).

preflight  the service's redis section (the connection triage uses) and at least one selector: client names,
           process names or pids on the Redis host; never every client;
plan       redis_clients state=plan on the Redis host: the connections it would end (by name, process, idle time)
           and the ones it keeps; nothing selected is a `refuse` (no approval is recorded, nothing changes);
apply      redis_clients state=absent: CLIENT KILL ID when the server answers; when it refuses new connections,
           ss -K on the selected connections' server-side sockets, then CLIENT KILL ID for the rest;
verify     the planned connections are gone, redis.connectivity and redis.clients (the redis probe area re-run with
           the triage settings) are ok, and the health of the services that depend on Redis (what remains when not).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail

from ansible_collections.sre.incident_response.plugins.plugin_utils.remediation_options import as_bool, as_list, redis_login

DEFAULT_VERIFY_CHECKS = ['redis.connectivity', 'redis.clients']


class KillClients(object):
    """kill_clients: redis_clients (plan, then CLIENT KILL ID / ss -K) on the service's connection settings."""

    evidence_retries = 5

    def __init__(self, engine, svc, options):
        self.e, self.svc, self.o = engine, svc, options

    def preflight(self):
        rd = self.svc.get('redis') if isinstance(self.svc.get('redis'), dict) else None
        self.selectors = dict(names=as_list(self.o.get('names')), processes=as_list(self.o.get('processes')),
                              pids=as_list(self.o.get('pids'), int))
        try:
            min_idle = float(self.o.get('min_idle', 30))
        except (TypeError, ValueError):
            min_idle = -1
        if rd is None or not any(self.selectors.values()) or min_idle < 0 \
                or [p for p in self.selectors['pids'] if p <= 0]:
            raise AnsibleActionFail(
                'redis_kill_clients needs a service %s with a redis section in incident_services of %s and at least '
                'one selector: client names (redis_kill_clients_names), process names (redis_kill_clients_processes) '
                'or pids (redis_kill_clients_pids) on the Redis host; it never ends every client (got %s).'
                % (self.svc.get('name') or '?', self.e._host,  # pylint: disable=protected-access
                   dict((k, v) for k, v in self.selectors.items() if v) or 'no selector'))
        self.min_idle = min_idle
        self.login = redis_login(self.e, rd)

    def _clients(self, state):
        args = dict(self.login, state=state, min_idle=self.min_idle, reset_stats=as_bool(self.o.get('reset_stats', False)),
                    **self.selectors)
        return self.e.module('sre.incident_response.redis_clients', args, check=False)

    def plan(self):
        res = self._clients('plan')
        data = dict((k, res.get(k)) for k in ('server', 'selected', 'selected_count', 'kept_count', 'kept_reasons', 'note'))
        data['selectors'] = dict((k, v) for k, v in self.selectors.items() if v)
        data['min_idle'] = self.min_idle
        lines = list(res.get('plan') or [])
        lines.append('kept: %d other connection(s)%s' % (int(res.get('kept_count') or 0), (' (%s)' % ', '.join(
            '%s x%d' % kv for kv in sorted((res.get('kept_reasons') or {}).items())[:4])) if res.get('kept_reasons') else ''))
        if res.get('note'):
            lines.append('note: %s' % res['note'])
        out = {'lines': lines, 'data': data, 'targets': res.get('selected') or []}
        if not res.get('selected_count'):
            out['refuse'] = ('kill_clients on %s was not applied, nothing changed: no client connection matches %s%s. '
                             'Re-run triage: the holders may be gone, or select them by another name, process or pid.'
                             % (self.svc.get('name'), data['selectors'],
                                (' (%s)' % res['note']) if res.get('note') else ''))
        return out

    def apply(self, plan, decision):
        res = self._clients('absent')
        self.after = res
        ended = int(plan['data'].get('selected_count') or 0) - len(res.get('remaining') or [])
        how = []
        if res.get('closed_sockets'):
            how.append('%d socket(s) closed with ss -K' % len(res['closed_sockets']))
        if res.get('killed_ids'):
            how.append('%d CLIENT KILL ID' % len(res['killed_ids']))
        summary = 'kill_clients on %s: ended %d of %d selected connection(s) (%s; server %s before, %s after)%s' % (
            self.svc.get('name'), max(0, ended), int(plan['data'].get('selected_count') or 0),
            ', '.join(how) or 'nothing to do', res.get('server'), res.get('server_after'),
            ('; %d still there' % len(res['remaining'])) if res.get('remaining') else '')
        return {'changed': bool(res.get('changed')), 'summary': summary, 'lines': [],
                'result': dict((k, res.get(k)) for k in (
                    'server', 'server_after', 'selected_count', 'closed_sockets', 'killed_ids', 'commands', 'remaining',
                    'rejected_connections_before_reset', 'note'))}

    def verify(self, plan, applied):
        remaining = self.after.get('remaining') or []
        findings_ok, findings, dummy = self.e.findings_of(
            'redis', as_list(self.o.get('verify_checks')) or list(DEFAULT_VERIFY_CHECKS), self.svc.get('name'))
        health_ok, health_lines = True, []
        users = self.e.dependents(self.svc.get('name')) if self.o.get('verify_health', True) else []
        if users:
            health_ok, health_lines, dummy = self.e.health(users, int(self.o.get('health_retries', 15)))
        summary = '%d selected connection(s) left%s, server %s, health %s' % (
            len(remaining), (' (%s)' % '; '.join(remaining[:3])) if remaining else '', self.after.get('server_after'),
            'ok' if health_ok else 'NOT ok')
        return {'ok': findings_ok and not remaining, 'summary': summary, 'findings': findings,
                'remaining': '' if health_ok else 'health NOT ok: %s' % '; '.join(health_lines)[:200],
                'result': {'remaining': remaining, 'health': health_lines}}
