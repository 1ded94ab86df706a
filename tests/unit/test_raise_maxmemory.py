"""raise_maxmemory on the engine (plugins/action/remediation_run.py, handler RaiseMaxmemory): the checks of the old
role's preflight and plan, the service's connection settings (TLS) with the triage's Redis timeouts, the refusal of
an increase the host has no room for, one raise per approval, and a verification that needs the new maxmemory in
effect. The engine's Ansible side is a fake: only the handler's logic runs."""
import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.sre.incident_response.plugins.action import remediation_run as run
from ansible_collections.sre.incident_response.plugins.module_utils import remediation as rem

MIB = 1024 * 1024
SVC = {'name': 'redis', 'kind': 'redis',
       'redis': {'host': '127.0.0.1', 'port': '6390', 'password_var': 'lab_redis_password', 'tls': True,
                 'ca_cert': '/etc/ssl/lab-ca.pem', 'client_cert': '/etc/ssl/c.pem', 'client_key': '/etc/ssl/c.key',
                 'user': 'ops', 'validate_certs': False}}


class FakeEngine(object):
    """The engine as a handler sees it: modules answer from a Redis of `used`/`maxmemory` bytes on a host with
    `available` bytes of MemAvailable (the module's own logic, remediation.maxmemory_plan)."""

    _host = 'app-redis'

    def __init__(self, used=62 * MIB, maxmemory=64 * MIB, available=8 * 1024 * MIB, memory_status='ok', users=()):
        self.used, self.maxmemory, self.available = used, maxmemory, available
        self.memory_status, self.users = memory_status, list(users)
        self.calls, self._probed, self.health_asked = [], {}, []

    def settings(self, role):
        assert role == 'redis'
        return {'redis_connect_timeout': 3, 'redis_socket_timeout': 4}

    def secret(self, name):
        return 's3cret' if name == 'lab_redis_password' else None

    def module(self, name, args, check=None):
        assert name == 'sre.incident_response.redis_maxmemory' and check is False
        self.calls.append(dict(args))
        before = {'used_memory': self.used, 'maxmemory': self.maxmemory}
        plan = rem.maxmemory_plan(self.used, self.maxmemory, self.available, args['target_used_percent'],
                                  args['max_free_fraction'])
        res = dict(changed=False, memory_before=before, memory_after=dict(before), new_maxmemory=plan['new'],
                   host_available=self.available, fits=plan['fits'], plan=[plan['line']])
        if args['state'] == 'present':
            if not plan['fits']:
                raise AnsibleActionFail('redis_maxmemory: refusing to raise maxmemory: %s' % plan['line'])
            if plan['needed']:
                self.maxmemory = plan['new']
                res.update(changed=True, memory_after={'used_memory': self.used, 'maxmemory': self.maxmemory})
        return res

    def findings_of(self, area, checks, service=None):
        finding = {'host': self._host, 'service': service, 'check': 'redis.memory', 'status': self.memory_status,
                   'evidence': {'used_memory': self.used, 'maxmemory': self.maxmemory}}
        self._probed[(self._host, (area,))] = [finding]
        mine = [finding] if 'redis.memory' in checks else []
        ok = bool(mine) and all(f['status'] == 'ok' for f in mine)
        return ok, ', '.join('%s %s' % (f['check'], f['status']) for f in mine) or 'no finding', mine

    def dependents(self, name):
        return list(self.users)

    def health(self, services, retries):
        self.health_asked.append((list(services), retries))
        return True, ['ok: backend ready'], []


def handler(engine, options=None, svc=None):
    h = run.RaiseMaxmemory(engine, SVC if svc is None else svc, dict(options or {}))
    h.preflight()
    return h


def test_raise_maxmemory_is_an_engine_action():
    assert 'raise_maxmemory' in run.ACTIONS and run.HANDLERS['raise_maxmemory'] is run.RaiseMaxmemory


def test_connection_is_the_services_with_tls_and_the_triage_timeouts():
    engine = FakeEngine()
    h = handler(engine)
    assert h.login == {'login_host': '127.0.0.1', 'login_port': 6390, 'login_user': 'ops', 'login_password': 's3cret',
                       'db': 0, 'tls': True, 'validate_certs': False, 'ca_cert': '/etc/ssl/lab-ca.pem',
                       'client_cert': '/etc/ssl/c.pem', 'client_key': '/etc/ssl/c.key', 'connect_timeout': 3,
                       'socket_timeout': 4}
    # the same builder as flush_keys: one place for the Redis login
    flush = run.FlushKeys(engine, dict(SVC, redis=dict(SVC['redis'], evictable_patterns=['cache:*'])), {})
    flush.preflight()
    assert flush.login == h.login


@pytest.mark.parametrize('options, svc', [
    ({}, {'name': 'redis', 'kind': 'redis'}),           # no redis section
    ({'target_used_percent': 100}, None),              # [1, 100)
    ({'target_used_percent': 0.5}, None),
    ({'max_free_fraction': 0}, None),                  # (0, 1]
    ({'max_free_fraction': 1.5}, None),
    ({'target_used_percent': 'lots'}, None),
])
def test_preflight_keeps_the_roles_checks(options, svc):
    with pytest.raises(AnsibleActionFail, match='redis_maxmemory needs a service redis'):
        handler(FakeEngine(), options, svc)


def test_plan_is_read_only_and_maps_the_role_options():
    engine = FakeEngine()
    h = handler(engine, {'target_used_percent': '80', 'max_free_fraction': '0.25', 'persist': 'true'})
    plan = h.plan()
    assert engine.calls[-1]['state'] == 'plan' and engine.maxmemory == 64 * MIB
    assert engine.calls[-1]['target_used_percent'] == 80.0 and engine.calls[-1]['max_free_fraction'] == 0.25
    assert engine.calls[-1]['persist'] is True
    assert plan['targets'] == [1] and 'refuse' not in plan and plan['data']['needed'] is True
    assert plan['data']['new_maxmemory'] == 78 * MIB and plan['lines'][0].startswith('raise maxmemory 64.0 MiB -> 78.0 MiB')


def test_persist_false_as_minus_e_gives_it():
    engine = FakeEngine()
    handler(engine, {'persist': 'false'}).plan()
    assert engine.calls[-1]['persist'] is False


def test_plan_that_does_not_fit_the_host_is_refused_before_the_gate():
    engine = FakeEngine(used=1000 * MIB, maxmemory=1000 * MIB, available=300 * MIB)
    h = handler(engine)
    plan = h.plan()
    assert 'does NOT fit' in plan['lines'][0]
    assert plan['refuse'].startswith('raise_maxmemory on redis cannot be done safely: raise maxmemory')
    assert 'Nothing was changed' in plan['refuse'] and 'redis_maxmemory_target_used_percent' in plan['refuse']
    assert run.RaiseMaxmemory.refuse_plan, 'the old role failed the plan too: no override would make it fit'
    unknown = handler(FakeEngine(available=None)).plan()
    assert 'unknown' in unknown['lines'][0] and unknown['refuse']


def test_nothing_to_raise_plans_no_target():
    assert handler(FakeEngine(used=10 * MIB)).plan()['targets'] == []       # already at or above the target
    plan = handler(FakeEngine(maxmemory=0)).plan()                           # no limit: nothing to raise
    assert plan['targets'] == [] and 'refuse' not in plan


def test_apply_sets_it_once_and_verify_needs_it_in_effect():
    engine = FakeEngine(users=['backend'])
    h = handler(engine, {'health_retries': 3})
    plan = h.plan()
    applied = h.apply(plan, {'already_applied': False})
    assert applied['changed'] and engine.maxmemory == 83 * MIB and engine.calls[-1]['state'] == 'present'
    assert applied['summary'] == 'raise_maxmemory on redis: maxmemory 64.0 MiB -> 83.0 MiB; no key deleted'
    assert set(applied['result']) == {'memory_before', 'memory_after', 'new_maxmemory', 'host_available'}
    own = h.verify(plan, applied)
    assert own['ok'] and own['findings'] == 'redis.memory ok' and own['remaining'] == ''
    assert own['summary'].startswith('maxmemory 83.0 MiB (planned 83.0 MiB: in effect), used 62.0 MiB (74.7 %')
    assert engine.health_asked == [(['backend'], 3)]


def test_verify_fails_when_the_new_maxmemory_is_not_in_effect_or_the_symptom_stays():
    engine = FakeEngine()
    h = handler(engine)
    plan = h.plan()
    applied = h.apply(plan, {})
    engine.maxmemory = 64 * MIB  # e.g. a restart without the persisted value, or someone set it back
    own = h.verify(plan, applied)
    assert not own['ok'] and 'NOT in effect' in own['summary']
    engine = FakeEngine(memory_status='crit')
    h = handler(engine)
    plan = h.plan()
    assert not h.verify(plan, h.apply(plan, {}))['ok']


def test_unhealthy_dependents_are_what_remains_not_a_failed_verification():
    class Sick(FakeEngine):
        def health(self, services, retries):
            return False, ['crit: backend 503'], []
    engine = Sick(users=['backend'])
    h = handler(engine, {'verify_health': 'yes'})
    plan = h.plan()
    own = h.verify(plan, h.apply(plan, {}))
    assert own['ok'] and own['remaining'].startswith('health NOT ok: crit: backend 503')
    engine = Sick(users=['backend'])
    h = handler(engine, {'verify_health': 'false'})
    plan = h.plan()
    assert h.verify(plan, h.apply(plan, {}))['remaining'] == ''


def test_second_apply_changes_nothing():
    engine = FakeEngine()
    h = handler(engine)
    first = h.apply(h.plan(), {})
    again = handler(engine)
    plan = again.plan()
    assert first['changed'] and plan['targets'] == [] and not again.apply(plan, {})['changed']
    assert again.verify(plan, {})['ok']


def test_one_raise_per_approval_even_when_the_writer_filled_the_new_room():
    engine = FakeEngine()
    h = handler(engine)
    h.apply(h.plan(), {})
    engine.used = 80 * MIB  # the writer kept writing: the plan would raise again
    again = handler(engine)
    plan = again.plan()
    calls = len(engine.calls)
    applied = again.apply(plan, {'already_applied': True, 'already_applied_state': 'done',
                                 'already_applied_at': '2026-12-06T00:00:00Z'})
    assert not applied['changed'] and len(engine.calls) == calls and engine.maxmemory == 83 * MIB
    assert 'already raised under this approval' in applied['lines'][0]
    own = again.verify(plan, applied)
    assert 'planned 83.0 MiB: in effect' in own['summary']
    # an attempt that failed is retried under the same approval (CONFIG SET is atomic; the plan reads it again)
    assert again.apply(plan, {'already_applied': True, 'already_applied_state': 'failed'})['changed']


def test_maxmemory_in_effect():
    assert run.maxmemory_in_effect(83 * MIB, 83 * MIB)
    assert run.maxmemory_in_effect(100 * MIB, 83 * MIB)       # raised further by someone else: not lowered
    assert not run.maxmemory_in_effect(64 * MIB, 83 * MIB)
    assert run.maxmemory_in_effect(0, 0)                      # no limit stays no limit
    assert not run.maxmemory_in_effect(0, 83 * MIB)


def test_as_bool():
    assert run.as_bool('true') and run.as_bool(True) and run.as_bool('yes') and run.as_bool(1)
    assert not run.as_bool('false') and not run.as_bool(False) and not run.as_bool('') and not run.as_bool(None)
