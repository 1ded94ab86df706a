#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: tls_cert_install
short_description: Validate a new certificate and key, back up the old pair and install the new one atomically
version_added: 0.1.0
description:
  - Validates the new pair before anything is written - the key matches the certificate, the certificate is valid
    now and for at least O(min_days_valid) more days, and its names (subjectAltName, else the common name) cover
    every name of O(hostnames).
  - When the installed certificate is already the new one (same SHA-256 fingerprint and same key) nothing changes.
  - Otherwise copies the installed pair to O(backup_dir) with a UTC time stamp and replaces both files atomically,
    keeping their owner and mode (a new key file gets C(0600)).
  - Check mode validates and reports the old and new certificates; nothing is written.
author: sre.incident_response contributors (@sre-incident-response)
extends_documentation_fragment:
  - sre.incident_response.attributes
  - sre.incident_response.attributes.idempotent
options:
  cert_src:
    description: The new certificate (PEM; the leaf first, a chain may follow) on the managed host.
    type: path
    required: true
  key_src:
    description: The new private key (PEM) on the managed host.
    type: path
    required: true
  cert_dest:
    description: Where the server reads its certificate.
    type: path
    required: true
  key_dest:
    description: Where the server reads its key.
    type: path
    required: true
  hostnames:
    description: DNS names (or IP addresses) the certificate must cover.
    type: list
    elements: str
    required: true
  min_days_valid:
    description: The new certificate must stay valid at least this many days.
    type: int
    default: 7
  backup_dir:
    description: Directory for the backups of the old pair; defaults to C(backup/) beside O(cert_dest).
    type: path
attributes:
  check_mode:
    support: full
    details: Validates and reports; writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Installing the same certificate and key again changes nothing.
requirements:
  - cryptography >= 3.1
'''

EXAMPLES = r'''
- name: Install the renewed certificate of api.example.com
  sre.incident_response.tls_cert_install:
    cert_src: /tmp/renewed/api.crt
    key_src: /tmp/renewed/api.key
    cert_dest: /etc/nginx/tls/server.crt
    key_dest: /etc/nginx/tls/server.key
    hostnames: [api.example.com]
'''

RETURN = r'''
new:
  description: The new certificate.
  returned: always
  type: dict
  sample: {subject: CN=api.example.com, issuer: CN=api.example.com, serial: "1234", not_before: "2026-11-26T00:00:00Z",
           not_after: "2027-02-24T00:00:00Z", days_left: 89.2, names: [api.example.com], fingerprint_sha256: "AB:CD:..."}
old:
  description: The installed certificate before (empty when there was none or it could not be read).
  returned: always
  type: dict
  sample: {subject: CN=api.example.com, not_after: "2026-11-26T00:00:00Z", days_left: -1.0}
backups:
  description: Backup copies written.
  returned: always
  type: list
  elements: str
  sample: [/etc/nginx/tls/backup/server.crt.20261127T041500Z]
problems:
  description: Why the new pair was refused (the module fails when not empty).
  returned: always
  type: list
  elements: str
  sample: []
plan:
  description: What happens, for people.
  returned: always
  type: list
  elements: str
  sample: ["replace CN=api.example.com (expired 2026-11-26) with CN=api.example.com valid until 2027-02-24 (89 days)"]
'''

import datetime
import ipaddress
import os
import shutil
import tempfile
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.sre.incident_response.plugins.module_utils import remediation as logic

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    HAS_CRYPTO = True
    CRYPTO_ERROR = None
except ImportError:  # pragma: no cover
    HAS_CRYPTO = False
    CRYPTO_ERROR = traceback.format_exc()


def _utc(cert, attr):
    value = getattr(cert, attr + '_utc', None)
    if value is None:
        value = getattr(cert, attr).replace(tzinfo=datetime.timezone.utc)
    return value


def load_cert(path):
    with open(path, 'rb') as handle:
        data = handle.read()
    return x509.load_pem_x509_certificate(data), data


def describe(cert, now):
    names = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName) + [str(i) for i in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    not_after = _utc(cert, 'not_valid_after')
    not_before = _utc(cert, 'not_valid_before')
    return {'subject': cert.subject.rfc4514_string(), 'issuer': cert.issuer.rfc4514_string(), 'serial': str(cert.serial_number),
            'not_before': not_before.strftime('%Y-%m-%dT%H:%M:%SZ'), 'not_after': not_after.strftime('%Y-%m-%dT%H:%M:%SZ'),
            'days_left': round((not_after - now).total_seconds() / 86400.0, 1), 'names': names,
            'valid_now': not_before <= now < not_after,
            'fingerprint_sha256': cert.fingerprint(hashes.SHA256()).hex(':').upper()}


def covers(info, host):
    try:
        ipaddress.ip_address(host)
        return host in info['names']
    except ValueError:
        return logic.hostname_matches(host, info['names'])


def public_bytes(key):
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def atomic_write(path, data, default_mode):
    directory = os.path.dirname(path) or '.'
    mode, uid, gid = default_mode, None, None
    if os.path.exists(path):
        st = os.stat(path)
        mode, uid, gid = st.st_mode & 0o7777, st.st_uid, st.st_gid
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if uid is not None:
            try:
                os.chown(tmp, uid, gid)
            except OSError:
                pass
        os.replace(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main():
    module = AnsibleModule(
        argument_spec=dict(
            cert_src=dict(type='path', required=True),
            key_src=dict(type='path', required=True, no_log=False),
            cert_dest=dict(type='path', required=True),
            key_dest=dict(type='path', required=True, no_log=False),
            hostnames=dict(type='list', elements='str', required=True),
            min_days_valid=dict(type='int', default=7),
            backup_dir=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    if not HAS_CRYPTO:
        module.fail_json(msg=missing_required_lib('cryptography'), exception=CRYPTO_ERROR)
    p = module.params
    now = datetime.datetime.now(datetime.timezone.utc)
    result = dict(changed=False, new={}, old={}, backups=[], problems=[], plan=[])
    try:
        cert, cert_pem = load_cert(p['cert_src'])
        with open(p['key_src'], 'rb') as handle:
            key_pem = handle.read()
        key = serialization.load_pem_private_key(key_pem, password=None)
    except Exception as exc:
        module.fail_json(msg='cannot read the new certificate or key: %s' % type(exc).__name__, **result)
    new = describe(cert, now)
    result['new'] = new
    problems = []
    if public_bytes(key) != cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        problems.append('the private key does not match the certificate')
    if not new['valid_now']:
        problems.append('the certificate is not valid now (%s .. %s)' % (new['not_before'], new['not_after']))
    elif new['days_left'] < p['min_days_valid']:
        problems.append('the certificate expires in %.1f days (< %d)' % (new['days_left'], p['min_days_valid']))
    for host in p['hostnames']:
        if not covers(new, host):
            problems.append('the certificate does not cover %s (names: %s)' % (host, ', '.join(new['names']) or 'none'))
    result['problems'] = problems
    if problems:
        module.fail_json(msg='refusing to install %s: %s; nothing was changed' % (p['cert_src'], '; '.join(problems)), **result)
    same = False
    if os.path.exists(p['cert_dest']):
        try:
            old, dummy = load_cert(p['cert_dest'])
            result['old'] = describe(old, now)
            with open(p['key_dest'], 'rb') as handle:
                same = result['old']['fingerprint_sha256'] == new['fingerprint_sha256'] and handle.read() == key_pem
        except Exception as exc:
            result['old'] = {'error': type(exc).__name__}
    old = result['old']
    if same:
        result['plan'].append('%s already serves %s (valid until %s): nothing to do' % (p['cert_dest'], new['subject'], new['not_after']))
        module.exit_json(**result)
    result['plan'].append('replace %s (%s, %s %s) with %s valid %s .. %s (%.0f days), names %s; key matches; backup of the old pair' % (
        p['cert_dest'], old.get('subject', 'none'), 'expired' if old.get('days_left', 1) < 0 else 'expires',
        old.get('not_after', '-'), new['subject'], new['not_before'], new['not_after'], new['days_left'], ', '.join(new['names'])))
    result['changed'] = True
    if module.check_mode:
        module.exit_json(**result)
    stamp = now.strftime('%Y%m%dT%H%M%SZ')
    backup_dir = p['backup_dir'] or os.path.join(os.path.dirname(p['cert_dest']), 'backup')
    try:
        if not os.path.isdir(backup_dir):
            os.makedirs(backup_dir, 0o700)
        for path in (p['cert_dest'], p['key_dest']):
            if os.path.exists(path):
                dest = os.path.join(backup_dir, '%s.%s' % (os.path.basename(path), stamp))
                shutil.copy2(path, dest)
                result['backups'].append(dest)
        atomic_write(p['key_dest'], key_pem, 0o600)
        atomic_write(p['cert_dest'], cert_pem, 0o644)
    except OSError as exc:
        module.fail_json(msg='installing the certificate failed: %s' % exc, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
