# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runbooks rendered from the inventory's service definitions (docs/runbooks/<service>-runbook.md).

Deterministic: the same inventory renders the same bytes (no timestamps, sorted
inputs), so re-rendering an unchanged inventory changes nothing. Standard
library only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import severity as severity_mod
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor

KINDS = ('backend', 'postgres', 'redis', 'proxy', 'external')
INVESTIGATE = 'playbooks/investigate.yml'
REMEDIATE = 'playbooks/remediate.yml'
TRIAGE = 'playbooks/triage.yml'
INCIDENT_PLACEHOLDER = '<INCIDENT_ID>'
_SAFE_NAME = re.compile(r'[^A-Za-z0-9._-]+')

# Common issues by service kind: title, symptoms, investigation areas, remediation action (or None), steps.
ISSUES = {
    'backend': [
        {
            'title': '502/503 errors: the backend crashed or is overloaded',
            'symptoms': 'Users see an error page; the health endpoints fail or time out; the container is exited, '
                        'restarting or was OOM-killed.',
            'areas': ['app', 'network'],
            'action': 'restart',
            'steps': ['Check the container status and the backend logs in the findings (health.container, app.errors).',
                      'Restart the service (plan first, then apply with an approval).',
                      'If it crashes again right away, look for a recent deploy and roll back instead.'],
        },
        {
            'title': 'Error spike after a deploy',
            'symptoms': 'Errors start exactly at the deploy time; deploy.recent reports a new image inside the '
                        'incident window; app.errors counts 5xx on one or more endpoints.',
            'areas': ['changes', 'app'],
            'action': 'rollback',
            'steps': ['Confirm the deploy time against the first errors (findings deploy.recent and app.errors).',
                      'Roll back immediately to the previous image (the plan shows current and target tags and digests).',
                      'Fix the bug through the normal pipeline afterwards and add a regression test.'],
        },
        {
            'title': 'Slow responses: database pool exhausted or slow queries',
            'symptoms': 'High latency and timeouts; pg.connections near max_connections or many sessions idle in '
                        'transaction; pg.long_queries or pg.locks not ok.',
            'areas': ['db', 'app'],
            'action': 'restart',
            'steps': ['Check connections by state, long queries and locks (findings pg.connections, pg.long_queries, pg.locks).',
                      'Kill the blocking or runaway queries (action kill_query, see the database runbook) when they are the cause.',
                      'Restart the backend to release a leaked connection pool.'],
        },
        {
            'title': 'Partial failures: some endpoints fail',
            'symptoms': 'Some endpoints return 5xx while others work; /health/ready reports a degraded dependency; '
                        'app.errors breaks the errors down by path.',
            'areas': ['app', 'network'],
            'action': None,
            'steps': ['Check the health of each dependency (dependency.reachability, /health/ready checks).',
                      'Follow the runbook of the failing dependency; escalate to its owner when it is external.',
                      'Tell users which feature is affected (playbooks/communicate.yml).'],
        },
        {
            'title': 'Memory growth and OOM kills',
            'symptoms': 'Memory usage climbs towards the container limit; OOM kills and restarts.',
            'areas': ['network', 'app'],
            'action': 'restart',
            'steps': ['Check container memory against its limit (container.resources) and the restart count (health.container).',
                      'Restart the service to buy time; capture the evidence first.',
                      'Find the leak in code and add a memory alert.'],
        },
        {
            'title': 'Disk full: logs',
            'symptoms': 'Writes fail; host.disk reports a log path above the threshold.',
            'areas': ['network'],
            'action': 'clean_disk',
            'steps': ['Check which configured path is full (host.disk).',
                      'Clean rotated logs and temporary files; active logs are truncated, not deleted.',
                      'Fix the log rotation or retention afterwards.'],
        },
    ],
    'postgres': [
        {
            'title': 'Long-running queries and lock contention',
            'symptoms': 'Requests hang or time out; pg.long_queries lists queries over the threshold; pg.locks '
                        'shows blocked and blocking pids.',
            'areas': ['db'],
            'action': 'kill_query',
            'steps': ['Read the blocking chain and the queries in the findings (pg.locks, pg.long_queries).',
                      'Kill the query: cancel first, terminate after the grace period, application roles only.',
                      'Re-run the diagnosis to confirm the locks are gone.'],
        },
        {
            'title': 'Connection pool exhausted',
            'symptoms': 'New connections are refused or wait; pg.connections near max_connections; many sessions '
                        'idle in transaction.',
            'areas': ['db'],
            'action': 'kill_query',
            'steps': ['Check connections by state and application (pg.connections).',
                      'End the idle-in-transaction sessions of the application role (kill_query).',
                      'Restart the backend whose pool leaks (see the backend runbook).'],
        },
        {
            'title': 'Database unreachable',
            'symptoms': 'pg.connectivity is crit; the backend readiness check reports the database failing.',
            'areas': ['db', 'network'],
            'action': 'restart',
            'steps': ['Check the container state and the connectivity error (health.container, pg.connectivity).',
                      'Restart the database service with an approval if it is stopped or hung.',
                      'Check the data directory disk (pg.disk) before and after.'],
        },
    ],
    'redis': [
        {
            'title': 'Redis full (maxmemory reached)',
            'symptoms': 'Writes fail with OOM command not allowed; redis.memory near maxmemory; sessions or '
                        'caching fail.',
            'areas': ['redis'],
            'action': 'flush_keys',
            'steps': ['Check used memory, policy and the keyspace (redis.memory, redis.keyspace).',
                      'Flush non-critical keys: only the allow-listed evictable patterns; protected patterns are never touched.',
                      'Review maxmemory and the eviction policy afterwards.'],
        },
        {
            'title': 'Slow commands',
            'symptoms': 'Latency on cached endpoints; redis.slowlog lists slow commands.',
            'areas': ['redis'],
            'action': None,
            'steps': ['Read the slowlog top 10 (redis.slowlog) and find the caller.',
                      'Stop or fix the offending client; avoid KEYS and large range scans in the application.'],
        },
        {
            'title': 'Redis unreachable or too many clients',
            'symptoms': 'redis.connectivity is crit, or redis.clients shows rejected or blocked clients.',
            'areas': ['redis'],
            'action': 'restart',
            'steps': ['Check the connection error and the client counts (redis.connectivity, redis.clients).',
                      'Restart the service with an approval if it is hung; sessions are lost unless persisted.'],
        },
    ],
    'proxy': [
        {
            'title': 'TLS certificate expiring or expired',
            'symptoms': 'Clients fail the TLS handshake; net.tls_expiry reports few days left or an expired certificate.',
            'areas': ['network'],
            'action': 'apply_cert',
            'steps': ['Check the served certificate dates and subject (net.tls_expiry).',
                      'Apply the new certificate and key (validated first, the old pair is backed up, the proxy reloads).',
                      'Automate renewal and alert 14 days before expiry.'],
        },
        {
            'title': '502 from the proxy',
            'symptoms': 'The proxy answers 502/504; the backend behind it is down or slow.',
            'areas': ['app', 'network'],
            'action': None,
            'steps': ['Check the backend health (see the backend runbook).',
                      'Check DNS resolution of the API name (net.dns).'],
        },
    ],
    'external': [
        {
            'title': 'External dependency down',
            'symptoms': 'Features that use the dependency fail while the rest works (partial failures); '
                        'dependency.reachability is not ok.',
            'areas': ['network'],
            'action': None,
            'steps': ['Confirm with dependency.reachability and the vendor status page.',
                      'Degrade gracefully where the application allows it; escalate to the vendor.'],
        },
    ],
}


def runbook_filename(service_name):
    return '%s-runbook.md' % (_SAFE_NAME.sub('_', str(service_name)).strip('_') or 'service')


def _md(text):
    return ' '.join(str(text if text is not None else '').split()).replace('<', '&lt;').replace('>', '&gt;')


def _code(text):
    return '`%s`' % str(text).replace('`', "'")


class RunbookRenderer(object):
    """Renders one runbook per service.

    services: list of {'host': inventory host, 'service': the incident_services entry}.
    """

    def __init__(self, services, contacts=None, dependencies=None, inventory='inventory/lab', redactor=None):
        self.entries = sorted([e for e in services or [] if isinstance(e, dict) and isinstance(e.get('service'), dict)
                               and e['service'].get('name')],
                              key=lambda e: (str(e['service']['name']), str(e.get('host'))))
        self.contacts = contacts or {}
        self.dependencies = sorted(dependencies or [], key=lambda d: str(d.get('name')))
        self.inventory = inventory or 'inventory/lab'
        self.redactor = redactor or Redactor()

    def services(self):
        """{name: {'service': definition, 'hosts': [hosts]}} in name order."""
        out = {}
        for entry in self.entries:
            name = str(entry['service']['name'])
            item = out.setdefault(name, {'service': entry['service'], 'hosts': []})
            if entry.get('host') and entry['host'] not in item['hosts']:
                item['hosts'].append(str(entry['host']))
        return dict(sorted(out.items()))

    def render_all(self):
        """{filename: text} for every service."""
        return dict((runbook_filename(name), self.render(name)) for name in self.services())

    def _cmd(self, playbook, extra=None):
        parts = ['ansible-playbook', playbook, '-i', self.inventory, '-e', 'incident_id=%s' % INCIDENT_PLACEHOLDER]
        for item in extra or []:
            parts += ['-e', item]
        return ' '.join(parts)

    def render(self, name):
        services = self.services()
        item = services[name]
        svc = item['service']
        hosts = item['hosts']
        kind = str(svc.get('kind') or 'backend')
        lines = []
        add = lines.append
        add('# %s runbook' % _md(name))
        add('')
        add('Rendered by `ansible-playbook playbooks/runbooks.yml -i %s` from the inventory (`incident_services`); '
            'change the inventory and re-render instead of editing this file. Replace `%s` with the incident id '
            'that `%s` declared (or leave `incident_id` out to declare a new incident).'
            % (self.inventory, INCIDENT_PLACEHOLDER, TRIAGE))
        add('')

        add('## Overview')
        add('')
        add('- **Purpose:** %s' % _md(svc.get('purpose') or 'not described (add `purpose` to the service)'))
        add('- **Kind:** %s' % _md(kind))
        add('- **Runs on:** %s' % self._runs_on(svc, hosts))
        team = svc.get('owner_team')
        add('- **Owner team:** %s' % (_md(team) if team else 'not set (add `owner_team`)'))
        add('- **Dependencies:** %s' % self._dependencies(svc, services))
        dependents = sorted(n for n, other in services.items() if name in (other['service'].get('depends_on') or []))
        add('- **Depended on by:** %s' % (', '.join(_md(d) for d in dependents) if dependents else 'none in this inventory'))
        paths = svc.get('critical_paths') or []
        add('- **Critical paths:** %s' % (', '.join(_code(p) for p in paths) if paths else self._critical_default(kind)))
        if svc.get('endpoints'):
            add('- **Endpoints:** %s' % ', '.join(_code(p) for p in svc['endpoints']))
        for check in svc.get('health') or []:
            add('- **Health check %s:** %s, expect HTTP %s%s' % (
                _md(check.get('name', 'http')), _code(check.get('url')), _md(check.get('expect_status', 200)),
                (' and %s' % _code(', '.join('%s=%s' % (k, v) for k, v in sorted((check.get('expect_json') or {}).items()))))
                if check.get('expect_json') else ''))
        redis = svc.get('redis') or {}
        if redis.get('evictable_patterns') or redis.get('protected_patterns'):
            add('- **Keys:** evictable (flush_keys may remove) %s; protected (never removed) %s' % (
                ', '.join(_code(p) for p in redis.get('evictable_patterns') or []) or 'none',
                ', '.join(_code(p) for p in redis.get('protected_patterns') or []) or 'none'))
        pg = svc.get('postgres') or {}
        if pg.get('app_roles'):
            add('- **Application roles** (kill_query may end their sessions, never others): %s'
                % ', '.join(_code(r) for r in pg['app_roles']))
        creds = self._credentials(svc)
        if creds:
            add('- **Credentials:** by reference, variable %s (never written to incident files)' % creds)
        add('')

        add('## Common issues')
        add('')
        for issue in ISSUES.get(kind, ISSUES['backend']):
            add('### %s' % _md(issue['title']))
            add('')
            add('**Symptoms:** %s' % _md(issue['symptoms']))
            add('')
            add('**Diagnosis:**')
            add('')
            add('```sh')
            add(self._cmd(TRIAGE))
            for area in issue['areas']:
                add(self._cmd(INVESTIGATE, ['area=%s' % area]))
            add('```')
            add('')
            add('**Resolution:**')
            add('')
            steps = [_md(text) for text in issue['steps']]
            if issue['action']:
                action = issue['action']
                steps[2:2] = [
                    'Plan (changes nothing, lists the exact targets): `%s`'
                    % self._cmd(REMEDIATE, ['remediation_action=%s' % action, 'service=%s' % name]),
                    'Apply with a recorded approval (four-eyes for destructive actions): `%s`'
                    % self._cmd(REMEDIATE, ['remediation_action=%s' % action, 'service=%s' % name, 'apply=true',
                                            'approved_by=<name>', 'approval_reason="<reason or change ref>"']),
                    'Verify: the playbook re-checks health; re-run the diagnosis above and expect the findings `ok`.',
                ]
            for number, text in enumerate(steps, 1):
                add('%d. %s' % (number, text))
            add('')

        add('## Escalation')
        add('')
        for line in self._escalation(svc):
            add('- ' + line)
        add('')
        add('Severity and response (from the severity table):')
        add('')
        for sev in severity_mod.SEVERITIES:
            info = severity_mod.SEVERITY_TABLE[sev]
            add('- **%s** (%s): %s. Respond within %s, update every %s, %s; channel %s.' % (
                sev, info['priority'], _md(info['impact']), _minutes(info['response_minutes']),
                _minutes(info['update_minutes']), _md(info['escalation_text'][0].lower() + info['escalation_text'][1:]),
                info['channel']))
        add('')
        text = '\n'.join(lines).rstrip('\n') + '\n'
        return self.redactor.text(text)

    @staticmethod
    def _runs_on(svc, hosts):
        deploy = svc.get('deploy') or {}
        how = deploy.get('type') or 'process'
        if how == 'docker':
            detail = 'Docker container %s' % _code(deploy.get('container', '?'))
        elif how == 'systemd':
            detail = 'systemd unit %s' % _code(deploy.get('unit', '?'))
        else:
            detail = 'process %s' % _code(deploy.get('process', '?'))
        where = ', '.join(_code(h) for h in hosts) if hosts else 'no host'
        return '%s (%s)' % (where, detail)

    def _dependencies(self, svc, services):
        out = []
        for dep in svc.get('depends_on') or []:
            if dep in services:
                other = services[dep]
                out.append('%s (%s on %s)' % (_md(dep), _md(other['service'].get('kind')),
                                              ', '.join(_code(h) for h in other['hosts'])))
                continue
            ext = next((d for d in self.dependencies if d.get('name') == dep), None)
            if ext:
                out.append('%s (external, %s, %s)' % (_md(dep), _code(ext.get('url')),
                                                      'critical' if ext.get('critical') else 'non-critical'))
            else:
                out.append(_md(dep))
        return ', '.join(out) if out else 'none'

    @staticmethod
    def _critical_default(kind):
        return {
            'postgres': 'every request that reads or writes application data',
            'redis': 'sessions and cached reads',
            'proxy': 'all public HTTPS traffic',
            'external': 'the features that call it',
        }.get(kind, 'not listed (add `critical_paths`)')

    @staticmethod
    def _credentials(svc):
        names = []
        for section in ('postgres', 'redis'):
            ref = (svc.get(section) or {}).get('password_var')
            if ref:
                names.append(_code(ref))
        return ', '.join(names)

    def _escalation(self, svc):
        contacts = self.contacts
        lines = ['**On-call channel:** %s (SEV1/SEV2), %s (SEV3/SEV4)' % (
            severity_mod.SEVERITY_TABLE['SEV1']['channel'], severity_mod.SEVERITY_TABLE['SEV3']['channel'])]
        for role, label in (('oncall', 'On-call'), ('incident_commander', 'Incident commander'),
                            ('engineering_manager', 'Engineering manager')):
            person = contacts.get(role)
            if isinstance(person, dict):
                lines.append('**%s:** %s%s' % (label, _md(person.get('name', role)),
                                               (' (%s)' % _md(person['handle'])) if person.get('handle') else ''))
        owner = contacts.get('owner_team')
        team = svc.get('owner_team')
        if isinstance(owner, dict):
            lines.append('**Owner team:** %s%s%s' % (
                _md(team) + ': ' if team else '', _md(owner.get('name', 'owner team')),
                (', channel %s' % _md(owner['channel'])) if owner.get('channel') else ''))
        elif team:
            lines.append('**Owner team:** %s' % _md(team))
        lines.append('**Post-incident summary:** #engineering')
        return lines


def _minutes(minutes):
    if minutes < 60:
        return '%d min' % minutes
    return '%d h' % (minutes // 60)
