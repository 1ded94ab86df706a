"""Unit tests: application log analysis (errors by path and status, latency, text fallback)."""
import json

from ansible_collections.sre.incident_response.plugins.module_utils.areas import app_logs as area_app_logs

T = {'error_rate_warn_pct': 5, 'error_rate_crit_pct': 25, 'min_errors': 3, 'error_lines_warn': 10,
     'error_lines_crit': 100, 'latency_p95_warn_ms': 1000, 'latency_p95_crit_ms': 5000}


def line(path, status, latency=5.0, level=None, msg='request'):
    return json.dumps({'ts': '2026-11-27T03:00:00Z', 'level': level or ('ERROR' if status >= 500 else 'INFO'),
                       'msg': msg, 'method': 'GET', 'path': path, 'status': status, 'latency_ms': latency})


def test_partial_failure_breakdown_names_path_count_and_share():
    lines = [line('/api/orders', 200) for dummy in range(50)]
    lines += [line('/api/products', 500, msg='database error: relation "products" does not exist') for dummy in range(48)]
    lines += [line('/api/products', 200) for dummy in range(2)]
    stats = area_app_logs.analyze(lines)
    assert stats['requests'] == 100 and stats['errors'] == 48 and stats['errors_by_status'] == {'500': 48}
    f = area_app_logs.evaluate(stats, 'app-backend', 'backend', '15m', T, 'docker logs')
    assert f['status'] == 'crit'
    assert f['summary'].startswith('/api/products: 48 errors (500) in 15m, 96% of its requests')
    assert 'relation "products" does not exist' in f['summary']
    assert f['evidence']['failing_paths'] == ['/api/products']
    assert f['evidence']['by_path']['/api/orders']['errors'] == 0


def test_few_errors_below_min_errors_stay_ok():
    lines = [line('/api/orders', 200) for dummy in range(20)] + [line('/api/orders', 500) for dummy in range(2)]
    f = area_app_logs.evaluate(area_app_logs.analyze(lines), 'h', 's', '15m', T, 'x')
    assert f['status'] == 'ok' and f['summary'].startswith('2 errors in 22 requests in 15m')


def test_warn_between_thresholds_and_4xx_are_not_errors():
    lines = [line('/a', 404) for dummy in range(30)] + ([line('/a', 200) for dummy in range(9)] + [line('/a', 503)]) * 10
    f = area_app_logs.evaluate(area_app_logs.analyze(lines), 'h', 's', '15m', T, 'x')
    assert f['status'] == 'warn' and '10 errors (503)' in f['summary'] and '7.7% of its requests' in f['summary']


def test_latency_p95_rates_slow_responses():
    lines = [line('/slow', 200, latency=3000.0) for dummy in range(20)] + [line('/fast', 200, latency=2.0) for dummy in range(20)]
    stats = area_app_logs.analyze(lines)
    assert stats['p95_ms'] == 3000.0 and stats['by_path']['/fast']['p50_ms'] == 2.0
    f = area_app_logs.evaluate(stats, 'h', 's', '15m', T, 'x')
    assert f['status'] == 'warn' and 'latency p95 3000 ms' in f['summary'] and 'slowest /slow' in f['summary']


def test_plain_text_fallback_counts_error_lines():
    lines = ['2026-11-27 INFO started'] + ['2026-11-27 ERROR db timeout'] * 12 + ['Traceback (most recent call last):']
    stats = area_app_logs.analyze(lines)
    assert stats['format'] == 'text' and stats['text_error_lines'] == 13
    f = area_app_logs.evaluate(stats, 'h', 's', '15m', T, 'file')
    assert f['status'] == 'warn' and f['summary'] == '13 ERROR lines in 15m'


def test_empty_window_and_ignored_paths():
    f = area_app_logs.evaluate(area_app_logs.analyze([]), 'h', 's', '5m', T, 'x')
    assert f['status'] == 'ok' and f['summary'] == 'no log lines in 5m'
    stats = area_app_logs.analyze([line('/health', 500) for dummy in range(10)], ignore_paths=['/health'])
    assert stats['requests'] == 0 and stats['errors'] == 0


def test_docker_timestamp_strip_and_excerpt_puts_errors_first():
    body, ts = area_app_logs.strip_docker_ts('2026-11-27T03:55:47.416345234Z {"a": 1}')
    assert body == '{"a": 1}' and ts.startswith('2026-11-27T03:55:47')
    lines = [line('/a', 200) for dummy in range(300)] + [line('/b', 500)]
    text = area_app_logs.excerpt(lines, None, limit=20)
    assert '"status": 500' in text.splitlines()[0] and len(text.splitlines()) <= 22


def test_recovered_path_is_ok_but_intermittent_errors_are_not():
    healed = [line('/p', 200) for dummy in range(5)] + [line('/p', 500) for dummy in range(8)] + [line('/p', 200) for dummy in range(40)]
    f = area_app_logs.evaluate(area_app_logs.analyze(healed), 'h', 's', '15m', T, 'x')
    assert f['status'] == 'ok', f
    assert f['evidence']['recovered_paths'] == ['/p'] and 'recovered: /p (8 errors earlier' in f['summary']
    still = healed + [line('/p', 500)]
    f = area_app_logs.evaluate(area_app_logs.analyze(still), 'h', 's', '15m', T, 'x')
    assert f['status'] in ('warn', 'crit') and f['evidence']['failing_paths'] == ['/p']
    intermittent = ([line('/q', 200) for dummy in range(12)] + [line('/q', 500)]) * 8
    f = area_app_logs.evaluate(area_app_logs.analyze(intermittent), 'h', 's', '15m', T, 'x')
    assert f['status'] != 'ok' and f['evidence']['recovered_paths'] == []


def test_a_path_failing_now_is_crit_even_when_the_window_dilutes_its_rate():
    lines = [line('/pay', 200) for dummy in range(60)] + [line('/pay', 502) for dummy in range(8)]
    f = area_app_logs.evaluate(area_app_logs.analyze(lines), 'h', 's', '15m', T, 'x')
    assert f['status'] == 'crit', f
    assert 'failing now (last 8 all failed)' in f['summary'] and '/pay: 8 errors (502)' in f['summary']
    assert f['evidence']['failing_paths'] == ['/pay']


def test_recovery_after_repeated_bursts_but_not_for_steady_intermittent_errors():
    burst = [line('/p', 502) for dummy in range(8)]
    ok = [line('/p', 200) for dummy in range(12)]
    healed_twice = [line('/p', 200) for dummy in range(40)] + burst + ok + [line('/p', 200) for dummy in range(30)] + burst + ok
    f = area_app_logs.evaluate(area_app_logs.analyze(healed_twice), 'h', 's', '15m', T, 'x')
    assert f['status'] == 'ok' and f['evidence']['recovered_paths'] == ['/p'], f
    steady = ([line('/q', 200) for dummy in range(6)] + [line('/q', 500)]) * 10 + [line('/q', 200) for dummy in range(12)]
    f = area_app_logs.evaluate(area_app_logs.analyze(steady), 'h', 's', '15m', T, 'x')
    assert f['status'] != 'ok' and f['evidence']['failing_paths'] == ['/q'], f


def text_line(path, status, latency=5.0, msg='request', ts='2026-11-27T03:00:00.123Z'):
    level = 'ERROR' if status >= 500 else 'INFO'
    return '%s %s method=GET path=%s status=%d latency_ms=%s msg=%s' % (ts, level, path, status, latency, json.dumps(msg))


def test_plain_text_key_value_lines_break_down_by_path_like_json():
    lines = [text_line('/api/orders', 500, msg='division by zero in "orders"') for dummy in range(30)]
    lines += [text_line('/api/products', 200) for dummy in range(30)]
    lines += ['Traceback (most recent call last):', 'INFO:     Started server process [42]']
    stats = area_app_logs.analyze(lines)
    assert stats['format'] == 'logfmt' and stats['kv_lines'] == 60 and stats['json_lines'] == 0
    assert stats['by_path']['/api/orders']['errors'] == 30 and stats['by_path']['/api/products']['errors'] == 0
    assert stats['by_path']['/api/orders']['top_error'] == 'division by zero in "orders"'
    assert stats['text_error_lines'] == 1  # the Traceback line; the uvicorn banner is free text, not an error
    f = area_app_logs.evaluate(stats, 'web-1', 'backend', '15m', T, '/var/log/app/app.log')
    assert f['status'] == 'crit' and f['summary'].startswith('/api/orders: 30 errors (500) in 15m')


def test_logfmt_without_a_leading_time_and_free_text_lines():
    rec = area_app_logs.parse_text_record('ts=2026-11-27T03:00:00Z level=error path=/api/x status=503 latency_ms=12')
    assert rec == {'ts': '2026-11-27T03:00:00Z', 'level': 'ERROR', 'path': '/api/x', 'status': 503, 'latency_ms': 12.0}
    assert area_app_logs.parse_text_record('2026-11-27 03:00:00,120 ERROR could not connect') is None
    assert area_app_logs.parse_text_record('user=alice logged in') is None  # no level, no path: free text
    assert area_app_logs.line_ts('2026-11-27 03:00:00,120 ERROR could not connect') == '2026-11-27T03:00:00.120'
    assert area_app_logs.line_ts('level=info ts=2026-11-27T03:00:00Z path=/') == '2026-11-27T03:00:00Z'
    assert area_app_logs.line_ts('{"ts": "2026-11-27T03:00:00Z"}') == '2026-11-27T03:00:00Z'
    assert area_app_logs.line_ts('no time here') is None


def test_client_controlled_paths_and_messages_are_bounded():
    """A scanner's random URLs, a 1 MiB path and endless distinct messages: the breakdown stays bounded."""
    lines = [json.dumps({'method': 'GET', 'path': '/scan/%d' % i, 'status': 404}) for i in range(5000)]
    lines += [json.dumps({'method': 'GET', 'path': '/api/' + 'A' * (1024 * 1024), 'status': 500, 'msg': 'x'})]
    lines += [json.dumps({'method': 'GET', 'path': '/api/orders', 'status': 500, 'msg': 'KeyError %d' % i})
              for i in range(300)]
    stats = area_app_logs.analyze(lines)
    assert len(stats['by_path']) == area_app_logs.MAX_PATHS + 1
    assert stats['by_path'][area_app_logs.OTHER_PATHS]['requests'] == 5000 + 1 + 300 - area_app_logs.MAX_PATHS
    assert max(len(p) for p in stats['by_path']) <= area_app_logs.MAX_PATH_CHARS + 3
    assert stats['requests'] == 5301 and stats['errors'] == 301
    lines = [json.dumps({'method': 'GET', 'path': '/api/orders', 'status': 500, 'msg': 'KeyError %d' % i})
             for i in range(300)]
    entry = area_app_logs.analyze(lines)['by_path']['/api/orders']
    assert entry['errors'] == 300 and entry['top_error'] == 'KeyError 0'  # a real message, not the folded 250
