"""apply_cert on the engine (plugins/plugin_utils/remediation_tls.py): the role's preflight without the host (paths,
names, endpoint, reload command), the renewed pair found in renewal_dir, "the endpoint serves the new certificate"
and "the new certificate is newer than the one in place"."""
import datetime
import ipaddress

from ansible_collections.sre.incident_response.plugins.plugin_utils import remediation_tls as tls

SVC = {'name': 'proxy', 'kind': 'proxy', 'deploy': {'type': 'docker', 'container': 'app-proxy'},
       'tls': {'cert_path': '/srv/tls/server.crt', 'key_path': '/srv/tls/server.key', 'server_names': ['api.lab.test']}}
ENDPOINTS = [{'name': 'api', 'host': '127.0.0.1', 'port': '15443', 'server_name': 'api.lab.test',
              'renewal_dir': '/srv/tls/renewed'}]


def test_settle_takes_the_service_tls_section_and_the_first_endpoint():
    t, problems = tls.settle({'src': '/in/new.crt', 'key_src': '/in/new.key'}, SVC, ENDPOINTS)
    assert problems == []
    assert (t['dest'], t['key_dest'], t['hostnames']) == ('/srv/tls/server.crt', '/srv/tls/server.key', ['api.lab.test'])
    assert t['reload'] == ['docker', 'exec', 'app-proxy', 'nginx', '-s', 'reload']
    assert t['endpoint']['port'] == '15443' and t['renewal_dir'] == '/srv/tls/renewed'


def test_settle_options_win_and_lists_may_be_comma_separated():
    opts = {'src': '/a.crt', 'key_src': '/a.key', 'dest': '/d.crt', 'key_dest': '/d.key', 'hostnames': 'a.test,b.test',
            'reload_command': ['systemctl', 'reload', 'nginx'], 'endpoint': {'host': '127.0.0.1', 'port': 15443}}
    t, problems = tls.settle(opts, SVC, ENDPOINTS)
    assert problems == [] and t['hostnames'] == ['a.test', 'b.test'] and t['reload'] == ['systemctl', 'reload', 'nginx']
    assert (t['dest'], t['key_dest']) == ('/d.crt', '/d.key')
    # the triage's entry of the same endpoint gives what the option leaves out (renewal_dir, server_name)
    assert t['probe_endpoint']['renewal_dir'] == '/srv/tls/renewed' and t['probe_endpoint']['server_name'] == 'api.lab.test'


def test_settle_systemd_reload_and_endpoint_server_name():
    svc = {'name': 'proxy', 'deploy': {'type': 'systemd', 'unit': 'nginx.service'},
           'tls': {'cert_path': '/c', 'key_path': '/k'}}
    t, problems = tls.settle({}, svc, ENDPOINTS)
    assert problems == [] and t['reload'] == ['systemctl', 'reload', 'nginx.service'] and t['hostnames'] == ['api.lab.test']
    assert t['src'] == '' and t['renewal_dir']  # the pair is looked up in renewal_dir


def test_settle_says_what_is_missing():
    t, problems = tls.settle({'src': '/only.crt'}, {'name': 'proxy'}, [])
    text = '; '.join(problems)
    for word in ('tls_cert_key_src', 'installed certificate', 'installed key', 'host names', 'reload command', 'endpoint'):
        assert word in text, (word, text)
    dummy, problems = tls.settle({}, dict(SVC), [{'host': '127.0.0.1', 'port': 443}])
    assert any('renewal_dir' in p for p in problems)


def test_pick_renewal_prefers_the_names_triage_looks_for():
    found = ['/r/cert.pem', '/r/fullchain.pem', '/r/privkey.pem', '/r/server.key']
    assert tls.pick_renewal(found, '/r') == ('/r/fullchain.pem', '/r/privkey.pem')
    assert tls.pick_renewal(['/r/tls.crt'], '/r') == ('/r/tls.crt', None)
    assert tls.pick_renewal([], '/r') == (None, None)


def _der(days, serial=4242):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'api.lab.test')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial).not_valid_before(now - datetime.timedelta(days=2))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName('api.lab.test'),
                                                        x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER), cert.fingerprint(hashes.SHA256()).hex(':').upper()


def test_served_info_matches_what_tls_cert_install_reports():
    der, fingerprint = _der(90)
    info = tls.served_info(der)
    assert info['serial'] == '4242' and info['fingerprint_sha256'] == fingerprint
    assert info['expired'] is False and 89 < info['days_left'] <= 90 and info['not_after'].endswith('Z')
    new = {'serial': '4242', 'fingerprint_sha256': fingerprint}
    assert tls.is_new(new, info)
    assert not tls.is_new(dict(new, fingerprint_sha256='AA:BB'), info)
    assert not tls.is_new(new, dict(info, expired=True))
    assert not tls.is_new(new, {'error': 'ConnectionRefusedError'})
    assert tls.is_new({'serial': '4242'}, dict(info, fingerprint_sha256=''))  # serial when a fingerprint is missing


def test_expired_served_certificate():
    der, dummy = _der(-1)
    assert tls.served_info(der)['expired'] is True


def test_the_new_certificate_must_be_newer_than_the_installed_and_the_served_one():
    new = {'not_after': '2027-03-01T00:00:00Z', 'fingerprint_sha256': 'NEW'}
    old = {'not_after': '2026-12-10T00:00:00Z', 'fingerprint_sha256': 'OLD'}
    assert tls.not_newer(new, old, old) == ''
    later = {'not_after': '2027-06-01T00:00:00Z', 'fingerprint_sha256': 'LATER'}
    assert 'not newer than the installed one' in tls.not_newer(new, later, old)
    assert 'not newer than the served one' in tls.not_newer(new, old, later)
    # the new pair already in place is no reason to refuse (the second apply changes nothing)
    assert tls.not_newer(new, dict(new), dict(new)) == ''
    # nothing readable in place: nothing to compare with
    assert tls.not_newer(new, {}, {'error': 'no certificate'}) == '' and tls.not_newer(new, {'error': 'X'}, {}) == ''
