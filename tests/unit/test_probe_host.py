"""The host area (plugins/module_utils/areas/host.py): kernel OOM kills, failed units, open files by process.

Pure parsing and evaluation, on the kernel's, systemd's and /proc's own text; every finding is held to the
findings contract (findings.validate)."""
import os
import time

import pytest

from ansible_collections.sre.incident_response.plugins.module_utils import findings as contract
from ansible_collections.sre.incident_response.plugins.module_utils.areas import host as area

CID = 'f' * 12 + '0123456789abcdef' * 3 + 'abcd'  # 64 hex
T = {'fds_warn_pct': 80, 'fds_crit_pct': 95, 'unit_restarts_warn': 3, 'top': 5, 'window_seconds': 900}

# Linux 6.1, a process of a Docker container past its memory limit (cgroup v1, cgroupfs driver)
MEMCG_LOG = [
    'python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0',
    'memory: usage 65536kB, limit 65536kB, failcnt 112',
    'oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=docker-%s.scope,mems_allowed=0,'
    'oom_memcg=/docker/%s,task_memcg=/docker/%s,task=python3,pid=4242,uid=0' % (CID, CID, CID),
    'Memory cgroup out of memory: Killed process 4242 (python3) total-vm:120000kB, anon-rss:64000kB, '
    'file-rss:4000kB, shmem-rss:0kB, UID:0 pgtables:200kB oom_score_adj:0',
]
GLOBAL_LOG = [
    'oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,'
    'task_memcg=/user.slice/user-1000.slice/session-3.scope,task=java,pid=777,uid=1000',
    'Out of memory: Killed process 777 (java) total-vm:9000000kB, anon-rss:8000000kB, file-rss:0kB',
]


def _valid(f):
    assert contract.validate(f) == [], contract.validate(f)
    return f


def test_kernel_oom_lines_give_the_process_its_cgroup_and_the_constraint():
    now = time.time()
    kills = area.parse_kernel_oom([(now, line) for line in MEMCG_LOG + GLOBAL_LOG])
    assert [(k['pid'], k['process'], k['constraint']) for k in kills] == [
        (4242, 'python3', 'CONSTRAINT_MEMCG'), (777, 'java', 'CONSTRAINT_NONE')]
    assert kills[0]['cgroup'] == '/docker/%s' % CID and kills[0]['anon_rss_kb'] == 64000
    assert kills[1]['cgroup'] == '/user.slice/user-1000.slice/session-3.scope'


def test_an_older_kernels_kill_line_without_oom_kill_context_still_counts():
    kills = area.parse_kernel_oom([(None, 'Killed process 31 (redis-server) total-vm:1kB, anon-rss:2kB')])
    assert kills == [{'ts': None, 'pid': 31, 'process': 'redis-server', 'cgroup': None, 'constraint': None,
                      'anon_rss_kb': 2}]


def test_dmesg_seconds_since_boot_become_epoch_seconds():
    lines = area.parse_dmesg('[    1.298522] booting\n[  151.373965] idle-reclaim (87): drop_caches: 1\nnot a line', 1000.0)
    assert lines == [(1001.299, 'booting'), (1151.374, 'idle-reclaim (87): drop_caches: 1')]


def test_journal_json_records_and_a_bytes_message():
    text = '{"__REALTIME_TIMESTAMP": "1700000000000000", "MESSAGE": "Killed process 1 (x)"}\nnot json\n' \
           '{"__REALTIME_TIMESTAMP": "1700000001000000", "MESSAGE": [75, 105]}'
    assert area.parse_journal_json(text) == [(1700000000.0, 'Killed process 1 (x)'), (1700000001.0, 'Ki')]


@pytest.mark.parametrize('name,content,expected', [
    ('memory.events', 'low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n', {'oom_kill': 2, 'oom': 2}),
    ('memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\noom_kill 3\n', {'oom_kill': 3, 'oom': 0}),
])
def test_cgroup_oom_counters_v2_and_v1(tmp_path, name, content, expected):
    (tmp_path / name).write_text(content)
    counters = area.read_oom_counters(str(tmp_path))
    assert {k: counters[k] for k in ('oom_kill', 'oom')} == expected


def test_no_counter_file_is_an_error_not_a_zero(tmp_path):
    with pytest.raises(OSError):
        area.read_oom_counters(str(tmp_path))


def _backend(count, started_ago, now):
    return [{'service': 'backend', 'container': 'app-backend', 'container_id': CID, 'path': '/sys/fs/cgroup/x',
             'oom_kill': count, 'oom': count, 'started_at': now - started_ago}]


def test_a_kill_of_a_services_process_in_the_window_is_crit_and_names_service_process_and_pid():
    now = time.time()
    kills = area.parse_kernel_oom([(now - 60, line) for line in MEMCG_LOG])
    f = _valid(area.evaluate_oom('app-backend', _backend(1, 86400, now), kills, {'dmesg': 'read'}, 900, now))
    assert f['status'] == 'crit' and f['service'] == 'backend'
    assert 'backend (app-backend): 1 OOM kill in the window (python3 pid 4242)' in f['summary']
    assert f['evidence']['kills'][0]['service'] == 'backend' and f['evidence']['kills_in_window'] == 1


def test_an_old_counter_with_a_readable_kernel_log_that_shows_nothing_is_ok():
    now = time.time()
    f = _valid(area.evaluate_oom('h', _backend(2, 86400, now), [], {'dmesg': 'read'}, 900, now))
    assert f['status'] == 'ok' and 'none in the window' in f['summary']


def test_a_counter_without_a_readable_kernel_log_is_warn_and_says_what_could_not_be_read():
    now = time.time()
    sources = {'journalctl -k': 'no journald on this host', 'dmesg': 'dmesg: read kernel buffer failed: Operation not permitted'}
    f = _valid(area.evaluate_oom('h', _backend(2, 86400, now), [], sources, 900, now))
    assert f['status'] == 'warn' and f['service'] == 'backend'
    assert 'when unknown' in f['summary'] and 'Operation not permitted' in f['summary']


def test_a_counter_of_a_container_started_inside_the_window_is_crit_without_the_kernel_log():
    now = time.time()
    f = _valid(area.evaluate_oom('h', _backend(1, 120, now), [], {'dmesg': 'Operation not permitted'}, 900, now))
    assert f['status'] == 'crit' and 'started 120s ago' in f['summary']


def test_a_host_wide_out_of_memory_kill_is_warn_and_another_containers_kill_is_only_evidence():
    now = time.time()
    other = [line.replace(CID, 'e' * 64) for line in MEMCG_LOG]
    kills = area.parse_kernel_oom([(now, line) for line in other + GLOBAL_LOG])
    f = _valid(area.evaluate_oom('h', _backend(0, 86400, now), kills, {'dmesg': 'read'}, 900, now))
    assert f['status'] == 'warn' and f['service'] is None
    assert 'host out of memory: 1 kill in the window (java pid 777)' in f['summary']
    assert f['evidence']['kills_in_window'] == 2


def test_nothing_is_ok():
    f = _valid(area.evaluate_oom('h', _backend(0, 86400, time.time()), [], {'dmesg': 'read'}, 900))
    assert f['status'] == 'ok' and f['summary'] == 'no OOM kill in the window (1 service cgroup read)'


def test_an_unreadable_cgroup_is_said():
    f = _valid(area.evaluate_oom('h', [{'service': 'backend', 'container': 'c', 'error': 'no such container'}], [],
                                 {'dmesg': 'read'}, 900))
    assert f['status'] == 'ok' and 'counters not read: backend (no such container)' in f['summary']


FAILED = ('\u25cf app-worker.service loaded failed failed Worker of the app\n'
          'logrotate.service  loaded failed failed Rotate log files\n')


def test_failed_units_are_parsed_with_or_without_the_bullet():
    assert [u['unit'] for u in area.parse_failed_units(FAILED)] == ['app-worker.service', 'logrotate.service']
    assert area.parse_failed_units(FAILED)[1]['description'] == 'Rotate log files'


def test_a_services_failed_unit_is_crit_and_other_failed_units_are_named():
    services = [{'service': 'worker', 'unit': 'app-worker.service', 'ActiveState': 'failed', 'SubState': 'failed',
                 'Result': 'exit-code', 'NRestarts': '5', 'started_in_window': True}]
    f = _valid(area.evaluate_units('h', area.parse_failed_units(FAILED), services, T))
    assert f['status'] == 'crit' and f['service'] == 'worker'
    assert 'worker (app-worker.service) failed/failed after 5 restarts (result exit-code)' in f['summary']
    assert '1 other failed unit: logrotate.service' in f['summary']


def test_a_unit_restarting_in_the_window_is_warn_and_an_old_restart_count_is_ok():
    item = {'service': 'db', 'unit': 'postgresql@15-main.service', 'ActiveState': 'active', 'SubState': 'running',
            'Result': 'success', 'NRestarts': '4', 'started_in_window': True}
    assert _valid(area.evaluate_units('h', [], [item], T))['status'] == 'warn'
    assert _valid(area.evaluate_units('h', [], [dict(item, started_in_window=False)], T))['status'] == 'ok'
    assert _valid(area.evaluate_units('h', [], [dict(item, SubState='auto-restart', ActiveState='activating')], T))['status'] == 'crit'


EXITS_JSON = '\n'.join([
    '{"__REALTIME_TIMESTAMP": "1700000000000000", "UNIT": "app-backend.service", "EXIT_CODE": "exited", "EXIT_STATUS": "3",'
    ' "MESSAGE": "app-backend.service: Main process exited, code=exited, status=3/NOTIMPLEMENTED"}',
    # an older systemd: the message text only
    '{"__REALTIME_TIMESTAMP": "1700000005000000", "MESSAGE": "app-backend.service: Main process exited, code=killed, status=9/KILL"}',
    '{"__REALTIME_TIMESTAMP": "1700000006000000", "MESSAGE": "something else"}',
    'not json'])


def test_main_process_exits_are_read_from_the_fields_or_the_message():
    assert area.parse_exit_records(EXITS_JSON) == [{'ts': 1700000000.0, 'code': 'exited', 'status': '3'},
                                                   {'ts': 1700000005.0, 'code': 'killed', 'status': '9'}]
    assert area.exit_of({'ExecMainCode': '1', 'ExecMainStatus': '3'}) == {'ts': None, 'code': 'exited', 'status': '3'}
    assert area.exit_of({'ExecMainCode': '0', 'ExecMainStatus': '0'}) is None  # a running unit forgets its last exit
    assert [area.describe_exit(x) for x in ({'code': 'exited', 'status': '3'}, {'code': 'killed', 'status': '9'},
                                            {'code': 'dumped', 'status': '11'}, None, {})] == [
        'status 3', 'killed by signal 9', 'dumped core by signal 11', '', '']


RUNNING = {'service': 'backend', 'unit': 'app-backend.service', 'ActiveState': 'active', 'SubState': 'running',
           'Result': 'success'}
KILLED = {'ts': 1700000005.0, 'code': 'killed', 'status': '9'}
EXITED = {'ts': None, 'code': 'exited', 'status': '1'}
UNITS_TABLE = [
    # (what, item fields over RUNNING, status, text in the summary or None)
    ('never restarted', {'NRestarts': '0', 'started_in_window': False}, 'ok', 'no failed unit; 1 service unit active'),
    ('restarted twice, under restarts_warn', {'NRestarts': '2', 'started_in_window': True, 'exits_in_window': 2,
                                              'last_exit': KILLED}, 'ok', None),
    ('restarting (Restart=always), N restarts in the window, last exit from the journal',
     {'NRestarts': '4', 'started_in_window': True, 'exits_in_window': 4, 'last_exit': KILLED}, 'warn',
     'backend (app-backend.service) restarted 4 times (NRestarts), last inside the window; 4 unclean exits in the window, '
     'last exit killed by signal 9'),
    ('restarted, journal not read', {'NRestarts': '3', 'started_in_window': True, 'exits_in_window': None}, 'warn',
     'backend (app-backend.service) restarted 3 times (NRestarts), last inside the window'),
    ('restarts before the window only', {'NRestarts': '7', 'started_in_window': False, 'exits_in_window': 0}, 'ok', None),
    ('between two restarts (auto-restart)', {'ActiveState': 'activating', 'SubState': 'auto-restart', 'Result': 'exit-code',
                                             'NRestarts': '5', 'started_in_window': True, 'last_exit': EXITED}, 'crit',
     'backend (app-backend.service) activating/auto-restart after 5 restarts (result exit-code), last exit status 1'),
    ('failed, out of restarts', {'ActiveState': 'failed', 'SubState': 'failed', 'Result': 'signal', 'NRestarts': '1',
                                 'last_exit': KILLED}, 'crit', 'failed/failed after 1 restart (result signal), last exit killed by signal 9'),
]


@pytest.mark.parametrize('what,fields,status,text', UNITS_TABLE, ids=[row[0] for row in UNITS_TABLE])
def test_restarting_units_table(what, fields, status, text):
    f = _valid(area.evaluate_units('web-1', [], [dict(RUNNING, **fields)], T))
    assert f['status'] == status, (what, f['summary'])
    if text:
        assert text in f['summary'], f['summary']
    assert f['service'] == ('backend' if status != 'ok' else None)
    assert f['evidence']['units'][0]['NRestarts'] == fields['NRestarts']  # the count itself is evidence


def test_a_containers_journald_without_dev_kmsg_is_not_a_kernel_log_read(tmp_path):
    """journalctl -k answers (empty) in a container, whose journald cannot read the kernel's messages: that is not
    "no kill in the window", so dmesg is tried and the counter's kill stays 'when unknown' (warn), not ok."""
    (tmp_path / 'journal').mkdir()
    module = FakeModule({}, {'journalctl': (0, '', ''), 'dmesg': (1, '', 'dmesg: read kernel buffer failed: Operation not permitted')})
    lines, sources = area.read_kernel_log(module, 900, 2, kmsg=str(tmp_path / 'no-kmsg'), journal=str(tmp_path / 'journal'))
    assert lines == [] and 'journald holds no kernel messages' in sources['journalctl -k']
    assert not [argv for argv in module.ran if 'journalctl' in ' '.join(argv)], module.ran
    now = time.time()
    cgroups = [{'service': 'backend', 'unit': 'app-backend.service', 'oom_kill': 1, 'oom': 0, 'started_at': now - 3600}]
    f = _valid(area.evaluate_oom('web-1', cgroups, [], sources, 900, now))
    assert f['status'] == 'warn' and 'when unknown (kernel log not readable)' in f['summary'], f['summary']


def test_no_systemd_is_ok_with_a_note():
    f = _valid(area.evaluate_units('h', [], [], T, note='not a systemd host'))
    assert f['status'] == 'ok' and f['summary'] == 'not a systemd host'


TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0 20 4 30 10 -1
   2: 0100007F:1F90 0100007F:C351 08 00000000:00000000 00:00000000 00000000     0        0 1003 1 0 20 4 30 10 -1
"""


def test_proc_net_tcp_gives_each_socket_inode_its_state():
    assert area.parse_proc_net_tcp(TCP) == {'1001': 'listen', '1002': 'established', '1003': 'close_wait'}


def test_open_files_near_the_limit_rate_and_name_the_process_and_its_service():
    rows = [
        {'pid': 10, 'name': 'python3', 'fds': 1000, 'fd_limit': 1024, 'sockets': ['1001', '1002', '1003'],
         'netns': 'net:[1]', 'cgroup': '0::/docker/%s\n' % CID},
        {'pid': 11, 'name': 'sshd', 'fds': 12, 'fd_limit': 1024, 'sockets': [], 'netns': 'net:[1]', 'cgroup': '0::/\n'},
    ]
    tables = {'net:[1]': area.parse_proc_net_tcp(TCP)}
    f = _valid(area.evaluate_fds('h', rows, tables, [('backend', CID)], T))
    assert f['status'] == 'crit' and f['service'] == 'backend'
    assert f['summary'].startswith('python3 pid 10 (backend): 1000 of 1024 open files (98%)')
    top = f['evidence']['top_tcp'][0]
    assert top['tcp'] == {'listen': 1, 'established': 1, 'close_wait': 1} and top['tcp_total'] == 3
    rows[0]['fds'] = 100
    assert _valid(area.evaluate_fds('h', rows, tables, [], T))['status'] == 'ok'


def test_a_sandbox_lowered_fd_limit_is_not_exhaustion():
    # OpenSSH's pre-auth child sets RLIMIT_NOFILE to 1 after opening what it needs: 7 of 1 is by design
    rows = [{'pid': 12, 'name': 'sshd', 'fds': 7, 'fd_limit': 1, 'sockets': [], 'netns': 'net:[1]', 'cgroup': '0::/\n'},
            {'pid': 13, 'name': 'python3', 'fds': 10, 'fd_limit': 1024, 'sockets': [], 'netns': 'net:[1]', 'cgroup': '0::/\n'}]
    f = _valid(area.evaluate_fds('h', rows, {}, [], T))
    assert f['status'] == 'ok', f
    rows[1]['fds'] = 1000
    assert _valid(area.evaluate_fds('h', rows, {}, [], T))['status'] == 'crit'


def test_scanning_this_machines_proc_reads_this_process():
    rows, unreadable, truncated = area.scan_processes()
    mine = [r for r in rows if r['pid'] == os.getpid()]
    assert mine and mine[0]['fds'] >= 3 and mine[0]['fd_limit']
    assert not truncated


class FakeModule(object):
    check_mode = False

    def __init__(self, params, commands):
        self.params = params
        self.commands = commands
        self.ran = []

    def get_bin_path(self, name):
        return '/usr/bin/' + name if name in ('timeout', 'dmesg', 'journalctl', 'systemctl') else None

    def run_command(self, argv):
        self.ran.append(argv)
        name = os.path.basename(argv[2] if argv[0].endswith('timeout') else argv[0])
        return self.commands.get(name, (1, '', 'not here'))

    def fail_json(self, **kwargs):
        raise AssertionError(kwargs)


def test_run_under_timeout_and_a_kernel_log_that_cannot_be_read_is_a_finding_not_a_failure():
    params = {'report_host': 'h', 'services': [], 'checks': ['oom', 'units', 'fds'], 'window': '15m', 'timeout': 2,
              'thresholds': {}, 'docker_host': None}
    module = FakeModule(params, {'dmesg': (1, '', 'dmesg: read kernel buffer failed: Operation not permitted'),
                                 'journalctl': (1, '', 'No journal files were found.')})
    out = area.run(module)
    assert [f['check'] for f in out['findings']] == ['host.oom', 'host.units', 'host.fds']
    for f in out['findings']:
        _valid(f)
    assert all(argv[:2] == ['/usr/bin/timeout', '2s'] for argv in module.ran), module.ran
    oom = out['findings'][0]
    assert 'Operation not permitted' in oom['evidence']['sources']['dmesg']


def test_a_kill_before_the_containers_last_start_is_history_not_a_current_symptom():
    now = time.time()
    kills = area.parse_kernel_oom([(now - 300, line) for line in MEMCG_LOG])
    f = _valid(area.evaluate_oom('h', _backend(0, 60, now), kills, {'dmesg': 'read'}, 900, now))
    assert f['status'] == 'ok' and f['evidence']['kills'][0]['before_start'] is True
    assert '1 OOM kill in the window before the last start of backend (restarted since)' in f['summary']
