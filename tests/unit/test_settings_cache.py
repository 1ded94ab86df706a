"""Probe settings resolved once per play (plugins/plugin_utils/settings.py): every host with the same inputs reads
the first one's result; a host that overrides a setting, or whose inputs template differently, gets its own.

Each host's task runs in a process of its own: the tests clear the in-process cache between hosts, so only the
run's cache directory carries a result from one host to the next, as in ansible-playbook.
"""
import os
import stat

import pytest
from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.sre.incident_response.plugins.plugin_utils import settings

ROLES = list(settings.ROLES)


@pytest.fixture
def resolved(monkeypatch):
    """The roles resolved from scratch (not read from a cache), in order."""
    calls = []
    real = settings._resolve

    def counting(role, merged, env, loader):
        calls.append(role)
        return real(role, merged, env, loader)
    monkeypatch.setattr(settings, '_resolve', counting)
    return calls


def host(role, cache_dir, **host_vars):
    """The settings of one host, in a process of its own (nothing in memory from the hosts before it)."""
    for key in [k for k in settings._CACHE if isinstance(k, str) and not os.path.isabs(k)]:
        del settings._CACHE[key]
    loader = DataLoader()
    return settings.role_settings(role, host_vars, Templar(loader=loader, variables=host_vars), loader,
                                  cache_dir=str(cache_dir))


@pytest.mark.parametrize('role', ROLES)
def test_hosts_with_the_same_inputs_resolve_the_settings_once(role, tmp_path, resolved):
    first = host(role, tmp_path, inventory_hostname='web-1', incident_window='20m')
    others = [host(role, tmp_path, inventory_hostname='web-%d' % n, incident_window='20m') for n in range(2, 6)]
    assert resolved == [role]
    assert all(o == first for o in others)
    uncached = settings.role_settings(role, {'incident_window': '20m'}, Templar(loader=DataLoader()), DataLoader())
    assert first == uncached  # the cache changes nothing in the values, nor their types
    for key, value in first.items():
        assert type(value) is native(uncached[key]), key  # pylint: disable=unidiomatic-typecheck  # plain JSON types, as the module receives them


def native(value):
    return next(kind for kind in (bool, int, float, str, list, dict) if isinstance(value, kind))


def test_a_host_that_overrides_a_setting_gets_its_own_and_the_others_keep_theirs(tmp_path, resolved):
    plain = host('health', tmp_path)
    strict = host('health', tmp_path, health_latency_crit_ms='8000', incident_window='30m')
    again = host('health', tmp_path)
    assert plain['health_latency_crit_ms'] == 5000.0 and plain['health_window'] == '15m'
    assert strict['health_latency_crit_ms'] == 8000.0 and strict['health_window'] == '30m'
    assert again == plain
    assert resolved == ['health', 'health']


def test_an_override_that_templates_differently_per_host_is_resolved_per_host(tmp_path, resolved):
    window = trust_as_template('{{ my_window }}')
    first = host('app_logs', tmp_path, app_logs_window=window, my_window='5m')
    second = host('app_logs', tmp_path, app_logs_window=window, my_window='45m')
    third = host('app_logs', tmp_path, app_logs_window=window, my_window='5m')
    assert (first['app_logs_window'], second['app_logs_window'], third['app_logs_window']) == ('5m', '45m', '5m')
    assert resolved == ['app_logs', 'app_logs']


def test_the_inputs_defaults_read_are_templated_per_host(tmp_path):
    endpoints = [{'name': 'api', 'host': '127.0.0.1', 'port': trust_as_template('{{ proxy_port }}')}]
    one = host('network', tmp_path, incident_tls_endpoints=endpoints, proxy_port=18443)
    two = host('network', tmp_path, incident_tls_endpoints=endpoints, proxy_port=18743)
    assert one['network_tls_endpoints'][0]['port'] == 18443
    assert two['network_tls_endpoints'][0]['port'] == 18743


def test_bad_settings_fail_on_every_host_and_are_not_cached(tmp_path):
    for _host in range(2):
        with pytest.raises(AnsibleActionFail, match='health role: health_latency_warn_ms must not exceed'):
            host('health', tmp_path, health_latency_warn_ms=9000)
    assert not [n for n in os.listdir(str(tmp_path)) if n.endswith('.json')]


def test_the_cache_files_are_readable_by_this_user_only(tmp_path):
    host('redis', tmp_path)
    files = [n for n in os.listdir(str(tmp_path)) if n.endswith('.json')]
    assert len(files) == 1
    assert stat.S_IMODE(os.stat(str(tmp_path / files[0])).st_mode) == 0o600


@pytest.mark.parametrize('role', ROLES)
def test_every_roles_defaults_are_cacheable(role):
    """Their templates read variables only (no lookup, now() or random), so equal inputs give equal settings."""
    names, pure = settings.inputs(role, DataLoader())
    assert pure
    assert set(settings.defaults(role, DataLoader())) <= names


@pytest.mark.parametrize('text,names,pure', [
    ("{{ incident_window | default('15m') }}", {'incident_window'}, True),
    ("{{ lookup('ansible.builtin.env', 'WINDOW') }}", set(), False),
    ("{{ query('ansible.builtin.env', 'X') }}", set(), False),
    ("{{ now() }}", set(), False),
    ("{{ [1, 2] | random }}", set(), False),
    ("{{ a ~ b }} {% if c %}x{% endif %}", {'a', 'b', 'c'}, True),
    ('plain text', set(), True),
])
def test_template_names(text, names, pure):
    assert settings.template_names([text]) == (names, pure)


def test_a_role_whose_defaults_are_not_pure_is_resolved_for_every_host(tmp_path, resolved, monkeypatch):
    monkeypatch.setitem(settings._CACHE, ('inputs', 'trends'), (frozenset(), False))
    host('trends', tmp_path)
    host('trends', tmp_path)
    assert resolved == ['trends', 'trends']
    assert not os.listdir(str(tmp_path))
