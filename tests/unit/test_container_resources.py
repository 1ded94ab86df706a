"""Unit tests: container.resources without waiting for an engine sample (cgroup v1/v2 trees, one-shot stats)."""
import os

import pytest

from ansible_collections.sre.incident_response.plugins.module_utils.areas import network as area_network
from ansible_collections.sre.incident_response.plugins.module_utils.docker_api import DockerError

CID = 'dfee946660e50c1eab54a7d76aafebec5bcfa15b466a83a4d744da647fd3553d'
T = {'memory_warn_pct': 80, 'memory_crit_pct': 90, 'cpu_warn_pct': 90}
MIB = 2 ** 20


def write(path, text):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(str(path), 'w') as handle:
        handle.write(text)


def v1_tree(tmp_path, cgroup_path='/docker/' + CID, usage=230 * MIB, limit=256 * MIB):
    """A cgroup v1 host (hybrid: cpu,cpuacct and a unified mount) and /proc/<pid> of the container's process."""
    root, proc = tmp_path / 'cgroup', tmp_path / 'proc'
    rel = cgroup_path.lstrip('/')
    write(root / 'memory' / rel / 'memory.usage_in_bytes', '%d\n' % usage)
    write(root / 'memory' / rel / 'memory.limit_in_bytes', '%d\n' % limit)
    write(root / 'memory' / rel / 'memory.stat', 'cache 1000\nrss 2000\ninactive_file %d\ntotal_inactive_file %d\n' % (10 * MIB, 10 * MIB))
    write(root / 'pids' / rel / 'pids.current', '6\n')
    write(root / 'cpu,cpuacct' / rel / 'cpuacct.usage', '123456789\n')
    os.symlink('cpu,cpuacct', str(root / 'cpuacct'))
    write(root / 'unified' / rel / 'cpu.stat', 'usage_usec 99\n')
    write(proc / '4242' / 'cgroup', '12:pids:%s\n4:memory:%s\n2:cpu,cpuacct:%s\n1:name=systemd:%s\n0::%s\n'
          % ((cgroup_path,) * 5))
    write(proc / '4242' / 'net' / 'dev', 'Inter-|   Receive\n face |bytes    packets\n'
          '    lo: 5000 10 0 0 0 0 0 0 5000 10 0 0 0 0 0 0\n'
          '  eth0: 1024 8 0 0 0 0 0 0 2048 9 0 0 0 0 0 0\n')
    return str(root), str(proc)


def v2_tree(tmp_path, cgroup_path='/system.slice/docker-%s.scope' % CID, current=100 * MIB, maximum='max'):
    root, proc = tmp_path / 'cgroup', tmp_path / 'proc'
    rel = cgroup_path.lstrip('/')
    write(root / 'cgroup.controllers', 'cpu memory pids\n')
    write(root / rel / 'memory.current', '%d\n' % current)
    write(root / rel / 'memory.max', '%s\n' % maximum)
    write(root / rel / 'memory.stat', 'anon 1000\nfile 2000\ninactive_file %d\n' % (4 * MIB))
    write(root / rel / 'cpu.stat', 'usage_usec 2000\nuser_usec 1500\n')
    write(root / rel / 'pids.current', '3\n')
    write(proc / '77' / 'cgroup', '0::%s\n' % cgroup_path)
    return str(root), str(proc)


# --- finding the cgroup ----------------------------------------------------------------------

def test_v1_dirs_from_proc_pid_cgroup(tmp_path):
    root, proc = v1_tree(tmp_path)
    dirs = area_network.cgroup_dirs(CID, 4242, root, proc)
    assert dirs == {'version': 1, 'memory': os.path.join(root, 'memory', 'docker', CID),
                    'pids': os.path.join(root, 'pids', 'docker', CID),
                    'cpu': os.path.join(root, 'cpu,cpuacct', 'docker', CID)}
    assert area_network.cgroup_cpu_file(CID, 4242, root, proc).endswith('cpuacct.usage')


def test_v1_dirs_of_any_driver_come_from_proc_and_the_known_places_are_a_fallback(tmp_path):
    # a rootless / systemd-driver path that no fixed pattern knows is found through /proc/<pid>/cgroup only
    odd = '/user.slice/user-1000.slice/user@1000.service/docker-%s.scope' % CID
    root, proc = v1_tree(tmp_path, cgroup_path=odd)
    assert area_network.cgroup_dirs(CID, 4242, root, proc)['memory'].endswith(odd.lstrip('/'))
    assert 'memory' not in area_network.cgroup_dirs(CID, None, root, proc)
    # the cgroupfs driver's place is found without a PID
    root2, proc2 = v1_tree(tmp_path / 'b')
    assert area_network.cgroup_dirs(CID, None, root2, proc2)['memory'] == os.path.join(root2, 'memory', 'docker', CID)


def test_a_pid_of_another_namespace_is_not_taken_for_the_container(tmp_path):
    root, proc = v1_tree(tmp_path, cgroup_path='/user.slice/other')
    assert 'memory' not in area_network.cgroup_dirs(CID, 4242, root, proc)
    assert area_network.cgroup_dirs('', 4242, root, proc) == {}


def test_v2_dirs(tmp_path):
    root, proc = v2_tree(tmp_path)
    dirs = area_network.cgroup_dirs(CID, 77, root, proc)
    scope = os.path.join(root, 'system.slice', 'docker-%s.scope' % CID)
    assert dirs == {'version': 2, 'memory': scope, 'cpu': scope, 'pids': scope}
    assert area_network.cgroup_dirs(CID, None, root, proc) == dirs, 'the systemd driver place is known without a PID'
    assert area_network.cgroup_cpu_file(CID, 77, root, proc).endswith('cpu.stat')


# --- reading it --------------------------------------------------------------------------------

def test_v1_stats_match_what_the_engine_reports(tmp_path):
    root, proc = v1_tree(tmp_path)
    stats = area_network.cgroup_stats(area_network.cgroup_dirs(CID, 4242, root, proc), 4242, 'bridge', proc)
    assert area_network.memory_usage(stats) == (220 * MIB, 256 * MIB)
    assert stats['pids_stats'] == {'current': 6}
    assert stats['networks'] == {'eth0': {'rx_bytes': 1024, 'tx_bytes': 2048}}, 'loopback is not container traffic'
    host = area_network.cgroup_stats(area_network.cgroup_dirs(CID, 4242, root, proc), 4242, 'host', proc)
    assert host['networks'] is None, 'on the host network the counters are the host\'s'


def test_v2_stats_without_a_limit(tmp_path):
    root, proc = v2_tree(tmp_path)
    stats = area_network.cgroup_stats(area_network.cgroup_dirs(CID, 77, root, proc), 77, 'host', proc)
    assert area_network.memory_usage(stats) == (96 * MIB, None)
    assert stats['pids_stats'] == {'current': 3}


def test_no_memory_dir_means_not_local():
    assert area_network.cgroup_stats({'version': 1}) is None


def test_one_shot_stats_give_no_cpu_rather_than_a_wrong_one():
    one_shot = {'cpu_stats': {'cpu_usage': {'total_usage': 5 * 10 ** 9}, 'system_cpu_usage': 10 ** 12, 'online_cpus': 2},
                'precpu_stats': {'cpu_usage': {'total_usage': 0}, 'throttling_data': {}},
                'memory_stats': {'usage': 100 * MIB, 'limit': 256 * MIB, 'stats': {}}}
    assert area_network.cpu_percent(one_shot) == (None, None)
    zeroed = dict(one_shot, precpu_stats={'cpu_usage': {'total_usage': 0}, 'system_cpu_usage': 0})
    assert area_network.cpu_percent(zeroed) == (None, None)
    status, text, ev = area_network.evaluate_container_resources('app-backend', one_shot, 256 * MIB, T, cpu_note='why')
    assert status == 'ok' and ev['cpu_pct'] is None and ev['cpu_pct_of_capacity'] is None and ev['cpu_note'] == 'why'
    assert text.startswith('app-backend CPU not sampled, memory 100.0 MiB of 256.0 MiB limit (39.1%)')
    assert ev['memory_pct'] == 39.1 and ev['source'] == 'engine stats'


# --- the sample of one container and the finding of a host -----------------------------------

class FakeClient:
    def __init__(self, inspects, stats=None):
        self.inspects, self.stats_calls, self._stats = inspects, [], stats or {}

    def inspect(self, name):
        info = self.inspects.get(name)
        if info is None:
            raise DockerError('No such container: %s' % name, status=404)
        if isinstance(info, Exception):
            raise info
        return info

    def stats(self, name, one_shot=False):
        self.stats_calls.append((name, one_shot))
        return dict(self._stats)


def inspect(running=True, pid=4242, memory=256 * MIB, mode='host'):
    return {'Id': CID, 'State': {'Running': running, 'Pid': pid}, 'HostConfig': {'Memory': memory, 'NetworkMode': mode}}


def test_sample_reads_the_cgroup_and_never_asks_the_engine(tmp_path):
    root, proc = v1_tree(tmp_path)
    client = FakeClient({'app-backend': inspect()})
    stats, info = area_network.sample_container(client, 'app-backend', 0.01, root, proc)
    assert client.stats_calls == [] and stats['source'] == 'cgroup'
    assert stats['cpu_pct'] == 0.0 and stats['cpu_note'] is None, 'the fake counter does not move: 0%'
    stats, info = area_network.sample_container(client, 'app-backend', 0, root, proc)
    assert stats['cpu_pct'] is None and stats['cpu_note'] == area_network.CPU_NOT_SAMPLED


def test_sample_falls_back_to_one_one_shot_engine_sample(tmp_path):
    client = FakeClient({'app-backend': inspect()}, stats={'memory_stats': {'usage': 10 * MIB, 'limit': 256 * MIB}})
    stats, info = area_network.sample_container(client, 'app-backend', 0.3, str(tmp_path / 'none'), str(tmp_path / 'none'))
    assert client.stats_calls == [('app-backend', True)]
    assert stats['cpu_pct'] is None and stats['cpu_note'] == area_network.CPU_NOT_LOCAL
    assert area_network.sample_container(FakeClient({'x': inspect(running=False)}), 'x', 0.3)[0] is None


def test_findings_of_a_host(tmp_path, monkeypatch):
    root, proc = v1_tree(tmp_path, usage=250 * MIB)
    monkeypatch.setattr(area_network, 'sample_container',
                        lambda c, name, secs, root=root, proc=proc, _real=area_network.sample_container: _real(c, name, secs, root, proc))
    client = FakeClient({'app-backend': inspect(), 'app-proxy': inspect(running=False),
                         'app-db': DockerError('engine busy', status=500)})
    services = [{'name': n, 'deploy': {'type': 'docker', 'container': 'app-' + n}} for n in ('backend', 'proxy', 'db', 'gone')]
    got = dict((f['service'], f) for f in area_network.container_resource_findings(client, 'h1', services, T, 0))
    backend = got['backend']
    assert backend['check'] == 'container.resources' and backend['host'] == 'h1'
    assert backend['status'] == 'crit' and backend['evidence']['memory_pct'] == 93.8
    assert backend['evidence']['memory_used'] == 240 * MIB and backend['evidence']['memory_limit'] == 256 * MIB
    assert 'memory' in backend['summary'] and backend['evidence']['cpu_note'] == area_network.CPU_NOT_SAMPLED
    assert got['proxy']['status'] == 'unknown' and 'not running' in got['proxy']['summary']
    assert got['db']['status'] == 'unknown' and 'engine busy' in got['db']['summary']
    assert got['gone']['status'] == 'crit' and 'No such container' in got['gone']['summary']


@pytest.mark.parametrize('seconds', [0, -1, None])
def test_sample_cpu_needs_an_interval(tmp_path, seconds):
    counter = tmp_path / 'cpuacct.usage'
    counter.write_text('1\n')
    assert area_network.sample_cpu(str(counter), seconds) is None
