"""Who holds Redis' client slots: CLIENT LIST grouped (areas/redis.group_clients, both client paths) and, when the
server refuses new connections, the host's own sockets (module_utils/host_sockets): pure parsing, no server."""
import os

import pytest

from ansible_collections.sre.incident_response.plugins.module_utils import host_sockets as hs
from ansible_collections.sre.incident_response.plugins.module_utils import redis_cli
from ansible_collections.sre.incident_response.plugins.module_utils.areas import redis as area

HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n'


def line(n, local, remote, state, inode):
    return '%4d: %s %s %s 00000000:00000000 00:00000000 00000000     0        0 %d 1 0000000000000000 20 4 0 10 -1\n' % (
        n, local, remote, state, inode)


# 127.0.0.1 is 0100007F in /proc/net/tcp; port 16479 is 405F, 36336 is 8DF0, 36350 is 8DFE
TCP = HEADER + line(0, '0100007F:405F', '00000000:0000', '0A', 100) \
    + line(1, '0100007F:405F', '0100007F:8DF0', '01', 101) + line(2, '0100007F:8DF0', '0100007F:405F', '01', 201) \
    + line(3, '0100007F:405F', '0100007F:8DFE', '01', 102) + line(4, '0100007F:8DFE', '0100007F:405F', '01', 202) \
    + line(5, '0100007F:405F', '0700007F:C350', '01', 103)   # a client on 127.0.0.7:50000 that no process here owns (as from another host)


def test_parse_proc_net_tcp_ipv4_and_ipv6():
    rows = hs.parse_proc_net_tcp(TCP)
    assert rows[0] == {'local': ('127.0.0.1', 16479), 'remote': ('0.0.0.0', 0), 'state': '0A', 'inode': 100}
    assert rows[5]['remote'] == ('127.0.0.7', 50000)
    six = HEADER + line(0, '0000000000000000FFFF00000100007F:405F', '0000000000000000FFFF00000100007F:8DF0', '01', 7) \
        + line(1, '00000000000000000000000001000000:405F', '00000000000000000000000000000000:0000', '0A', 8)
    rows = hs.parse_proc_net_tcp(six)
    assert rows[0]['local'] == ('127.0.0.1', 16479) and rows[0]['remote'] == ('127.0.0.1', 36336)
    assert rows[1]['local'] == ('0:0:0:0:0:0:0:1', 16479)


@pytest.mark.parametrize('text', ['', 'garbage', HEADER, '\0' * 1000, '   0: zz:zz yy:yy 01 a b c d e f\n',
                                  '   0: 0100007F:405F 0100007F 01 0 0 0 0 0 notanumber\n' * 50,
                                  '   0: 0100007F:405F 0100007F:XYZ 01 0 0 0 0 0 5\n', 'x\n' * 300000])
def test_parse_ends_on_any_input(text):
    assert isinstance(hs.parse_proc_net_tcp(text), list)


def test_connections_to_pairs_server_and_client_ends():
    listening, server, client = hs.connections_to(hs.parse_proc_net_tcp(TCP), 16479)
    assert listening is True and len(server) == 3
    assert sorted(s['inode'] for s in client) == [201, 202]


def fake_proc(tmp_path, table, owners):
    """A /proc with net/tcp and processes whose fds link to socket inodes."""
    (tmp_path / 'net').mkdir()
    (tmp_path / 'net' / 'tcp').write_text(table)
    for pid, (argv, inodes) in owners.items():
        fd = tmp_path / str(pid) / 'fd'
        fd.mkdir(parents=True)
        (tmp_path / str(pid) / 'cmdline').write_bytes(b'\0'.join(a.encode() for a in argv) + b'\0')
        for number, inode in enumerate(inodes):
            os.symlink('socket:[%d]' % inode, str(fd / str(number + 3)))
        os.symlink('/dev/null', str(fd / '0'))
    return str(tmp_path)


def test_holders_of_port_names_the_process_and_the_remote_peers(tmp_path):
    proc = fake_proc(tmp_path, TCP, {4242: (['python3', '/lab/fault_redis.py', 'batch-report'], [201, 202]),
                                     17: (['redis-server', '*:16479'], [100, 101, 102, 103])})
    out = hs.holders_of_port(16479, proc=proc)
    assert out['connections'] == 3 and out['listening'] is True
    assert out['holders'] == [{'process': 'python3 /lab/fault_redis.py batch-report', 'pid': 4242, 'connections': 2,
                               'peers': ['127.0.0.1:36336', '127.0.0.1:36350']}]
    assert out['remote_peers'] == {'127.0.0.7': 1} and 'other hosts' in out['note']


def test_holders_without_a_readable_process_say_so(tmp_path):
    proc = fake_proc(tmp_path, TCP, {})
    out = hs.holders_of_port(16479, proc=proc)
    assert out['holders'][0]['pid'] is None and out['holders'][0]['connections'] == 2
    assert 'no process this user can read' in out['note']


def test_a_port_served_elsewhere_is_said_honestly(tmp_path):
    out = hs.holders_of_port(6379, proc=fake_proc(tmp_path, TCP, {}))
    assert out['holders'] == [] and 'cannot be seen from here' in out['note']
    assert 'cannot be seen' in hs.holders_of_port(6379, proc=str(tmp_path / 'missing'))['note']


def test_cmdline_never_shows_secrets():
    raw = b'\0'.join([b'/usr/bin/redis-cli', b'-a', b'S3cret-pass', b'--pass', b'x', b'PASSWORD=y', b'monitor'])
    text = hs.describe_cmdline(raw)
    assert text == 'redis-cli -a *** --pass *** monitor'
    assert 'S3cret' not in text and 'PASSWORD' not in text


CLIENT_LIST = '\n'.join([
    'id=3 addr=127.0.0.1:40000 laddr=127.0.0.1:6379 fd=8 name=batch-report age=400 idle=390 flags=N db=0 cmd=client|setname',
    'id=4 addr=127.0.0.1:40002 laddr=127.0.0.1:6379 fd=9 name=batch-report age=400 idle=380 flags=N db=0 cmd=client|setname',
    'id=5 addr=127.0.0.5:5000 laddr=127.0.0.1:6379 fd=10 name= age=4 idle=0 flags=N db=0 cmd=get',
    'id=6 addr=127.0.0.9:6000 laddr=127.0.0.1:6379 fd=11 name= age=4000 idle=0 flags=S db=0 cmd=replconf',
    'id=7 addr=127.0.0.1:40010 laddr=127.0.0.1:6379 fd=12 name= age=0 idle=0 flags=N db=0 cmd=client|list',
    'not a client line', ''])


def test_client_list_is_grouped_by_name_host_and_command_without_the_probe():
    rows = redis_cli.parse_client_list(CLIENT_LIST)
    assert len(rows) == 5 and rows[0]['name'] == 'batch-report' and rows[0]['idle'] == '390'
    groups = area.group_clients(rows, own_id=7)
    assert groups[0] == {'name': 'batch-report', 'host': '127.0.0.1', 'cmd': 'client|setname', 'kind': 'normal',
                         'count': 2, 'idle_min_s': 380, 'idle_max_s': 390, 'ids': [3, 4]}
    assert [(g['host'], g['kind']) for g in groups[1:]] == [('127.0.0.5', 'normal'), ('127.0.0.9', 'replica')]
    assert 7 not in [i for g in groups for i in g['ids']]


def test_both_paths_give_the_same_evidence_keys():
    info = {'connected_clients': 5, 'blocked_clients': 0, 'rejected_connections': 0, 'maxclients': 10000}
    t = {'clients_warn_pct': 80, 'clients_crit_pct': 95, 'blocked_clients_warn': 10, 'rejected_connections_warn': 1}
    library = [dict((k, str(v)) for k, v in r.items()) for r in redis_cli.parse_client_list(CLIENT_LIST)]
    by_cli = area.evaluate_clients('h', 'redis', info, t, area.group_clients(redis_cli.parse_client_list(CLIENT_LIST), 7))
    by_lib = area.evaluate_clients('h', 'redis', info, t, area.group_clients(library, 7))
    assert by_cli['evidence'] == by_lib['evidence'] and by_cli['summary'] == by_lib['summary']
    assert 'batch-report from 127.0.0.1 x2' in by_cli['summary']


def test_max_clients_reached_is_crit_and_never_unreachable():
    for error in ('ConnectionError: max number of clients reached',
                  redis_common_error('AUTH failed: ERR max number of clients reached Error: Connection reset by peer')):
        conn = area.evaluate_connectivity('h', 'redis', {}, error=error)
        assert conn['status'] == 'crit' and conn['evidence']['max_clients_reached'] is True
        assert 'unreachable' not in conn['summary'] and 'refuses new connections' in conn['summary']
    holders = {'port': 6379, 'connections': 24, 'holders': [
        {'process': 'python3 job.py batch-report', 'pid': 9, 'connections': 24, 'peers': ['127.0.0.1:1']}],
        'remote_peers': {}}
    clients = area.evaluate_clients_refused('h', 'redis', 'ConnectionError: max number of clients reached', holders)
    assert clients['status'] == 'crit' and 'batch-report (pid 9) x24' in clients['summary']
    hidden = area.evaluate_clients_refused('h', 'redis', 'x', {'port': 6379, 'holders': [], 'note': 'runs elsewhere'})
    assert 'holders not visible from this host (runs elsewhere)' in hidden['summary']


def redis_common_error(text):
    """What the redis-cli path makes of redis-cli's own words (redis_cli.connection_error)."""
    from ansible_collections.sre.incident_response.plugins.module_utils import redis_common
    return redis_common.describe_error(redis_cli.connection_error(text, ''))
