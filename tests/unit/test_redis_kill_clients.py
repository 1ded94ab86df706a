"""kill_clients (issue 21): which Redis connections redis_clients ends (module_utils/redis_clients, pure), the ss -K
argv it builds (integers and parsed addresses only, no shell), and the handler's refusal without a selector."""
import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.sre.incident_response.plugins.module_utils import redis_clients as rc
from ansible_collections.sre.incident_response.plugins.plugin_utils.remediation_redis_clients import KillClients, as_list

HOLDER = {'pid': 2684, 'process': 'python3 /lab/fault_redis.py batch-report', 'comm': 'python3'}
BACKEND = {'pid': 812, 'process': 'python3 /app/server.py', 'comm': 'python3'}
OWNERS = {('127.0.0.1', 49502): HOLDER, ('127.0.0.1', 49508): HOLDER, ('127.0.0.1', 50001): BACKEND}
ROWS = [
    {'id': '7', 'addr': '127.0.0.1:49502', 'name': 'batch-report', 'idle': '600', 'flags': 'N', 'cmd': 'client|setname'},
    {'id': '8', 'addr': '127.0.0.1:49508', 'name': 'batch-report', 'idle': '3', 'flags': 'N', 'cmd': 'get'},
    {'id': '9', 'addr': '127.0.0.1:50001', 'name': 'batch-report', 'idle': '900', 'flags': 'N', 'cmd': 'get'},
    {'id': '10', 'addr': '127.0.0.1:50002', 'name': '', 'idle': '900', 'flags': 'N', 'cmd': 'get'},
    {'id': '11', 'addr': '127.0.0.1:50003', 'name': 'batch-report', 'idle': '900', 'flags': 'S', 'cmd': 'replconf'},
    {'id': '12', 'addr': '127.0.0.1:50004', 'name': 'batch-report', 'idle': '900', 'flags': 'N', 'cmd': 'client|list'},
]


def conns():
    return rc.from_client_list(ROWS, OWNERS, own_id=12)


def ids(selected):
    return sorted(c['id'] for c in selected)


def test_split_addr_parses_ipv4_ipv6_and_refuses_the_rest():
    assert rc.split_addr('127.0.0.1:49502') == ('127.0.0.1', 49502)
    assert rc.split_addr('[::1]:6000') == ('::1', 6000)
    assert rc.split_addr('::1:6000') == ('::1', 6000)
    assert rc.split_addr('[::ffff:127.0.0.1]:6000') == ('127.0.0.1', 6000)
    for bad in ('', 'x:1', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:99999', '/tmp/redis.sock:0', '$(id):1'):
        assert rc.split_addr(bad) is None, bad


def test_client_list_rows_get_their_process_and_never_the_own_connection():
    out = conns()
    assert ids(out) == [7, 8, 9, 10, 11]
    assert [c['pid'] for c in out] == [2684, 2684, 812, None, None]
    assert [c['kind'] for c in out][-1] == 'replica'


def test_names_select_idle_connections_only():
    chosen, kept = rc.select(conns(), names=['batch-report'], min_idle=30)
    assert ids(chosen) == [7, 9]
    reasons = dict((c['id'], c['why']) for c in kept)
    assert reasons[8].startswith('idle 3 s') and 'replica' in reasons[11] and 'not selected' in reasons[10]


def test_a_pid_never_reaches_another_process_even_with_the_same_name():
    chosen, kept = rc.select(conns(), names=['batch-report'], pids=[2684], min_idle=30)
    assert ids(chosen) == [7]  # id 9 is named batch-report too but held by the backend (pid 812)
    chosen, dummy = rc.select(conns(), pids=[2684], min_idle=0)
    assert ids(chosen) == [7, 8]


def test_process_names_match_the_program_an_argument_or_comm():
    assert ids(rc.select(conns(), processes=['batch-report'], min_idle=0)[0]) == [7, 8]
    assert ids(rc.select(conns(), processes=['fault_redis.py'], min_idle=0)[0]) == [7, 8]
    assert ids(rc.select(conns(), processes=['server.py'], min_idle=0)[0]) == [9]
    assert rc.select(conns(), processes=['batch'], min_idle=0)[0] == []  # whole words only
    assert rc.process_words('redis-cli -a *** ping', 'redis-cli') == {'redis-cli', 'ping'}


def test_never_every_client_without_a_selector():
    chosen, kept = rc.select(conns())
    assert chosen == [] and all(c['why'] == 'no selector: never every client' for c in kept)
    assert not rc.has_selector([], [], [])


def test_refused_server_selects_by_host_sockets_without_idle_times():
    server = [{'local': ('127.0.0.1', 16479), 'remote': ('127.0.0.1', p), 'state': '01', 'inode': i}
              for i, p in enumerate((49502, 49508, 50001, 50002))]
    out = rc.from_sockets(server, OWNERS)
    assert [c['id'] for c in out] == [None] * 4 and [c['idle'] for c in out] == [None] * 4
    chosen, kept = rc.select(out, pids=[2684], min_idle=30)  # idle unknown: not a reason to keep them
    assert sorted(c['port'] for c in chosen) == [49502, 49508]
    chosen, kept = rc.select(out, names=['batch-report'])
    assert chosen == [] and all('name unknown' in c['why'] for c in kept)


def test_ss_argv_is_a_list_of_integers_and_addresses():
    argvs = rc.ss_argv(16479, [('127.0.0.1', 49502), ('::1', 6000), ('127.0.0.1', 49502)], ss='/usr/bin/ss')
    assert argvs == [['/usr/bin/ss', '-K', '-t', '-n', 'state', 'established', '(', 'sport', '=', ':16479', ')', 'and',
                      '(', 'dst', '127.0.0.1:49502', 'or', 'dst', '[::1]:6000', ')']]
    many = rc.ss_argv(6379, [('127.0.0.1', p) for p in range(40000, 40130)])
    assert len(many) == 3 and sum(a.count('dst') for a in many) == 130
    assert rc.ss_argv(6379, []) == []
    for bad in ([('127.0.0.1; reboot', 1)], [('batch-report', 1)], [('127.0.0.1', 0)], [('127.0.0.1', '1 or 1')]):
        with pytest.raises(ValueError):
            rc.ss_argv(6379, bad)
    with pytest.raises(ValueError):
        rc.ss_argv(0, [('127.0.0.1', 1)])


def test_summarize_groups_by_holder():
    chosen, dummy = rc.select(conns(), pids=[2684], min_idle=0)
    assert rc.summarize(chosen) == ['2 connection(s) batch-report of python3 /lab/fault_redis.py batch-report '
                                    '(pid 2684), idle 3-600 s']


class FakeEngine(object):
    _host = 'app-redis'

    def settings(self, role):
        return {'redis_connect_timeout': 3.0, 'redis_socket_timeout': 5.0}

    def secret(self, name):
        return 'pw'


def test_the_handler_refuses_every_client_and_needs_the_redis_section():
    svc = {'name': 'redis', 'redis': {'host': '127.0.0.1', 'port': 16479, 'password_var': 'x'}}
    with pytest.raises(AnsibleActionFail, match='never ends every client'):
        KillClients(FakeEngine(), svc, {'names': [], 'processes': '', 'pids': []}).preflight()
    with pytest.raises(AnsibleActionFail, match='redis section'):
        KillClients(FakeEngine(), {'name': 'redis'}, {'pids': '2684'}).preflight()
    handler = KillClients(FakeEngine(), svc, {'pids': '2684,2690', 'min_idle': 30})
    handler.preflight()
    assert handler.selectors == {'names': [], 'processes': [], 'pids': [2684, 2690]}
    assert handler.login['login_port'] == 16479 and handler.login['login_password'] == 'pw'
    assert as_list('batch-report') == ['batch-report']
