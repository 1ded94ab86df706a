# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""apply_cert (role tls_cert) on the remediation engine (plugins/action/remediation_run.py).

preflight  the paths, names, endpoint and reload command from the role's options and the service's `tls` section
           (as the role's set_fact did); without tls_cert_src/tls_cert_key_src, the renewed pair staged in the
           endpoint's renewal_dir (where an ACME client leaves it, the directory triage looks in) is found on the
           host with ansible.builtin.find;
plan       tls_cert_install in check mode on the host (the new pair is valid now and for min_days_valid more days,
           its key matches, it covers the names served) and the certificate served now, read from the controller;
           the new certificate must be newer than the installed and the served one. A pair that cannot help is a
           `refuse`: nothing is written, no approval is recorded;
apply      tls_cert_install (backup of the old pair, atomic install), then the reload command when the pair changed
           or the server still serves another certificate;
verify     the endpoint serves the new certificate (fingerprint, serial, not after; read until it does, 10 s), the
           triage's TLS check (net.tls_expiry of the network area, controller side) re-run with the triage's
           settings on the endpoint is ok, and the health endpoints of the service and of its dependents.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import time

from ansible.errors import AnsibleActionFail

from ansible_collections.sre.incident_response.plugins.module_utils import probe_runner
from ansible_collections.sre.incident_response.plugins.module_utils.areas import network as area_network
from ansible_collections.sre.incident_response.plugins.plugin_utils.remediation_options import as_list

SERVED_TRIES = 10
SERVED_DELAY = 1.0


names = as_list  # a list setting, or a comma-separated string as -e gives it


def same_endpoint(a, b):
    try:
        return str(a.get('host')) == str(b.get('host')) and int(a.get('port')) == int(b.get('port'))
    except (TypeError, ValueError):
        return False


def settle(options, svc, tls_endpoints):
    """The role's preflight without the host: (settled, problems). settled: src, key_src, dest, key_dest, hostnames,
    endpoint (the one to verify) and probe_endpoint (the triage's entry of that endpoint, renewal_dir and ca_cert
    included, when it is one), reload."""
    o = options or {}
    tls = svc.get('tls') if isinstance(svc.get('tls'), dict) else {}
    deploy = svc.get('deploy') if isinstance(svc.get('deploy'), dict) else {}
    endpoints = [e for e in tls_endpoints or [] if isinstance(e, dict)]
    given = o.get('endpoint') if isinstance(o.get('endpoint'), dict) else {}
    endpoint = dict(given) if given else dict(endpoints[0] if endpoints else {})
    probe_endpoint = dict(endpoint)
    for entry in endpoints:
        if given and same_endpoint(entry, given):
            probe_endpoint = dict(entry, **given)
            break
    reload_cmd = names(o.get('reload_command')) or names(tls.get('reload_command'))
    if not reload_cmd:
        if deploy.get('type') == 'docker' and deploy.get('container'):
            reload_cmd = ['docker', 'exec', str(deploy['container']), 'nginx', '-s', 'reload']
        elif deploy.get('unit'):
            reload_cmd = ['systemctl', 'reload', str(deploy['unit'])]
    out = {
        'src': str(o.get('src') or ''), 'key_src': str(o.get('key_src') or ''),
        'dest': str(o.get('dest') or tls.get('cert_path') or ''),
        'key_dest': str(o.get('key_dest') or tls.get('key_path') or ''),
        'hostnames': names(o.get('hostnames')) or names(tls.get('server_names')) or names(endpoint.get('server_name')),
        'endpoint': endpoint, 'probe_endpoint': probe_endpoint, 'reload': reload_cmd,
        'renewal_dir': str(probe_endpoint.get('renewal_dir') or ''),
    }
    problems = []
    if bool(out['src']) != bool(out['key_src']):
        problems.append('give both tls_cert_src and tls_cert_key_src (or neither: the pair staged in renewal_dir)')
    elif not out['src'] and not out['renewal_dir']:
        problems.append('no new pair: tls_cert_src and tls_cert_key_src are empty and the endpoint has no renewal_dir')
    for key, text in (('dest', 'installed certificate'), ('key_dest', 'installed key'), ('hostnames', 'host names'),
                      ('reload', 'reload command')):
        if not out[key]:
            problems.append('no %s' % text)
    if endpoint.get('host') in (None, '') or endpoint.get('port') in (None, ''):
        problems.append('no endpoint to verify')
    return out, problems


def pick_renewal(found, directory):
    """(cert, key) of the files `found` in the renewal directory, first match of the names triage looks for
    (module_utils/areas/network.py RENEWAL_*_NAMES); None where missing."""
    base = dict((p.rstrip('/').rsplit('/', 1)[-1], p) for p in found or [])

    def first(candidates):
        for name in candidates:
            if name in base:
                return base[name]
        return None
    return first(area_network.RENEWAL_CERT_NAMES), first(area_network.RENEWAL_KEY_NAMES)


def served_info(der, now=None):
    """The certificate served (DER): serial (decimal, as tls_cert_install gives it), SHA-256 fingerprint,
    not_after, days_left, expired."""
    info = area_network.describe_certificate(der)
    not_after = info.pop('_not_after')
    now = now or datetime.datetime.now(datetime.timezone.utc)
    digest = hashlib.sha256(der).hexdigest().upper()
    return {'serial': str(int(info['serial'], 16)), 'subject': info['subject'], 'not_after': not_after.strftime('%Y-%m-%dT%H:%M:%SZ'),
            'fingerprint_sha256': ':'.join(digest[i:i + 2] for i in range(0, len(digest), 2)),
            'days_left': round((not_after - now).total_seconds() / 86400.0, 1), 'expired': not_after <= now}


def is_new(new, served):
    """The endpoint serves the new certificate (the same fingerprint, or the same serial when a fingerprint is
    missing) and it is not expired."""
    if not new or not served or served.get('error'):
        return False
    if new.get('fingerprint_sha256') and served.get('fingerprint_sha256'):
        same = new['fingerprint_sha256'] == served['fingerprint_sha256']
    else:
        same = str(new.get('serial')) == str(served.get('serial'))
    return same and not served.get('expired', True)


def not_newer(new, installed, served):
    """Why the new certificate is not newer than the one in place ('' when it is): its not_after must be later than
    the installed and the served certificate's (those that are not the new one)."""
    if not new.get('not_after'):
        return ''
    for what, cur in (('installed', installed), ('served', served)):
        if not cur or not cur.get('not_after') or cur.get('error'):
            continue
        if cur.get('fingerprint_sha256') and cur.get('fingerprint_sha256') == new.get('fingerprint_sha256'):
            continue
        if new['not_after'] <= cur['not_after']:
            return 'the new certificate (until %s) is not newer than the %s one (until %s)' % (
                new['not_after'], what, cur['not_after'])
    return ''


class ApplyCert(object):
    """apply_cert (role tls_cert): tls_cert_install (check mode to plan, then once), the reload command, the served
    certificate and the triage's TLS check from the controller."""

    evidence_retries = 5

    def __init__(self, engine, svc, options):
        self.e, self.svc, self.o = engine, svc, options
        self.name = svc.get('name') or '?'

    # --- preflight -------------------------------------------------------------------------------

    def preflight(self):
        self.net = self.e.settings('network')
        self.t, problems = settle(self.o, self.svc, self.net.get('network_tls_endpoints'))
        if int(self.o.get('min_days_valid', 7)) < 0:
            problems.append('tls_cert_min_days_valid is negative')
        if not self.svc or problems:
            t = self.t
            raise AnsibleActionFail(
                'tls_cert needs the new pair (tls_cert_src, tls_cert_key_src, or a renewed pair in the endpoint\'s '
                'renewal_dir), the installed paths (tls_cert_dest/tls_cert_key_dest or tls.cert_path/tls.key_path of '
                'the service %s), host names to cover, a reload command and an endpoint to verify (tls_cert_endpoint or '
                'incident_tls_endpoints) on %s: %s. Got dest=%s, names=%s, reload=%s, endpoint=%s.' % (
                    self.name, self.e._host, '; '.join(problems) or 'no such service', t['dest'], t['hostnames'],
                    t['reload'], dict((k, v) for k, v in t['endpoint'].items() if k in ('host', 'port', 'server_name'))))
        self.found = ''
        if not self.t['src']:
            self._discover()

    def _discover(self):
        """The renewed pair staged in the endpoint's renewal_dir, on this host (ansible.builtin.find, read-only)."""
        directory = self.t['renewal_dir']
        res = self.e.module('ansible.builtin.find', {
            'paths': [directory], 'patterns': list(area_network.RENEWAL_CERT_NAMES + area_network.RENEWAL_KEY_NAMES),
            'file_type': 'any', 'recurse': False}, check=False)  # 'any': certbot's live/ files are symbolic links
        cert, key = pick_renewal([f.get('path') for f in res.get('files') or [] if f.get('path')], directory)
        if not cert or not key:
            raise AnsibleActionFail(
                'apply_cert on %s: no new pair given (tls_cert_src, tls_cert_key_src) and no renewed pair in %s on %s '
                '(looked for %s and %s). Renew first, or give the pair.' % (
                    self.name, directory, self.e._host, '/'.join(area_network.RENEWAL_CERT_NAMES),
                    '/'.join(area_network.RENEWAL_KEY_NAMES)))
        self.t['src'], self.t['key_src'] = cert, key
        self.found = 'the renewed pair staged in %s: %s + %s' % (directory, cert, key)

    # --- steps -----------------------------------------------------------------------------------

    def _install_args(self):
        t = self.t
        args = {'cert_src': t['src'], 'key_src': t['key_src'], 'cert_dest': t['dest'], 'key_dest': t['key_dest'],
                'hostnames': t['hostnames'], 'min_days_valid': int(self.o.get('min_days_valid', 7))}
        if self.o.get('backup_dir'):
            args['backup_dir'] = str(self.o['backup_dir'])
        return args

    def _check_install(self):
        """tls_cert_install in check mode; its result also when it refuses the pair (problems)."""
        engine = self.e
        saved = engine._task.check_mode
        engine._task.check_mode = True
        try:
            res = engine._execute_module(module_name='sre.incident_response.tls_cert_install',
                                         module_args=self._install_args(), task_vars=engine._vars)
        finally:
            engine._task.check_mode = saved
        if res.get('unreachable'):
            raise AnsibleActionFail('tls_cert_install: %s' % (res.get('msg') or 'unreachable'))
        return res

    def served(self):
        """The certificate the endpoint serves, read from the controller (as triage reads it)."""
        ep = self.t['probe_endpoint']
        got = area_network.fetch_certificate(ep['host'], int(ep['port']), ep.get('server_name'),
                                             float(self.net.get('network_timeout') or 3), ep.get('ca_cert'))
        if got.get('error') or not got.get('der'):
            return {'error': got.get('error') or 'no certificate'}
        try:
            return served_info(got['der'])
        except Exception as exc:  # pylint: disable=broad-except
            return {'error': 'cannot parse the served certificate: %s' % type(exc).__name__}

    def plan(self):
        res = self._check_install()
        new, old = res.get('new') or {}, res.get('old') or {}
        served = self.served()
        self.before = served
        problems = list(res.get('problems') or [])
        if res.get('failed') and not problems:
            problems.append(' '.join(str(res.get('msg') or 'tls_cert_install failed').split()))
        if not problems and not self.o.get('allow_older'):
            older = not_newer(new, old, served)
            if older:
                problems.append(older + ' (tls_cert_allow_older=true installs it anyway)')
        # the install's plan first: the `plan` event's summary quotes the first line
        lines = list(res.get('plan') or []) + ([('new pair: ' + self.found)] if self.found else [])
        ep = self.t['endpoint']
        lines.append('%s:%s serves %s' % (ep.get('host'), ep.get('port'), (
            'serial %s until %s' % (served['serial'], served['not_after'])) if not served.get('error')
            else 'nothing readable (%s)' % served['error']))
        reload_needed = bool(new) and not is_new(new, served)
        if not problems and not res.get('changed') and reload_needed:
            lines.append('the pair is installed but not served: reload (%s)' % ' '.join(self.t['reload']))
        out = {'lines': lines,
               'targets': [1] if (res.get('changed') or reload_needed) and not problems else [],
               'data': {'old': old, 'new': new, 'dest': self.t['dest'], 'src': self.t['src'],
                        'served': served, 'problems': problems}}
        if problems:
            out['lines'].append('REFUSED: ' + '; '.join(problems))
            out['refuse'] = ('apply_cert on %s was not applied, nothing changed: refusing to install %s: %s.' % (
                self.name, self.t['src'], '; '.join(problems)))
        return out

    def apply(self, plan, decision):
        res = self.e.module('sre.incident_response.tls_cert_install', self._install_args(), check=False)
        new = res.get('new') or {}
        reloaded = False
        if res.get('changed') or not is_new(new, self.before):
            self.e.module('ansible.legacy.command', {'argv': list(self.t['reload'])}, check=False)
            reloaded = True
        self.new = new
        if res.get('changed'):
            text = 'installed %s valid until %s (old pair backed up: %s)' % (
                new.get('subject'), new.get('not_after'), ', '.join(res.get('backups') or []) or 'none')
        else:
            text = 'already installed'
        summary = 'apply_cert on %s: %s%s' % (self.name, text, ', server reloaded' if reloaded else '')
        return {'changed': bool(res.get('changed')) or reloaded, 'summary': summary, 'lines': [],
                'result': {'old': res.get('old') or {}, 'new': new, 'backups': res.get('backups') or [],
                           'reloaded': reloaded}}

    def tls_check(self):
        """(ok, summary, findings): the triage's TLS check (net.tls_expiry, the network area on the controller) re-run
        on the endpoint with the triage's settings, recorded."""
        from ansible_collections.sre.incident_response.plugins.action.probe import network_thresholds
        s = self.net
        params = {'dns_names': [], 'tls_endpoints': [self.t['probe_endpoint']], 'dependencies': [], 'host_services': {},
                  'controller_name': s['network_controller_name'], 'timeout': s['network_timeout'],
                  'thresholds': network_thresholds(s), 'extra_disk_paths': [], 'report_host': None, 'services': None,
                  'container_resources': False, 'cpu_sample_seconds': 0.3, 'docker_host': None}
        out = probe_runner.run_jobs([{'area': 'controller_network', 'label': 'network', 'host': s['network_controller_name'],
                                      'service': None, 'run': area_network.run,
                                      'module': probe_runner.AreaModule(self.e, params)}], workers=1)
        checks = names(self.o.get('verify_checks')) or ['net.tls_expiry']
        found = [f for f in out.get('findings') or [] if f.get('check') in checks]
        self.e.record_findings(found)
        ok = bool(found) and all(f.get('status') == 'ok' for f in found)
        return ok, ', '.join('%s %s' % (f['check'], f['status']) for f in found) or 'no finding', found

    def verify(self, plan, applied):
        new = getattr(self, 'new', None) or plan['data'].get('new') or {}
        served = {}
        for attempt in range(SERVED_TRIES):
            if attempt:
                time.sleep(SERVED_DELAY)
            served = self.served()
            if is_new(new, served):
                break
        served_ok = is_new(new, served)
        findings_ok, findings, dummy = self.tls_check()
        health_ok, health_lines = True, []
        retries = int(self.o.get('health_retries', 15))
        if self.svc.get('health'):
            health_ok, health_lines, dummy = self.e.health([self.name], retries)
        users = self.e.dependents(self.name)
        users_ok, users_lines = True, []
        if users:
            users_ok, users_lines, dummy = self.e.health(users, retries)
        ep = self.t['endpoint']
        if served_ok:
            what = 'the new certificate (serial %s, until %s)' % (served['serial'], served['not_after'])
        else:
            what = 'NOT the new certificate: %s' % (served.get('error') or 'serial %s until %s%s' % (
                served.get('serial'), served.get('not_after'), ', expired' if served.get('expired') else ''))
        summary = '%s:%s serves %s, health %s' % (ep.get('host'), ep.get('port'), what, 'ok' if health_ok else 'NOT ok')
        return {'ok': served_ok and findings_ok and health_ok, 'summary': summary, 'findings': findings,
                'remaining': '' if users_ok else 'health of %s NOT ok: %s' % (', '.join(users), '; '.join(users_lines)[:200]),
                'result': {'findings': findings, 'served_serial': served.get('serial', ''),
                           'served_fingerprint': served.get('fingerprint_sha256', ''),
                           'served_not_after': served.get('not_after', ''), 'health': health_lines + users_lines}}
