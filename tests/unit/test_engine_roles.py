"""The roles moved onto the engine (plugins/action/remediation_run.py) are thin: at most 3 tasks on the target host,
every one of them a remediation_run task, and no include of the old Jinja steps (roles/remediation/tasks)."""
import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINE_ROLES = {'pg_terminate': 'kill_query', 'restart': 'restart', 'redis_evict': 'flush_keys', 'tls_cert': 'apply_cert',
                'rollback': 'rollback', 'redis_maxmemory': 'raise_maxmemory', 'disk_cleanup': 'clean_disk',
                'redis_kill_clients': 'kill_clients'}


@pytest.mark.parametrize('role', sorted(ENGINE_ROLES))
def test_engine_role_is_at_most_three_engine_tasks(role):
    tasks_dir = os.path.join(ROOT, 'roles', role, 'tasks')
    assert os.listdir(tasks_dir) == ['main.yml'], 'the old plan/apply/verify files are gone'
    with open(os.path.join(tasks_dir, 'main.yml')) as handle:
        tasks = yaml.safe_load(handle)
    assert 1 <= len(tasks) <= 3
    for task in tasks:
        assert 'sre.incident_response.remediation_run' in task, task.get('name')
    with open(os.path.join(ROOT, 'roles', role, 'vars', 'main.yml')) as handle:
        assert ENGINE_ROLES[role] in yaml.safe_load(handle).values()


def test_every_engine_action_has_a_handler():
    from ansible_collections.sre.incident_response.plugins.action import remediation_run as run
    assert set(ENGINE_ROLES.values()) <= set(run.HANDLERS) == set(run.ACTIONS)
