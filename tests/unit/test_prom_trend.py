"""Unit tests of the Prometheus trend data source (plugin_utils/diagnosis/prom_trend.py) and of how the diagnosis reads
trend findings (memory_growth, gradual_degradation). A real HTTP server on 127.0.0.1 stands in for Prometheus'
query_range API to check the bounded request and the unreachable case."""
import http.server
import json
import threading
import urllib.parse

from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import diagnosis as d
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import prom_trend as p

MIB = 1048576.0


def test_memory_grew_40_percent_in_30_minutes_is_crit_at_40():
    verdict = p.evaluate_trend([(0, 100 * MIB), (900, 120 * MIB), (1800, 140 * MIB)], 25, 40, 'bytes')
    assert verdict['status'] == 'crit' and verdict['growth_pct'] == 40.0
    assert verdict['text'] == 'grew 40 % in 30 minutes (100 MiB -> 140 MiB)'


def test_growth_is_measured_from_the_lowest_point_of_the_window():
    # an old spike cleared by a restart, then a new leak: 60 -> 150 MiB since the restart
    series = [(0, 100 * MIB), (300, 300 * MIB), (600, 60 * MIB), (1200, 150 * MIB)]
    verdict = p.evaluate_trend(series, 25, 50, 'bytes')
    assert verdict['status'] == 'crit' and verdict['growth_pct'] == 150.0
    assert verdict['text'] == 'grew 150 % in 10 minutes (60 MiB -> 150 MiB)'


def test_thresholds_shrink_and_missing_baseline():
    assert p.evaluate_trend([(0, 100), (60, 130)], 25, 50)['status'] == 'warn'
    assert p.evaluate_trend([(0, 100), (60, 110)], 25, 50)['status'] == 'ok'
    assert p.evaluate_trend([(0, 100), (60, 50)], 25, 50)['text'].startswith('fell 50 %')
    assert p.evaluate_trend([(0, 100)], 25, 50)['status'] == 'unknown'
    assert p.evaluate_trend([(0, 0), (60, 5)], 25, 50)['status'] == 'unknown'
    assert p.evaluate_trend([(0, 'NaN'), (60, 100), (120, 160)], 25, 50)['growth_pct'] == 60.0


def test_default_trends_by_kind_and_own_trends():
    assert [t['name'] for t in p.trends_for({'name': 'backend', 'kind': 'backend'})] == ['memory', 'latency']
    assert p.trends_for({'name': 'db', 'kind': 'postgres'})[0]['query'] == 'sum(pg_stat_activity_count{service="db"})'
    own = {'name': 'x', 'kind': 'backend', 'prometheus': {'trends': [{'name': 'heap', 'query': 'q'}]}}
    assert p.trends_for(own) == [{'name': 'heap', 'query': 'q'}]
    assert p.trends_for({'name': 'proxy', 'kind': 'proxy'}) == []


class _Prom(http.server.BaseHTTPRequestHandler):
    requests = []

    def do_GET(self):  # noqa: N802 - http.server API
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        _Prom.requests.append((self.path, dict(self.headers)))
        values = [[1000 + 60 * i, str(100 * MIB * (1 + 0.1 * i))] for i in range(5)]
        body = {'status': 'success', 'data': {'resultType': 'matrix', 'result': [{'metric': {}, 'values': values}]}}
        if 'bad' in query['query'][0]:
            body = {'status': 'error', 'error': 'parse error'}
        data = json.dumps(body).encode()
        self.send_response(200 if body['status'] == 'success' else 400)
        self.send_header('Content-Type', 'application/json')
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _server():
    server = http.server.HTTPServer(('127.0.0.1', 0), _Prom)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_probe_queries_a_bounded_range_and_keeps_the_query_in_evidence():
    server = _server()
    try:
        url = 'http://user:hunter2@127.0.0.1:%d' % server.server_port
        svc = {'name': 'backend', 'kind': 'backend', 'prometheus': {'url': url,
               'trends': [{'name': 'memory', 'query': 'max(process_resident_memory_bytes)', 'unit': 'bytes'}]}}
        findings = p.probe_all({'app-backend': [svc, {'name': 'proxy', 'kind': 'proxy'}]}, window_minutes=30,
                               max_points=60, timeout=2, warn_pct=25, crit_pct=35)
    finally:
        server.shutdown()
    assert len(findings) == 1
    f = findings[0]
    assert f['check'] == 'trend.memory' and f['status'] == 'crit' and f['host'] == 'app-backend'
    assert f['summary'] == 'backend memory grew 40 % in 4 minutes (100 MiB -> 140 MiB)'
    assert f['evidence']['query'] == 'max(process_resident_memory_bytes)'
    assert 'hunter2' not in json.dumps(f), 'credentials never reach evidence'
    path, headers = _Prom.requests[-1]
    params = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    assert params['step'] == ['31s'] and params['timeout'] == ['2s']  # 30 min / 59 steps; query timeout bounded
    span = float(params['end'][0]) - float(params['start'][0])
    assert span == 31 * 58 and span <= 1800, 'a whole number of steps: the last sample is now'
    assert headers.get('Authorization', '').startswith('Basic ')


def test_unreachable_prometheus_or_bad_query_is_an_unknown_finding():
    server = _server()
    port = server.server_port
    try:
        bad = {'name': 'backend', 'kind': 'backend',
               'prometheus': {'url': 'http://127.0.0.1:%d' % port, 'trends': [{'name': 'memory', 'query': 'bad('}]}}
        assert p.probe_all({'h': [bad]}, timeout=2)[0]['status'] == 'unknown'
    finally:
        server.shutdown()
        server.server_close()
    gone = {'name': 'backend', 'kind': 'backend', 'prometheus': {'url': 'http://127.0.0.1:%d' % port}}
    findings = p.probe_all({'h': [gone]}, timeout=1)
    assert [f['status'] for f in findings] == ['unknown', 'unknown']
    assert 'Prometheus query failed' in findings[0]['summary']


def _trend(service, kind, check, status='crit'):
    return {'check': check, 'host': 'h-' + service, 'service': service, 'status': status,
            'summary': '%s %s grew 60 %% in 30 minutes' % (service, check), 'evidence': {'kind': kind, 'query': 'q'}}


def test_diagnosis_reads_a_growing_process_memory_trend_as_memory_growth():
    out = d.rule_memory_growth([_trend('backend', 'backend', 'trend.memory')], {}, d.Commands())
    assert out and out[0]['pattern'] == 'memory_growth' and out[0]['confidence'] >= 0.8
    assert d.rule_memory_growth([_trend('redis', 'redis', 'trend.memory')], {}, d.Commands()) == []


def test_diagnosis_reads_other_growing_trends_as_gradual_degradation():
    out = d.rule_gradual_degradation([_trend('db', 'postgres', 'trend.connections', 'warn')], {}, d.Commands())
    assert [h['pattern'] for h in out] == ['gradual_degradation']
    assert 'Slowly worsening metrics' in out[0]['likely_cause']
    assert d.rule_gradual_degradation([_trend('backend', 'backend', 'trend.memory')], {}, d.Commands()) == []


def test_prometheus_section_of_incident_services_is_validated():
    from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import incident_input as i
    ok = {'name': 'backend', 'kind': 'backend', 'prometheus': {'url': 'http://127.0.0.1:9090',
                                                               'trends': [{'name': 'memory', 'query': 'q'}]}}
    assert i.service_problems(ok, 0) == []
    assert i.service_problems({'name': 'db', 'kind': 'backend', 'prometheus': {'url': ''}}, 0) == []
    bad = i.service_problems({'name': 'b', 'kind': 'backend', 'prometheus': {'url': 'ftp://x', 'trends': [{'name': 'm'}],
                                                                             'token': 'x'}}, 0)
    assert len(bad) == 3 and any('prometheus.url' in p for p in bad) and any('prometheus.trends' in p for p in bad)
