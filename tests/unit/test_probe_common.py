"""Unit tests: shared probe logic (findings, thresholds, durations, combining services)."""
import datetime

import pytest

from ansible_collections.sre.incident_response.plugins.module_utils import findings as F
from ansible_collections.sre.incident_response.plugins.module_utils import probe_common as pc
from ansible_collections.sre.incident_response.plugins.module_utils import pg_common, redis_common
from ansible_collections.sre.incident_response.plugins.module_utils.docker_api import demux, socket_path, DockerError


@pytest.mark.parametrize('text,seconds', [('15m', 900), ('30s', 30), ('2h', 7200), ('1d', 86400), ('500ms', 0.5),
                                          (' 90 ', 90), (45, 45), ('1.5h', 5400), ('10 minutes', 600)])
def test_parse_duration(text, seconds):
    assert pc.parse_duration(text) == seconds


@pytest.mark.parametrize('bad', ['', None, 'soon', '15x', '-5m'])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        pc.parse_duration(bad)


def test_level_both_directions():
    assert pc.level(50, 80, 90) == 'ok'
    assert pc.level(80, 80, 90) == 'warn'
    assert pc.level(95, 80, 90) == 'crit'
    assert pc.level(None, 1, 2) == 'unknown'
    assert pc.level(20, 14, 0, higher_is_worse=False) == 'ok'
    assert pc.level(5, 14, 0, higher_is_worse=False) == 'warn'
    assert pc.level(-1, 14, 0, higher_is_worse=False) == 'crit'


def test_worst_and_counts():
    assert F.worst([]) == 'ok'
    assert F.worst(['ok', 'unknown', 'warn']) == 'warn'
    assert F.worst(['unknown', 'crit', 'ok']) == 'crit'
    assert F.counts([{'status': 'ok'}, {'status': 'crit'}, {'status': 'ok'}]) == {'ok': 2, 'warn': 0, 'crit': 1, 'unknown': 0}


def test_percentile_nearest_rank():
    values = list(range(1, 101))
    assert pc.percentile(values, 50) == 50
    assert pc.percentile(values, 95) == 95
    assert pc.percentile([7], 95) == 7
    assert pc.percentile([], 50) is None


def test_human_formats():
    assert pc.human_bytes(1536) == '1.5 KiB'
    assert pc.human_bytes(64 * 1024 * 1024) == '64.0 MiB'
    assert pc.fmt_pct(96.0) == '96%' and pc.fmt_pct(12.34) == '12.3%'


def test_parse_docker_time_nanoseconds_and_zero():
    dt = pc.parse_docker_time('2026-11-27T03:52:04.083774981Z')
    assert dt == datetime.datetime(2026, 11, 27, 3, 52, 4, 83774, tzinfo=datetime.timezone.utc)
    assert pc.parse_docker_time('0001-01-01T00:00:00Z') is None


def test_finding_rejects_bad_status_and_collapses_summary():
    f = F.make_finding('pg.locks', 'db1', 'db', 'warn', 'two\n  lines')
    assert f['summary'] == 'two lines' and f['evidence'] == {}
    with pytest.raises(ValueError):
        F.make_finding('pg.locks', 'db1', 'db', 'bad', 'x')


def test_combine_keeps_one_finding_per_host_check_worst_first():
    items = [F.make_finding('health.container', 'h1', 'backend', 'ok', 'backend up'),
             F.make_finding('health.container', 'h1', 'proxy', 'crit', 'proxy exited (exit code 1)', {'exit': 1}),
             F.make_finding('health.container', 'h2', 'db', 'ok', 'db up')]
    out = pc.combine(items)
    assert len(out) == 2
    h1 = out[0]
    assert h1['status'] == 'crit' and h1['service'] == 'proxy'
    assert h1['summary'] == 'proxy: proxy exited (exit code 1) (1 of 2 services not ok)'
    assert set(h1['evidence']['services']) == {'backend', 'proxy'}
    assert h1['evidence']['services']['proxy']['evidence'] == {'exit': 1}
    assert out[1]['summary'] == 'db up'


def test_combine_all_ok_lists_every_service():
    out = pc.combine([F.make_finding('x.y', 'h', 'a', 'ok', 'a fine'), F.make_finding('x.y', 'h', 'b', 'ok', 'b fine')])
    assert out[0]['status'] == 'ok' and out[0]['summary'] == '2 services ok: a fine; b fine'


def test_docker_demux_and_socket_path():
    raw = b'\x01\x00\x00\x00\x00\x00\x00\x06hello\n' + b'\x02\x00\x00\x00\x00\x00\x00\x04err\n'
    assert demux(raw) == ('hello\n', 'err\n')
    assert demux(b'plain tty output') == ('plain tty output', '')
    assert socket_path('unix:///run/docker.sock') == '/run/docker.sock'
    with pytest.raises(DockerError):
        socket_path('tcp://127.0.0.1:2375')


def test_pg_connection_kwargs_and_error_redaction():
    params = {'login_host': 'db.example.com', 'login_port': 6432, 'login_db': 'app', 'login_user': 'app',
              'login_password': 's3cret-pw', 'connect_timeout': 0, 'statement_timeout': 5000, 'ssl_mode': 'require',
              'ca_cert': '/etc/ca.pem'}
    kw = pg_common.connection_kwargs(params, application_name='probe')
    assert kw['port'] == 6432 and kw['dbname'] == 'app' and kw['sslmode'] == 'require' and kw['sslrootcert'] == '/etc/ca.pem'
    assert kw['connect_timeout'] == 5 and 'statement_timeout=5000' in kw['options'] and kw['application_name'] == 'probe'
    assert 'password' not in pg_common.connection_kwargs({'login_password': None})
    exc = Exception('connection to server at "db" failed:\n  FATAL:  password s3cret-pw rejected\nmore')
    line = pg_common.describe_error(exc, secrets=['s3cret-pw'])
    assert '\n' not in line and 's3cret-pw' not in line and line.startswith('Exception: connection to server')
    assert 'FATAL' in line


def test_redis_connection_kwargs_tls_and_error():
    kw = redis_common.connection_kwargs({'login_host': 'r', 'login_port': 6380, 'login_password': 'pw12', 'tls': True,
                                         'validate_certs': False, 'ca_cert': '/ca', 'db': 2})
    assert kw['ssl'] is True and kw['ssl_cert_reqs'] == 'none' and kw['ssl_check_hostname'] is False
    assert kw['ssl_ca_certs'] == '/ca' and kw['db'] == 2 and kw['password'] == 'pw12'
    assert 'ssl' not in redis_common.connection_kwargs({'tls': False})
    assert redis_common.describe_error(ValueError('bad pw12 here'), secrets=['pw12']) == 'ValueError: bad ******** here'


class _Module(object):
    def __init__(self, **params):
        self.params = params

    def fail_json(self, msg):
        raise ValueError(msg)


def test_window_seconds_and_thresholds_of_the_areas():
    assert pc.window_seconds(_Module(window='15m')) == 900
    with pytest.raises(ValueError, match='^window: '):
        pc.window_seconds(_Module(window='soon'))
    spec = {'warn': {'default': 80}, 'crit': {'default': 90}}
    assert pc.thresholds_of(_Module(thresholds={'warn': None, 'crit': 95}), spec, (('warn', 'crit'),)) == {'warn': 80, 'crit': 95}
    assert pc.thresholds_of(_Module(thresholds=None), spec) == {'warn': 80, 'crit': 90}
    with pytest.raises(ValueError, match=r'thresholds.warn \(99\) must not exceed thresholds.crit \(90\)'):
        pc.thresholds_of(_Module(thresholds={'warn': 99}), spec, (('warn', 'crit'),))
