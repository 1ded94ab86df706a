"""tests/bench/bench.py: the pure logic of the benchmark (ratios, tasks per host, inventories, options).

Nothing here is timed: the benchmark prints its goals, it never asserts them.
"""
import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location('bench', os.path.join(ROOT, 'tests', 'bench', 'bench.py'))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def task(name, **hosts):
    return {'task': {'name': name}, 'hosts': hosts}


OK = {'changed': False}
SKIP = {'skipped': True, 'changed': False}


def doc(*plays):
    return {'plays': [{'play': {'name': 'play %d' % n}, 'tasks': list(tasks)} for n, tasks in enumerate(plays)],
            'stats': {}}


# -- ratio of medians

def test_ratio_of_medians_divides_the_medians_not_the_means():
    assert bench.ratio_of_medians([10, 2, 3], [1, 100, 2]) == pytest.approx(1.5)


def test_ratio_of_medians_of_an_even_number_of_runs_uses_the_middle_mean():
    assert bench.ratio_of_medians([1, 2, 3, 4], [1, 1]) == pytest.approx(2.5)


@pytest.mark.parametrize('top,bottom', [([], [1]), ([1], []), ([1], [0, 0, 0])])
def test_ratio_of_medians_is_none_without_a_meaningful_denominator(top, bottom):
    assert bench.ratio_of_medians(top, bottom) is None


# -- json callback output

def test_parse_json_output_skips_what_precedes_the_document():
    text = '[WARNING]: something {odd}\n{\n  "plays": [],\n  "stats": {}\n}\n'
    assert bench.parse_json_output(text) == {'plays': [], 'stats': {}}
    assert bench.parse_json_output('{"plays": []}') == {'plays': []}


def test_parse_json_output_without_a_document_raises():
    with pytest.raises(ValueError):
        bench.parse_json_output('ERROR! the playbook could not be found\n')


# -- tasks per host

def test_task_counts_separates_run_once_tasks_of_the_first_host():
    data = doc([
        task('preflight', a=OK),                          # run_once: only the first host reports it
        task('probe', a=OK, b=OK, c=OK),
        task('record', a=OK, b=SKIP, c=OK),
        task('summary', a=OK),
        task('announce', a=SKIP),
    ])
    counts = bench.task_counts(data)
    assert counts['first'] == 'a'
    assert counts['once_executed'] == 2 and counts['once_skipped'] == 1
    assert counts['hosts'] == {'a': {'executed': 2, 'skipped': 0}, 'b': {'executed': 1, 'skipped': 1},
                               'c': {'executed': 2, 'skipped': 0}}
    assert counts['per_host_max'] == 2
    assert counts['first_total'] == 4
    assert counts['others_max'] == 2
    assert bench.tasks_cell(counts) == '2 +2 once'


def test_task_counts_a_play_of_run_once_tasks_only_is_run_once():
    # triage's first and last plays: every task run_once, so the play reports the first host alone
    data = doc([task('preflight', a=OK), task('declare', a=OK)],
               [task('probe', a=OK, b=OK, c=OK)],
               [task('diagnose', a=OK), task('comms', a=SKIP)])
    counts = bench.task_counts(data)
    assert counts['first'] == 'a'
    assert counts['per_host_max'] == 1 and counts['once_executed'] == 3 and counts['once_skipped'] == 1
    assert bench.tasks_cell(counts) == '1 +3 once'


def test_task_counts_a_loop_whose_items_are_all_skipped_is_skipped():
    looped = {'results': [{'skipped': True}, {'skipped': True}], 'changed': False}
    partly = {'results': [{'skipped': True}, {'changed': False}], 'changed': False}
    counts = bench.task_counts(doc([task('loop', a=looped, b=partly)]))
    assert counts['hosts']['a'] == {'executed': 0, 'skipped': 1}
    assert counts['hosts']['b'] == {'executed': 1, 'skipped': 0}


def test_task_counts_controller_plays_are_run_once_and_not_a_host():
    data = doc([task('check the request', localhost=OK)], [task('probe', a=OK, b=OK)])
    counts = bench.task_counts(data)
    assert 'localhost' not in counts['hosts']
    assert counts['once_executed'] == 1
    assert counts['per_host_max'] == 1


def test_task_counts_a_task_of_another_single_host_counts_for_that_host():
    # the first host is the one that reports most single-host tasks; b's own task is b's
    data = doc([task('once 1', a=OK), task('once 2', a=OK), task('b only', b=OK), task('all', a=OK, b=OK)])
    counts = bench.task_counts(data)
    assert counts['first'] == 'a'
    assert counts['hosts']['b'] == {'executed': 2, 'skipped': 0}
    assert counts['once_executed'] == 2


def test_task_counts_of_a_single_host_play_are_that_hosts_tasks():
    counts = bench.task_counts(doc([task('probe', a=OK), task('record', a=SKIP)]))
    assert counts['hosts'] == {'a': {'executed': 1, 'skipped': 1}}
    assert counts['once_executed'] == 0
    assert counts['others_max'] is None


def test_task_counts_of_nothing():
    counts = bench.task_counts({'plays': []})
    assert counts['first'] is None and counts['per_host_max'] == 0


def test_recap_problems_names_failed_and_unreachable_hosts():
    data = {'stats': {'a': {'failures': 0, 'unreachable': 0}, 'b': {'failures': 1, 'unreachable': 0},
                      'c': {'failures': 0, 'unreachable': 1}}}
    assert bench.recap_problems(data) == {'b': 'failures=1 unreachable=0', 'c': 'failures=0 unreachable=1'}
    assert bench.recap_problems(None) == {}


def test_new_entries():
    assert bench.new_entries(['INC-1'], ['INC-2', 'INC-1', 'INC-0']) == ['INC-0', 'INC-2']


# -- the shell baseline's arguments from the lab inventory

SETTINGS = {
    'services': {
        'app-backend': [
            {'name': 'backend', 'kind': 'backend', 'deploy': {'type': 'docker', 'container': 'lab1-app-backend'},
             'health': [{'name': 'liveness', 'url': 'http://127.0.0.1:18100/health'}]},
            {'name': 'proxy', 'kind': 'proxy', 'deploy': {'type': 'docker', 'container': 'lab1-app-proxy'}},
        ],
        'app-db': [{'name': 'db', 'kind': 'postgres', 'deploy': {'type': 'docker', 'container': 'lab1-app-db'},
                    'postgres': {'port': '15532', 'password_var': 'lab_pg_password'}}],
        'app-redis': [{'name': 'redis', 'kind': 'redis', 'deploy': {'type': 'docker', 'container': 'lab1-app-redis'},
                       'redis': {'port': 16479, 'password_var': 'lab_redis_password'}}],
    },
    'tls': [{'name': 'api', 'host': '127.0.0.1', 'port': '18543'}],
    'passwords': {'lab_redis_password': 'pw'},
}


def test_shell_invocation_from_the_lab_settings():
    args, env = bench.shell_invocation(SETTINGS)
    assert args == ['http://127.0.0.1:18100', '15532', '16479', '127.0.0.1:18543']
    assert env == {'BACKEND_CONTAINER': 'lab1-app-backend', 'DB_CONTAINER': 'lab1-app-db',
                   'REDIS_CONTAINER': 'lab1-app-redis', 'REDISCLI_AUTH': 'pw'}


def test_shell_invocation_without_tls_or_password():
    settings = json.loads(json.dumps(SETTINGS))
    settings['tls'] = []
    settings['passwords'] = {}
    args, env = bench.shell_invocation(settings)
    assert len(args) == 3
    assert 'REDISCLI_AUTH' not in env


# -- SSH aliases of the fleet lab's hosts

FLEET = [('db-1', 'postgres', {'ansible_port': '{{ (fleet_ssh_base | int) + 1 }}'}),
         ('cache-1', 'redis', {'ansible_port': '{{ (fleet_ssh_base | int) + 2 }}'}),
         ('web-1', 'web', {'ansible_port': '{{ (fleet_ssh_base | int) + 3 }}', 'fleet_web_index': 1})]


def test_alias_inventory_round_robin_over_the_fleet():
    inv = bench.alias_inventory(FLEET, 7)
    groups = inv['all']['children']['fleet']['children']
    assert list(groups['postgres']['hosts']) == ['db-1-001', 'db-1-004', 'db-1-007']
    assert list(groups['redis']['hosts']) == ['cache-1-002', 'cache-1-005']
    assert list(groups['web']['hosts']) == ['web-1-003', 'web-1-006']
    assert groups['web']['hosts']['web-1-006'] == {'ansible_port': '{{ (fleet_ssh_base | int) + 3 }}',
                                                   'fleet_web_index': 1}
    assert sum(len(g['hosts']) for g in groups.values()) == 7


def test_alias_inventory_gives_every_alias_its_own_control_socket():
    groups = bench.alias_inventory(FLEET, 4, own_control_path=True)['all']['children']['fleet']['children']
    paths = [hv['ansible_control_path'] for g in groups.values() for hv in g['hosts'].values()]
    assert len(set(paths)) == 4
    assert groups['postgres']['hosts']['db-1-004']['ansible_control_path'] == '%(directory)s/db-1-004'
    assert 'ansible_control_path' not in FLEET[0][2]  # the sources are not changed


# -- report helpers and options

def test_verdict_and_formats():
    assert bench.verdict(0.9, 1.0) == 'ok'
    assert bench.verdict(1.5, 1.0) == 'MISS'
    assert bench.verdict(None, 1.0) == ''
    assert bench.fmt_x(2.345) == '2.35x' and bench.fmt_s(None) == '-'


def test_table_aligns_columns_under_a_header():
    out = bench.table([('measure', 'median', 'goal'), ('triage', '7.00 s', 'x'), ('ping', '1.30 s', '')])
    lines = out.splitlines()
    assert lines[0].startswith('measure') and set(lines[1].replace(' ', '')) == {'-'}
    assert lines[2].index('7.00 s') == lines[3].index('1.30 s')


def test_options_defaults_and_overrides(monkeypatch):
    monkeypatch.delenv('FLEET_SIZE', raising=False)
    opts = bench.parse_args([])
    assert opts.only == list(bench.MEASURES) and opts.hosts == 100 and opts.fleet_size is None
    measures = ['triage', 'investigate', 'ssh', 'fleet100', 'ssh100']
    assert [bench.runs_for(opts, m) for m in measures] == [5, 3, 3, 1, 1]
    opts = bench.parse_args(['--runs', '2', '--only', 'triage, ssh'])
    assert opts.only == ['triage', 'ssh']
    assert [bench.runs_for(opts, m) for m in measures] == [2, 2, 2, 1, 1]
    opts = bench.parse_args(['--runs-100', '3', '--hosts', '50', '--ssh-hosts', '20'])
    assert [bench.runs_for(opts, m) for m in measures] == [5, 3, 3, 3, 3]
    assert (opts.hosts, opts.ssh_hosts) == (50, 20)
    monkeypatch.setenv('FLEET_SIZE', '5')
    assert bench.parse_args([]).fleet_size == 5


def test_options_reject_an_unknown_measure(capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(['--only', 'triage,speed'])
    assert 'unknown measure' in capsys.readouterr().err


def test_unreachable_messages_are_distinct_and_few():
    down = {'unreachable': True, 'msg': 'Failed to connect to the host via ssh: kex_exchange_identification: read: Connection reset'}
    data = doc([task('ping', a=down, b=dict(down), c=OK)],
               [task('probe', d={'unreachable': True, 'msg': 'timed out\nssh: connect to host 127.0.0.1 port 2223: Connection timed out'})])
    assert bench.unreachable_messages(data) == [down['msg'], 'ssh: connect to host 127.0.0.1 port 2223: Connection timed out']
    assert bench.unreachable_messages(None) == []


def test_the_host_goals_are_for_100_hosts():
    assert bench.host_goal(100, 60.0) == (60.0, '<= 60 s')
    goal, text = bench.host_goal(30, 60.0)
    assert goal is None and '100 hosts' in text


def test_problem_note_counts_unreachable_and_failed_hosts():
    problems = {'h%d' % i: 'failures=0 unreachable=1' for i in range(6)}
    problems['x'] = 'failures=2 unreachable=0'
    assert bench.problem_note(4, problems) == 'rc 4: 6 host(s) unreachable, 1 failed (h0, h1, h2, h3, h4, ...)'
    assert bench.problem_note(2, {}) == 'rc 2'


def test_per_host_divides_the_median_by_the_hosts():
    assert bench.per_host([70.0, 90.0, 80.0], 100) == pytest.approx(0.8)
    assert bench.per_host([], 100) is None and bench.per_host([1.0], 0) is None


def test_the_goals_are_ratios_to_the_floor_and_cpu_per_host():
    assert (bench.GOAL_FLOOR_RATIO, bench.GOAL_CPU_PER_HOST, bench.GOAL_TASKS_PER_HOST) == (1.5, 0.8, 1)
    assert bench.GOAL_SHELL_RATIO == 1.0  # the shell baseline's ratio stays in the table


def test_report_prints_each_ratio_and_cpu_per_host_against_its_goal(capsys):
    b = bench.Bench.__new__(bench.Bench)
    b.measures, b.skipped = {}, []
    b.ratios = [('triage / ping (lab)', 1.4, 1.5), ('investigate all / ping (lab)', 1.7, 1.5),
                ('triage / shell baseline', 0.9, 1.0)]
    b.per_host = [('triage 100 hosts (local), CPU-s per host', 0.75, 0.8), ('ping 100 hosts (local), CPU-s per host', 0.3, None)]
    b.report([1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    out = capsys.readouterr().out
    assert '1.40x   goal <= 1.5x ok' in out and '1.70x   goal <= 1.5x MISS' in out and '0.90x   goal <= 1.0x ok' in out
    assert '0.75   goal <= 0.8 ok' in out
    assert 'load average before 1.00 1.00 1.00, after 2.00 2.00 2.00' in out


def test_play_tasks_counts_what_the_target_host_executed_in_the_remediation_play():
    data = {'plays': [{'tasks': [{'hosts': {'app-db': {}}}]},
                      {'tasks': [{'hosts': {'app-db': {}}}, {'hosts': {'app-db': {'skipped': True}}},
                                 {'hosts': {'app-backend': {}}}]}]}
    assert bench.play_tasks(data, 'app-db') == 1
    assert bench.play_tasks(data, 'app-backend') == 1
    assert bench.play_tasks({'plays': []}, 'app-db') is None
