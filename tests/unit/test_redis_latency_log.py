"""redis.latency and redis.log (areas/redis.py): the latency monitor's events and the server's own log file as
findings, both client paths reading them in one round trip (redis-py's pipeline, redis_cli's stdin), and what the
diagnosis makes of them. Pure evaluation, no server."""
import json
import os
import time

import pytest

from ansible_collections.sre.incident_response.plugins.module_utils import findings as contract
from ansible_collections.sre.incident_response.plugins.module_utils import redis_cli
from ansible_collections.sre.incident_response.plugins.module_utils.areas import redis as area
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import diagnosis as dx
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import signals

NOW = 1796500000
T = {'window_seconds': 900, 'latency_warn_ms': 100, 'latency_crit_ms': 1000}


def _valid(f):
    assert contract.validate(f) == [], contract.validate(f)
    return f


# --- redis.latency ------------------------------------------------------------------------------------------

def ev(name, age, latest, top):
    return {'event': name, 'latest_ts': NOW - age, 'latest_ms': latest, 'max_ms': top}


LATENCY_CASES = [
    # id, events, monitor threshold, history, status, summary fragment
    ('monitor-off', [], 0, None, 'ok', 'turn it on with CONFIG SET latency-monitor-threshold 100'),
    ('monitor-on-quiet', [], 100, None, 'ok', 'no latency event in the window (monitor at 100 ms)'),
    ('old-events-are-history', [ev('command', 5000, 2500, 2500)], 100, None, 'ok', '1 older event (history, not rated)'),
    ('recent-under-warn', [ev('fork', 60, 40, 40)], 10, None, 'ok', 'under 100 ms'),
    ('recent-warn', [ev('command', 30, 250, 250)], 100, None, 'warn', 'worst command 250 ms 30 s ago'),
    ('recent-crit', [ev('command', 30, 1500, 1500)], 100, None, 'crit', 'worst command 1500 ms'),
    # the all-time max is not the window's: the history's spikes inside the window rate
    ('history-in-window', [ev('command', 30, 150, 5000)], 100,
     {'command': [(NOW - 5000, 5000), (NOW - 200, 700), (NOW - 30, 150)]}, 'warn', 'command 700 ms'),
    ('monitor-turned-off-since', [ev('command', 30, 300, 300)], 0, None, 'warn', '(monitor now off)'),
    ('threshold-unknown', [], None, None, 'ok', 'monitor threshold unknown'),
    # spikes minutes ago, none since (a loaded machine's stall, an earlier fault): not happening now, not rated
    ('stale-spike', [ev('command', 360, 295, 295)], 100, {'command': [(NOW - 360, 295)]}, 'ok',
     '1 latency event in the window, worst command 295 ms, the latest 6 min ago, none since: not rated'),
    ('stale-spikes', [ev('command', 360, 295, 295)], 100, {'command': [(NOW - 600, 250), (NOW - 360, 295)]},
     'ok', 'none since: not rated'),
    # the same spike while it is live, or past the crit threshold, rates
    ('live-spike', [ev('command', 60, 295, 295)], 100, {'command': [(NOW - 60, 295)]}, 'warn', 'command 295 ms'),
    ('isolated-stale-crit', [ev('command', 360, 1500, 1500)], 100, {'command': [(NOW - 360, 1500)]}, 'crit',
     'command 1500 ms'),
]


@pytest.mark.parametrize('events,monitor,history,status,fragment', [c[1:] for c in LATENCY_CASES],
                         ids=[c[0] for c in LATENCY_CASES])
def test_evaluate_latency(events, monitor, history, status, fragment):
    f = _valid(area.evaluate_latency('app-redis', 'redis', events, monitor, T, history, now=NOW))
    assert f['status'] == status, f
    assert fragment in f['summary'], f['summary']
    assert f['evidence']['events_in_window'] == len([e for e in f['evidence']['events'] if e['within_window']])


def test_latency_that_could_not_be_read_is_unknown():
    f = _valid(area.evaluate_latency('h', 'redis', None, None, T, error="ResponseError: unknown command 'LATENCY'"))
    assert f['status'] == 'unknown' and 'LATENCY' in f['summary']


def test_parse_latency_latest_keeps_rows_with_a_time_and_is_bounded():
    rows = [['command', 1796499970, 250, 800], ['bad'], ['fork', 'x', 1, 1]] + [['e%d' % i, NOW, 1, 1] for i in range(50)]
    parsed = area.parse_latency_latest(rows)
    assert parsed[0] == {'event': 'command', 'latest_ts': 1796499970, 'latest_ms': 250, 'max_ms': 800}
    assert len(parsed) == area.MAX_LATENCY_EVENTS


def test_latency_live_age_ranks_the_hypothesis():
    f = area.evaluate_latency('app-redis', 'redis', [ev('command', 30, 250, 250), ev('fork', 5000, 200, 200)], 100, T,
                              now=NOW)
    f['ts'] = '2026-12-06T03:00:00Z'
    assert signals.newest_event_age(f) == 30.0 and signals.is_live(f)


# --- redis.log ----------------------------------------------------------------------------------------------

def line(age, mark, msg, pid=1, role='M'):
    stamp = time.strftime('%d %b %Y %H:%M:%S', time.localtime(NOW - age))
    return '%d:%s %s.%03d %s %s' % (pid, role, stamp, 123, mark, msg)


STARTUP = [line(600, '#', 'WARNING Memory overcommit must be enabled! To fix this issue add vm.overcommit_memory = 1'),
           line(600, '*', 'Ready to accept connections')]
SAVE_FAILING = [line(58, '*', 'Background saving started by pid 77'),
                line(58, '#', 'Failed opening the temp RDB file temp-77.rdb (in server root dir /var/lib/redis) for saving: '
                              'Permission denied', pid=77, role='C'),
                line(57, '#', 'Background saving error')]
RECOVERED = [line(20, '*', 'Background saving started by pid 101'), line(19, '*', 'DB saved on disk', pid=101, role='C'),
             line(19, '*', 'Background saving terminated with success')]
FORK_STREAM = [line(age, '#', "Can't save in background: fork: Cannot allocate memory") for age in (50, 40, 30, 20, 10)]
OLD_SYNC = [line(age, '#', 'Error condition on socket for SYNC: Connection refused', role='S') for age in (800, 790, 780)]
CRASH = [line(5, '#', '=== REDIS BUG REPORT START: Cut & paste starting from here ===')]
BEFORE_WINDOW = [line(2000, '#', 'Background saving error')]

LOG_CASES = [
    # id, lines, status, summary fragment, kinds of the rated groups
    ('startup-advice-is-evidence', STARTUP, 'ok', '1 warning line in the window, none of a known fault', []),
    ('empty', [], 'ok', 'no warning line in the window', []),
    ('save-failing', STARTUP + SAVE_FAILING, 'warn', 'Permission denied', ['save_failed', 'save_failed']),
    ('save-recovered', STARTUP + SAVE_FAILING + RECOVERED, 'ok', '(recovered)', []),
    ('fork-failing-now', FORK_STREAM, 'warn', "Can't save in background: fork: Cannot allocate memory x5", ['fork_failed']),
    ('stopped-long-ago-is-history', OLD_SYNC, 'ok', 'stopped', []),
    ('crash-is-crit', CRASH, 'crit', 'REDIS BUG REPORT', ['crash']),
    ('before-the-window-not-read', BEFORE_WINDOW, 'ok', 'no warning line in the window', []),
]


@pytest.mark.parametrize('lines,status,fragment,kinds', [c[1:] for c in LOG_CASES], ids=[c[0] for c in LOG_CASES])
def test_evaluate_log(lines, status, fragment, kinds):
    parsed = area.parse_redis_log('\n'.join(lines + ['not a redis line']), NOW - 900)
    f = _valid(area.evaluate_log('app-redis', 'redis', parsed, '/var/log/redis/redis-server.log', 900, now=NOW))
    assert f['status'] == status, f
    assert fragment in f['summary'], f['summary']
    assert [g['kind'] for g in f['evidence']['groups'] if g['status'] != 'ok'] == kinds
    assert f['evidence']['unparsed'] == 1


def test_log_groups_by_message_with_counts_and_first_last_time():
    parsed = area.parse_redis_log('\n'.join(FORK_STREAM), NOW - 900)
    assert len(parsed['groups']) == 1
    message, group = list(parsed['groups'].items())[0]
    assert group['count'] == 5 and group['last_ts'] - group['first_ts'] == 40
    assert message == "Can't save in background: fork: Cannot allocate memory"


def test_log_lines_are_redacted_and_stay_data():
    secret = 'lab-redis-S3cret-9d3e'
    text = '\n'.join([line(10, '#', 'Error condition on socket for SYNC: {{ lookup("pipe", "id") }} password=%s' % secret),
                      line(9, '#', 'MASTER aborted replication with an error: NOAUTH auth %s' % secret)])
    parsed = area.parse_redis_log(text, NOW - 900, redact=Redactor(literals=[secret]).text)
    f = _valid(area.evaluate_log('h', 'redis', parsed, '/var/log/redis.log', 900, now=NOW))
    assert secret not in json.dumps(f)
    assert '{{ lookup("pipe", "id") }}' in f['evidence']['groups'][0]['sample']  # kept as text, never templated here


def test_log_is_bounded_in_lines():
    text = '\n'.join([line(10, '#', 'Background saving error')] * 100)
    assert area.parse_redis_log(text, NOW - 900, max_lines=7)['warnings'] == 7


@pytest.mark.parametrize('config,path,why', [
    ({'logfile': '', 'dir': '/data'}, None, 'Redis logs to stdout'),
    ({'logfile': '', 'syslog-enabled': 'yes'}, None, 'syslog and stdout'),
    ({'logfile': '/dev/null'}, None, 'discards'),
    ({'logfile': 'redis.log', 'dir': '/var/lib/redis'}, '/var/lib/redis/redis.log', None),
    ({'logfile': '/var/log/redis/redis-server.log', 'dir': '/data'}, '/var/log/redis/redis-server.log', None),
    ({}, None, 'no answer'),
], ids=['stdout', 'syslog', 'dev-null', 'relative-to-dir', 'absolute', 'refused'])
def test_log_path(config, path, why):
    found, reason = area.log_path(config)
    assert found == path
    assert (why is None and reason is None) or why in reason


PARAMS = {'login_host': '127.0.0.1', 'login_password': 'lab-redis-S3cret-9d3e'}


def test_log_check_reads_the_tail_and_says_why_it_cannot(tmp_path):
    path = tmp_path / 'redis.log'
    path.write_text('\n'.join(STARTUP + SAVE_FAILING) + '\n')
    f = _valid(area.log_check('h', 'redis', {'logfile': str(path)}, 900, PARAMS, [PARAMS['login_password']], now=NOW))
    assert f['status'] == 'warn' and f['evidence']['source'] == str(path) and not f['evidence']['truncated']
    missing = _valid(area.log_check('h', 'redis', {'logfile': 'gone.log', 'dir': str(tmp_path)}, 900, PARAMS, [], now=NOW))
    assert missing['status'] == 'unknown' and 'No such file or directory' in missing['summary']
    assert '\n' not in missing['summary'] and str(tmp_path / 'gone.log') in missing['summary']
    stdout = _valid(area.log_check('h', 'redis', {'logfile': ''}, 900, PARAMS, [], now=NOW))
    assert stdout['status'] == 'ok' and 'not read here: Redis logs to stdout' in stdout['summary']
    refused = _valid(area.log_check('h', 'redis', {}, 900, PARAMS, [], config_error='ResponseError: NOPERM', now=NOW))
    assert refused['status'] == 'unknown' and 'NOPERM' in refused['summary']


def test_tail_is_bounded_in_bytes(tmp_path):
    path = tmp_path / 'big.log'
    path.write_text('x' * 5000 + '\n' + 'last line\n')
    text, cut = area.tail_file(str(path), max_bytes=100)
    assert cut and text == 'last line\n'


# --- one round trip on both client paths --------------------------------------------------------------------

class FakePipe(object):
    """redis-py's pipeline as read_server_state uses it."""

    def __init__(self, replies):
        self.replies, self.queued = replies, []

    def execute_command(self, *args):
        self.queued.append(args)

    def config_get(self, name):
        self.queued.append(('CONFIG', 'GET', name))

    def execute(self, raise_on_error=True):
        assert raise_on_error is False
        return self.replies


class FakeLibrary(object):
    def __init__(self, replies):
        self.pipe = FakePipe(replies)

    def pipeline(self, transaction=True):
        assert transaction is False
        return self.pipe


def test_read_server_state_library_and_cli_agree():
    library = FakeLibrary([[['command', 1796499970, 250, 800]], {'latency-monitor-threshold': '100'},
                           {'logfile': '/var/log/redis/redis-server.log'}, {'dir': '/var/lib/redis'},
                           {'syslog-enabled': 'no'}])
    lib_state, lib_errors = area.read_server_state(library)
    assert [q[:2] for q in library.pipe.queued] == [('LATENCY', 'LATEST')] + [('CONFIG', 'GET')] * 4
    out = ('1) 1) "command"\n   2) (integer) 1796499970\n   3) (integer) 250\n   4) (integer) 800\n'
           '1) "latency-monitor-threshold"\n2) "100"\n1) "logfile"\n2) "/var/log/redis/redis-server.log"\n'
           '1) "dir"\n2) "/var/lib/redis"\n1) "syslog-enabled"\n2) "no"\n')
    calls = []

    def run(argv, env, stdin, timeout):
        calls.append((argv, stdin))
        return 0, out, ''
    cli = redis_cli.Client({'login_password': 'x' * 8}, redis_cli='redis-cli', runner=run)
    cli_state, cli_errors = area.read_server_state(cli)
    assert len(calls) == 1 and len(calls[0][1].splitlines()) == 5  # one call, the commands on stdin
    assert cli_state == lib_state and cli_errors == lib_errors == {}
    assert lib_state['config']['logfile'] == '/var/log/redis/redis-server.log'


def test_read_server_state_keeps_a_refused_command_apart():
    refused = redis_cli.ReplyError("NOPERM this user has no permissions to run the 'config|get' command")
    state, errors = area.read_server_state(FakeLibrary([[], refused, refused, refused, refused]))
    assert state['latency'] == [] and state['config'] == {}
    assert set(errors) == {'CONFIG GET %s' % n for n in area.SERVER_CONFIG}
    assert errors['CONFIG GET logfile'].startswith('ResponseError: NOPERM')


# --- the diagnosis ------------------------------------------------------------------------------------------

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures', 'triage')
CTX = {'incident_id': 'INC-20261127-0412-7d10', 'inventory': 'inventory/lab', 'playbook_dir': 'playbooks',
       'backends': ['app-backend'], 'backend_services': ['backend'], 'backend_service': 'backend', 'tls_service': 'proxy'}


def load(name):
    with open(os.path.join(FIXTURES, name + '.json')) as handle:
        return json.load(handle)


def with_finding(findings, finding):
    finding = dict(finding, ts=[f for f in findings if f['host'] == finding['host']][0]['ts'])
    return [f for f in findings if not (f['host'] == finding['host'] and f['check'] == finding['check'])] + [finding]


def latency_finding(age=30, ms=400):
    return area.evaluate_latency('app-redis', 'redis', [ev('command', age, ms, ms)], 100, T, now=NOW)


def test_redis_slow_hypothesis_carries_the_latency_events():
    findings = with_finding(load('redis_slow'), latency_finding())
    hyps = [h for h in dx.diagnose(findings, CTX)['hypotheses'] if 'app-redis/redis.slowlog' in h['evidence']]
    assert hyps and 'app-redis/redis.latency' in hyps[0]['evidence'], hyps
    assert 'latency monitor' in hyps[0]['likely_cause']


def test_a_stall_without_slow_commands_is_its_own_slow_responses_hypothesis():
    findings = with_finding(load('healthy'), latency_finding())
    doc = dx.diagnose(findings, CTX)
    top = doc['hypotheses'][0]
    assert top['pattern'] == 'slow_responses' and top['evidence'] == ['app-redis/redis.latency'], top
    assert 'Redis stalls (latency monitor: "command" 400 ms in the window)' == top['likely_cause']
    assert '-e area=redis' in top['first_action'] and top['action'] is None
    assert top['confidence'] == 0.4, 'a stall the application does not feel is noise below any signal'


def test_a_stall_the_application_does_not_feel_ranks_below_an_expiring_certificate():
    # seen in a rehearsal of CI: the previous fault's heal deleted a full Redis (a 430 ms DEL 32 s earlier) and the
    # stall hypothesis tied the expiring certificate (0.6) and won; the certificate is the signal
    findings = with_finding(load('tls_renewed'), latency_finding(ms=430))
    top = dx.diagnose(findings, CTX)['hypotheses'][0]
    assert top['action'] == 'apply_cert', top
    # also with application errors of the same minutes (CI: the heal's errors were still in the window)
    errors = [f for f in load('tls_renewed') if f['check'] == 'app.errors'][0]
    slow_errors = dict(errors, status='warn', summary='latency 2.1 s p95; 20 ERROR lines in 15m')
    top = dx.diagnose(with_finding(findings, slow_errors), CTX)['hypotheses'][0]
    assert top['action'] == 'apply_cert', top


def test_save_failing_hypothesis_carries_the_log_lines():
    parsed = area.parse_redis_log('\n'.join(SAVE_FAILING), NOW - 900)
    log = area.evaluate_log('app-redis', 'redis', parsed, '/var/log/redis/redis-server.log', 900, now=NOW)
    doc = dx.diagnose(with_finding(load('redis_save_failing'), log), CTX)
    top = doc['hypotheses'][0]
    assert top['pattern'] == 'gradual_degradation' and 'app-redis/redis.log' in top['evidence'], top
    assert 'restart' not in top['first_action']


def test_healthy_stays_healthy_with_quiet_latency_and_log():
    quiet = area.evaluate_latency('app-redis', 'redis', [], 100, T, now=NOW)
    log = area.evaluate_log('app-redis', 'redis', area.parse_redis_log('\n'.join(STARTUP), NOW - 900), '/x', 900,
                            now=NOW)
    doc = dx.diagnose(with_finding(with_finding(load('healthy'), quiet), log), CTX)
    assert doc['healthy'] is True and doc['hypotheses'] == []
