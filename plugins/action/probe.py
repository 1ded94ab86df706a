# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: every probe area of a host in one task (documentation in plugins/modules/probe.py).

On the controller it reads each area's settings (the role's defaults and argument spec,
overridden by the host's variables, plugin_utils/settings.py: resolved once per play for
every host with the same inputs, cached in the run's local temporary directory), chooses
the areas the host has services for, and runs the module `probe` once on the host: the
areas run there concurrently. With `areas: [controller]` (run_once) it runs the checks made from the
controller for every play host - HTTP endpoints, DNS, TLS, dependencies, Prometheus trends -
concurrently in this process, without a module.

Its result is scrubbed before it returns (plugin_utils/incident_store.task_redactor: the
secret values among the task's variables, the collection's patterns; keys as well as
values): request paths, application names and log lines are outside data and may carry
a password, and the result is what `-v`/`-vvv` print and what `register` keeps.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.action import ActionBase

from ansible_collections.sre.incident_response.plugins.module_utils import probe_runner
from ansible_collections.sre.incident_response.plugins.module_utils.areas import (
    health as area_health,
    network as area_network)
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import prom_trend
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import task_redactor
from ansible_collections.sre.incident_response.plugins.plugin_utils import settings as settings_files
from ansible_collections.sre.incident_response.plugins.plugin_utils.settings import role_settings

HOST_AREAS = ['health', 'app_logs', 'changes', 'postgres', 'redis', 'network', 'host']
AREA_ROLES = {'controller': ['health', 'network', 'trends']}


def _omit_empty(params):
    return dict((k, v) for k, v in params.items() if v not in (None, ''))


def services_of(task_vars, templar):
    services = templar.template(task_vars.get('incident_services') or [])
    return [s for s in services if isinstance(s, dict)] if isinstance(services, list) else []


def _secret(task_vars, templar, name):
    if not name or name not in task_vars:
        return None
    return templar.template(task_vars[name])


def health_args(s, services, host):
    with_deploy = [svc for svc in services if svc.get('deploy')]
    if not (s['health_check_state'] and with_deploy):
        return None
    return _omit_empty({'report_host': host, 'services': with_deploy, 'window': s['health_window'],
                        'restart_warn': s['health_restart_warn'], 'docker_host': s['health_docker_host']})


def app_logs_args(s, services, host):
    targets = [svc for svc in services if svc.get('logs')] + \
        [svc for svc in services if not svc.get('logs') and svc.get('kind') == 'backend']
    if not targets:
        return None
    return _omit_empty({
        'report_host': host, 'services': targets, 'window': s['app_logs_window'], 'max_lines': s['app_logs_max_lines'],
        'excerpt_lines': s['app_logs_excerpt_lines'], 'ignore_paths': s['app_logs_ignore_paths'],
        'runtime_command': s['app_logs_runtime_command'], 'timeout': s['app_logs_timeout'],
        'docker_host': s['app_logs_docker_host'],
        'thresholds': dict((k, s['app_logs_' + k]) for k in (
            'error_rate_warn_pct', 'error_rate_crit_pct', 'min_errors', 'error_lines_warn', 'error_lines_crit',
            'latency_p95_warn_ms', 'latency_p95_crit_ms'))})


def changes_args(s, services, host):
    if not (services or s['changes_host_changes']):
        return None
    return _omit_empty({'report_host': host, 'services': services, 'window': s['changes_window'],
                        'host_changes': s['changes_host_changes'], 'package_logs': s['changes_package_logs'],
                        'watch_paths': s['changes_watch_paths'], 'docker_host': s['changes_docker_host']})


def postgres_args(s, services, host, secret):
    out = []
    for svc in services:
        if svc.get('kind') != 'postgres':
            continue
        pg = svc.get('postgres') or {}
        deploy = svc.get('deploy') or {}
        out.append(_omit_empty({
            'report_host': host, 'service': svc.get('name'),
            'login_host': pg.get('host', '127.0.0.1'), 'login_port': pg.get('port', 5432),
            'login_db': pg.get('database', 'postgres'), 'login_user': pg.get('user', 'postgres'),
            'login_password': secret(pg.get('password_var')),
            'ssl_mode': pg.get('ssl_mode', s['postgres_ssl_mode']), 'ca_cert': pg.get('ca_cert'),
            'connect_timeout': s['postgres_connect_timeout'], 'statement_timeout': s['postgres_statement_timeout_ms'],
            'container': deploy.get('container') if deploy.get('type') == 'docker' else None,
            'data_directory': pg.get('data_directory'), 'query_chars': s['postgres_query_chars'],
            'docker_host': s['postgres_docker_host'], 'log_check': s['postgres_log_check'],
            'window': s['postgres_window'], 'log_file': s['postgres_log_file'] or pg.get('log_file'),
            'client': pg.get('client', s['postgres_client']),
            'thresholds': dict((k, s['postgres_' + k]) for k in (
                'connections_warn_pct', 'connections_crit_pct', 'idle_in_transaction_warn_seconds',
                'idle_in_transaction_crit_count', 'long_query_seconds', 'long_query_crit_seconds',
                'lock_wait_warn_seconds', 'lock_wait_crit_seconds', 'blocked_sessions_warn', 'disk_warn_pct',
                'disk_crit_pct', 'slot_retained_warn_bytes', 'slot_retained_crit_bytes', 'replica_lag_warn_seconds',
                'replica_lag_crit_seconds', 'xid_age_warn_pct', 'xid_age_crit_pct', 'temp_bytes_warn',
                'vacuum_dead_tuples_warn', 'vacuum_xmin_holder_warn_seconds'))}))
    return out or None


def redis_args(s, services, host, secret):
    out = []
    for svc in services:
        if svc.get('kind') != 'redis':
            continue
        rd = svc.get('redis') or {}
        out.append(_omit_empty({
            'report_host': host, 'service': svc.get('name'),
            'login_host': rd.get('host', '127.0.0.1'), 'login_port': rd.get('port', 6379),
            'login_user': rd.get('user'), 'login_password': secret(rd.get('password_var')), 'db': rd.get('db', 0),
            'tls': bool(rd.get('tls', False)), 'validate_certs': bool(rd.get('validate_certs', True)),
            'ca_cert': rd.get('ca_cert'), 'client_cert': rd.get('client_cert'), 'client_key': rd.get('client_key'),
            'connect_timeout': s['redis_connect_timeout'], 'socket_timeout': s['redis_socket_timeout'],
            'slowlog_count': s['redis_slowlog_count'], 'window': s['redis_window'],
            'client': rd.get('client', s['redis_client']),
            'evictable_patterns': rd.get('evictable_patterns', []), 'protected_patterns': rd.get('protected_patterns', []),
            'thresholds': dict((k, s['redis_' + k]) for k in (
                'memory_warn_pct', 'memory_crit_pct', 'fragmentation_warn', 'evicted_keys_warn', 'clients_warn_pct',
                'clients_crit_pct', 'blocked_clients_warn', 'rejected_connections_warn', 'slowlog_warn_ms',
                'slowlog_crit_count', 'replication_lag_warn_s', 'latency_warn_ms', 'latency_crit_ms'))}))
    return out or None


def network_thresholds(s):
    return dict((k, s['network_' + k]) for k in (
        'dns_latency_warn_ms', 'tls_warn_days', 'tls_crit_days', 'disk_warn_pct', 'disk_crit_pct', 'memory_warn_pct',
        'memory_crit_pct', 'cpu_warn_pct', 'dependency_latency_warn_ms'))


def network_args(s, services, host):
    if not (s['network_check_disk'] or s['network_check_resources']):
        return None
    return _omit_empty({'report_host': host, 'services': services, 'container_resources': s['network_check_resources'],
                        'extra_disk_paths': s['network_extra_disk_paths'] if s['network_check_disk'] else [],
                        'timeout': s['network_timeout'], 'thresholds': network_thresholds(s),
                        'docker_host': s['network_docker_host']})


def host_args(s, services, host):
    if not s['host_checks']:
        return None
    return _omit_empty({'report_host': host, 'services': services, 'checks': s['host_checks'], 'window': s['host_window'],
                        'timeout': s['host_timeout'], 'docker_host': s['host_docker_host'],
                        'thresholds': dict((k, s['host_' + k]) for k in (
                            'fds_warn_pct', 'fds_crit_pct', 'unit_restarts_warn', 'top'))})


def has_prometheus(play_services):
    return any(isinstance(s, dict) and isinstance(s.get('prometheus'), dict) and s['prometheus'].get('url')
               for items in play_services.values() for s in items)


def settings_cache_dir():
    """Where the settings resolved in this run are kept for the other hosts: ansible-playbook's local temporary
    directory (private to this run, removed when it ends)."""
    return os.path.join(C.DEFAULT_LOCAL_TMP, 'sre_incident_response_settings')


# ansible-playbook imports this action in its main process before it forks the process that runs the task for
# each host: the roles' defaults and argument specs read now are read once per run, not once per host.
settings_files.preload(DataLoader())

BUILDERS = {'health': health_args, 'app_logs': app_logs_args, 'changes': changes_args, 'network': network_args,
            'host': host_args}
SERVICE_BUILDERS = {'postgres': postgres_args, 'redis': redis_args}


class ActionModule(ActionBase):
    """One task per host for every area; the controller's checks once for all hosts."""

    TRANSFERS_FILES = False
    _supports_check_mode = True

    ARGSPEC = dict(
        areas=dict(type='list', elements='str', default=list(HOST_AREAS),
                   choices=list(HOST_AREAS) + ['controller']),
        controller_checks=dict(type='list', elements='str', default=['http', 'network', 'trends'],
                               choices=['http', 'network', 'trends']),
        workers=dict(type='int', default=8),
    )

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = self._run(tmp, task_vars)
        # The one way out: -v/-vvv print this, register keeps it, the finding action records it.
        return task_redactor(task_vars, self._templar).data(result)

    def _run(self, tmp, task_vars):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGSPEC)
        areas = args['areas']
        if 'controller' in areas:
            if len(areas) > 1:
                raise AnsibleActionFail('areas: controller runs alone (with run_once), not with %s'
                                        % ', '.join(a for a in areas if a != 'controller'))
            result.update(self._controller(task_vars, args['workers'], args['controller_checks']))
            return result
        host = task_vars.get('inventory_hostname')
        services = services_of(task_vars, self._templar)
        module_args = {'report_host': host, 'workers': args['workers']}
        for area in areas:
            settings = self._settings(area, task_vars)
            if area in BUILDERS:
                built = BUILDERS[area](settings, services, host)
            else:
                built = SERVICE_BUILDERS[area](settings, services, host,
                                               lambda name: _secret(task_vars, self._templar, name))
            if built:
                module_args[area] = built
        if len(module_args) == 2:
            result.update(changed=False, findings=[], evidence_files={}, areas={}, report_host=host,
                          msg='no service of %s in the areas %s' % (host, ', '.join(areas)))
            return result
        out = self._execute_module(module_name='sre.incident_response.probe', module_args=module_args,
                                   task_vars=task_vars)
        result.update(out)
        result['report_host'] = host
        result.setdefault('findings', [])
        return result

    def _settings(self, role, task_vars):
        return role_settings(role, task_vars, self._templar, self._loader, cache_dir=settings_cache_dir())

    def _play_services(self, task_vars):
        hostvars = task_vars.get('hostvars') or {}
        out = {}
        for host in task_vars.get('ansible_play_hosts') or [task_vars.get('inventory_hostname')]:
            try:
                services = self._templar.template(hostvars[host].get('incident_services') or [])
            except Exception:  # pylint: disable=broad-except
                services = []
            out[host] = services if isinstance(services, list) else []
        return out

    def _controller(self, task_vars, workers, checks):
        health = self._settings('health', task_vars)
        net = self._settings('network', task_vars)
        trends = self._settings('trends', task_vars)
        play_services = self._play_services(task_vars)
        jobs = []
        if 'http' in checks and health['health_check_endpoints']:
            params = {'http_targets': play_services, 'timeout': health['health_timeout'],
                      'latency_warn_ms': health['health_latency_warn_ms'],
                      'latency_crit_ms': health['health_latency_crit_ms'], 'window': health['health_window'],
                      'restart_warn': 1, 'services': None, 'report_host': None, 'docker_host': None}
            jobs.append({'area': 'http', 'label': 'http', 'host': None, 'service': None, 'run': area_health.run,
                         'module': probe_runner.AreaModule(self, params)})
        params = {'dns_names': net['network_dns_names'] if net['network_check_dns'] else [],
                  'tls_endpoints': net['network_tls_endpoints'] if net['network_check_tls'] else [],
                  'dependencies': net['network_dependencies'] if net['network_check_dependencies'] else [],
                  'host_services': play_services, 'controller_name': net['network_controller_name'],
                  'timeout': net['network_timeout'], 'thresholds': network_thresholds(net), 'extra_disk_paths': [],
                  'report_host': None, 'services': None, 'container_resources': False, 'cpu_sample_seconds': 0.3,
                  'docker_host': None}
        if 'network' in checks and (params['dns_names'] or params['tls_endpoints'] or params['dependencies']):
            jobs.append({'area': 'controller_network', 'label': 'network', 'host': net['network_controller_name'],
                         'service': None, 'run': area_network.run, 'module': probe_runner.AreaModule(self, params)})
        if 'trends' in checks and has_prometheus(play_services):
            token = _secret(task_vars, self._templar, trends['trends_prometheus_token_var']) or ''

            def run_trends(module, token=token, t=trends):
                return {'findings': prom_trend.probe_all(
                    play_services, window_minutes=t['trends_window_minutes'], timeout=t['trends_timeout'],
                    max_points=t['trends_max_points'], warn_pct=t['trends_warn_growth_pct'],
                    crit_pct=t['trends_crit_growth_pct'], token=token)}
            jobs.append({'area': 'trends', 'label': 'trends', 'host': None, 'service': None, 'run': run_trends,
                         'module': None})
        out = probe_runner.run_jobs(jobs, workers=workers)
        out.update(changed=False, report_host=None)
        return out

    # AreaModule's view of this action for the controller's areas (they call no command).
    check_mode = False

    def run_command(self, *args, **kwargs):
        raise AnsibleActionFail('a controller-side probe area ran a command')

    def get_bin_path(self, *args, **kwargs):
        return None
