"""redis.persistence and redis.replication (areas/redis.py): INFO persistence and INFO replication as findings,
both client paths (redis-py's parsed INFO and redis_cli.parse_info of the same text), and the snapshot directory
read on a failed save. Pure evaluation, no server."""
import pytest

from ansible_collections.sre.incident_response.plugins.module_utils import findings as contract
from ansible_collections.sre.incident_response.plugins.module_utils import redis_cli
from ansible_collections.sre.incident_response.plugins.module_utils.areas import redis as area

T = {'replication_lag_warn_s': 30}
NOW = 1700000000

PERSIST_OK = ('# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:12\r\nrdb_bgsave_in_progress:0\r\n'
              'rdb_last_save_time:%d\r\nrdb_last_bgsave_status:ok\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\n'
              'aof_last_bgrewrite_status:ok\r\naof_last_write_status:ok\r\n' % (NOW - 600))
PERSIST_FAILED = PERSIST_OK.replace('rdb_last_bgsave_status:ok', 'rdb_last_bgsave_status:err') + \
    '# Errorstats\r\nerrorstat_MISCONF:count=7\r\n'


def test_a_good_save_is_ok_and_names_its_age():
    f = area.evaluate_persistence('h', 'redis', redis_cli.parse_info(PERSIST_OK), now=NOW)
    assert f['status'] == 'ok', f
    assert f['evidence']['rdb_last_save_age_s'] == 600 and 'AOF off' in f['summary']
    contract.validate(f)


def test_a_failed_background_save_is_crit_with_misconf_and_the_changes_at_risk():
    f = area.evaluate_persistence('h', 'redis', redis_cli.parse_info(PERSIST_FAILED), now=NOW)
    assert f['status'] == 'crit', f
    assert 'background save (RDB) failed' in f['summary'] and '12 change(s)' in f['summary']
    assert 'MISCONF' in f['summary'] and f['evidence']['misconf_errors'] == 7
    contract.validate(f)


def test_aof_write_error_is_crit_rewrite_error_and_loading_warn():
    info = redis_cli.parse_info(PERSIST_OK.replace('aof_enabled:0', 'aof_enabled:1')
                                .replace('aof_last_write_status:ok', 'aof_last_write_status:err'))
    assert area.evaluate_persistence('h', 'redis', info, now=NOW)['status'] == 'crit'
    info = redis_cli.parse_info(PERSIST_OK.replace('aof_enabled:0', 'aof_enabled:1')
                                .replace('aof_last_bgrewrite_status:ok', 'aof_last_bgrewrite_status:err'))
    assert area.evaluate_persistence('h', 'redis', info, now=NOW)['status'] == 'warn'
    # with AOF off, its status fields are not rated
    info = redis_cli.parse_info(PERSIST_OK.replace('aof_last_write_status:ok', 'aof_last_write_status:err'))
    assert area.evaluate_persistence('h', 'redis', info, now=NOW)['status'] == 'ok'
    info = redis_cli.parse_info(PERSIST_OK.replace('loading:0', 'loading:1'))
    assert area.evaluate_persistence('h', 'redis', info, now=NOW)['status'] == 'warn'


def test_no_persistence_section_is_unknown():
    f = area.evaluate_persistence('h', 'redis', {'role': 'master'}, now=NOW)
    assert f['status'] == 'unknown'


class Library(object):
    def __init__(self, reply=None, error=None):
        self.reply, self.error = reply, error

    def config_get(self, pattern):
        if self.error:
            raise self.error
        return {pattern: self.reply}


def test_the_snapshot_directory_is_named_on_a_failed_save_or_why_not():
    f = area.evaluate_persistence('h', 'redis', redis_cli.parse_info(PERSIST_FAILED), now=NOW)
    area.describe_dir(Library('/var/lib/redis'), f)
    assert f['evidence']['dir'] == '/var/lib/redis' and f['summary'].endswith('snapshot directory /var/lib/redis')
    f = area.evaluate_persistence('h', 'redis', redis_cli.parse_info(PERSIST_FAILED), now=NOW)
    area.describe_dir(Library(error=Exception("ERR unknown command 'CONFIG'")), f)
    assert 'unknown command' in f['evidence']['dir_error'] and 'dir' not in f['evidence']
    contract.validate(f)


def test_cli_config_get_is_a_dict_as_redis_py_returns():
    client = redis_cli.Client({'login_host': '127.0.0.1', 'login_port': 6379}, redis_cli='/usr/bin/redis-cli',
                              runner=lambda argv, env, stdin, timeout: (0, '1) "dir"\n2) "/var/lib/redis"\n', ''))
    assert client.config_get('dir') == {'dir': '/var/lib/redis'}


MASTER = ('# Replication\r\nrole:master\r\nconnected_slaves:2\r\n'
          'slave0:ip=127.0.0.5,port=6380,state=online,offset=1000,lag=0\r\n'
          'slave1:ip=127.0.0.6,port=6380,state=online,offset=990,lag=%d\r\nmaster_repl_offset:1000\r\n')


@pytest.mark.parametrize('lag,status', [(1, 'ok'), (45, 'warn')])
def test_a_master_warns_on_a_lagging_replica(lag, status):
    f = area.evaluate_replication('h', 'redis', redis_cli.parse_info(MASTER % lag), T)
    assert f['status'] == status, f
    assert [r['address'] for r in f['evidence']['replicas']] == ['127.0.0.5:6380', '127.0.0.6:6380']
    contract.validate(f)


def test_replicas_as_redis_py_parses_them():
    info = {'role': 'master', 'connected_slaves': 1,
            'slave0': {'ip': '127.0.0.5', 'port': 6380, 'state': 'wait_bgsave', 'offset': 0, 'lag': 0}}
    f = area.evaluate_replication('h', 'redis', info, T)
    assert f['status'] == 'warn' and 'wait_bgsave' in f['summary']


def test_a_master_without_replicas_is_ok():
    f = area.evaluate_replication('h', 'redis', {'role': 'master', 'connected_slaves': 0}, T)
    assert (f['status'], f['summary']) == ('ok', 'master, no replicas')


REPLICA = ('# Replication\r\nrole:slave\r\nmaster_host:127.0.0.5\r\nmaster_port:6379\r\nmaster_link_status:%s\r\n'
           'master_last_io_seconds_ago:%d\r\nmaster_sync_in_progress:0\r\n')


@pytest.mark.parametrize('link,io,status', [('up', 1, 'ok'), ('up', 90, 'warn'), ('down', -1, 'crit')])
def test_a_replica_is_judged_by_its_link_to_the_master(link, io, status):
    text = REPLICA % (link, io) + ('master_link_down_since_seconds:120\r\n' if link == 'down' else '')
    f = area.evaluate_replication('h', 'redis', redis_cli.parse_info(text), T)
    assert f['status'] == status, f
    if link == 'down':
        assert 'link to the master is down since 2 min' in f['summary'], f['summary']
    contract.validate(f)
