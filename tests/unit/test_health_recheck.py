"""One slow answer is noise on a busy machine: health re-checks an endpoint that answered as expected but slowly
once and keeps the faster answer (areas/health.recheck_slow). Pure logic, check_endpoints replaced."""
from ansible_collections.sre.incident_response.plugins.module_utils.areas import health

SPEC = {'host': 'app-backend', 'service': 'backend', 'name': 'liveness', 'url': 'http://127.0.0.1:18000/health', 'expect_status': 200}


def answer(ms, status=200):
    return {'status': status, 'latency_ms': ms, 'json': {'status': 'ok'}, 'body': '{"status": "ok"}'}


def test_a_slow_answer_is_checked_again_and_the_faster_kept(monkeypatch):
    calls = []
    monkeypatch.setattr(health, 'check_endpoints', lambda specs, default_timeout: calls.append(specs) or [answer(40)])
    out = health.recheck_slow([SPEC], [answer(1165)], 1000, 5)
    assert len(calls) == 1 and out[0]['latency_ms'] == 40
    assert health.endpoint_findings([SPEC], out, 1000, 5000)[0]['status'] == 'ok'


def test_slow_twice_stays_a_finding(monkeypatch):
    monkeypatch.setattr(health, 'check_endpoints', lambda specs, default_timeout: [answer(1400)])
    out = health.recheck_slow([SPEC], [answer(1165)], 1000, 5)
    assert out[0]['latency_ms'] == 1165
    assert health.endpoint_findings([SPEC], out, 1000, 5000)[0]['status'] == 'warn'


def test_fast_errors_and_wrong_status_are_not_rechecked(monkeypatch):
    def no_recheck(specs, default_timeout):
        raise AssertionError('re-checked %s (timeout %s)' % (specs, default_timeout))

    monkeypatch.setattr(health, 'check_endpoints', no_recheck)
    results = [answer(30), {'error': 'Connection refused', 'latency_ms': 1}, answer(20, status=503)]
    assert health.recheck_slow([SPEC, SPEC, SPEC], results, 1000, 5) == results
