"""Hostile input through every outside path of the lab (issue 18): data, never code.

One attack puts the corpus (tests/hostile_corpus.py: Jinja `{{ }}` and `{% %}`, `$(...)`, backticks, `<script>`,
`<!channel>`, the lab's passwords, a 1 MiB string, invalid UTF-8) into every place the collection reads from
outside at once:

- log lines: 5xx lines written to the backend container's own log stream (what `docker logs` returns);
- PostgreSQL: sessions whose application_name is a payload, held idle in a transaction during the runs;
- Redis: slow scripts whose key argument is a payload (they land in SLOWLOG), and keys named by payloads;
- the environment of ansible-playbook: SUDO_USER, USER, LOGNAME, JOB_ID and PGAPPNAME set to payloads;
- an Alertmanager notification whose labels and annotations are payloads (playbooks/alert.yml by hand).

Then triage (delivering to a Slack receiver on 127.0.0.1), an update, report, a remediation plan and resolve run on
the incident, each with a time limit. Asserted: no payload ran (no canary file), no Jinja was rendered, no lab secret
is in any output or any file of the incident, report.html is escaped and carries a strict CSP, the Slack text is
escaped, the Markdown documents show the payloads as text (no HTML, link or image), and every run ended.
"""
import glob
import json
import os
import pwd
import re
import shutil
import subprocess
import time
import uuid

import pytest
from markdown_it import MarkdownIt

from conftest import LabEnv, heal, lab_lock, run  # noqa: E402
from hostile_corpus import ACTIVE_HTML, ACTIVE_SLACK, Corpus  # noqa: E402
from test_comms_delivery import SECRETS as COMMS_SECRETS, Receiver, comms_vars  # noqa: E402

RUN_LIMIT = 420  # seconds; a run still going then is a loop over data that never ends (a failure)


def _pg_connect(application_name):
    import psycopg2
    return psycopg2.connect(host='127.0.0.1', port=LabEnv.db_port, dbname='app', user='app',
                            password=LabEnv.pg_password, application_name=application_name, connect_timeout=5)


def _redis():
    import redis
    return redis.Redis(host='127.0.0.1', port=LabEnv.redis_port, password=LabEnv.redis_password, socket_timeout=5)


def _log_lines(corpus):
    """5xx access-log lines in the backend's JSON format, one per payload, plus a 1 MiB one and invalid UTF-8."""
    now = time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())
    out = []
    for i, payload in enumerate(corpus.everything() * 8):  # each path often enough to be a failing endpoint
        line = {'ts': '%s.%03dZ' % (now, i % 1000), 'level': 'ERROR', 'msg': 'KeyError: %s' % payload,
                'method': 'GET', 'path': '/api/%s' % payload, 'status': 500, 'latency_ms': 3.0}
        out.append(json.dumps(line).encode('utf-8'))
    out.append(json.dumps({'ts': now + '.999Z', 'level': 'ERROR', 'msg': corpus.big(), 'method': 'GET',
                           'path': '/api/orders/' + corpus.big(4096), 'status': 500, 'latency_ms': 1.0}).encode())
    out.append(b'{"ts": "' + now.encode() + b'.998Z", "level": "ERROR", "msg": "' + corpus.invalid_utf8()
               + b'", "method": "GET", "path": "/api/orders/' + corpus.invalid_utf8() + b'", "status": 500}')
    return b'\n'.join(out) + b'\n'


def _write_container_log(container, data):
    """Lines on the container's stdout, where the backend logs (docker logs shows them as the app's own)."""
    proc = subprocess.run(['docker', 'exec', '-i', container, 'sh', '-c', 'cat > /proc/1/fd/1'],
                          input=data, capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr


def _timed(path, extra_vars, env=None, args=None):
    try:
        return run(path, extra_vars, env=env, timeout=RUN_LIMIT, args=args)
    except subprocess.TimeoutExpired as exc:
        return exc


def _files(root):
    out = {}
    for path in glob.glob(os.path.join(root, '**', '*'), recursive=True):
        if os.path.isfile(path):
            with open(path, 'rb') as handle:
                out[path] = handle.read().decode('utf-8', 'replace')
    return out


@pytest.fixture(scope='module')
def attack(lab, tmp_path_factory):
    canaries = '/tmp/hc%s' % uuid.uuid4().hex[:6]  # short: application_name keeps 63 bytes
    os.makedirs(canaries)
    corpus = Corpus(canaries, secrets=LabEnv.secrets)
    root = tmp_path_factory.mktemp('hostile')
    incident_id = 'INC-HOSTILE-%s' % uuid.uuid4().hex[:6]
    incident = {'id': incident_id, 'dir': str(root / 'incidents'), 'path': str(root / 'incidents' / incident_id),
                'vars': {'incident_id': incident_id, 'incident_dir': str(root / 'incidents')}}
    receiver = Receiver()
    code = corpus.code()
    # The variables the collection reads (identity, AWX job, libpq's application name). LOGNAME stays the real
    # user: ansible-core itself puts getpass.getuser() (LOGNAME first) into the shell line that expands `~` for
    # its temporary directory, so the environment of ansible-playbook is trusted by Ansible, not by us.
    env = {'SUDO_USER': code[0], 'SUDO_UID': '0', 'USER': code[4], 'LOGNAME': pwd.getpwuid(os.getuid()).pw_name,
           'JOB_ID': code[1], 'PGAPPNAME': code[4][:63], 'ANSIBLE_STDOUT_CALLBACK': 'sre.incident_response.oncall'}
    out = {'corpus': corpus, 'incident': incident, 'receiver': receiver, 'runs': {}}
    sessions, keys = [], []
    with lab_lock():
        try:
            _write_container_log(LabEnv.backend, _log_lines(corpus))
            for name in code[:4] + [code[4][:63], LabEnv.pg_password, LabEnv.redis_password, '<script>alert(1)</script>']:
                conn = _pg_connect(name[:63])
                cur = conn.cursor()
                cur.execute('SELECT 1')  # idle in transaction from now on
                sessions.append(conn)
            r = _redis()
            busy = "local t = redis.call('TIME'); local s = t[1] * 1e6 + t[2]; " \
                   "repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - s > 60000; return KEYS[1]"
            for payload in code[:3] + ['<!channel>', LabEnv.redis_password]:
                key = 'hostile:%s' % payload
                r.set(key, corpus.big(64 * 1024))
                keys.append(key)
                r.eval(busy, 1, key)
            r.set(b'hostile:' + corpus.invalid_utf8(), b'x')
            keys.append(b'hostile:' + corpus.invalid_utf8())
            time.sleep(2)  # idle in transaction for longer than the 1 s threshold below

            triage_vars = comms_vars(incident, receiver, postgres_idle_in_transaction_warn_seconds=1)
            out['runs']['triage'] = _timed('playbooks/triage.yml', triage_vars, env=env, args=['-vvv'])
            out['runs']['update'] = _timed('playbooks/communicate.yml', dict(triage_vars, status='Identified'),
                                           env=env, args=['-vvv'])
            out['runs']['report'] = _timed('playbooks/report.yml', incident['vars'], env=env, args=['-vvv'])
            out['runs']['plan'] = _timed('playbooks/remediate.yml', dict(incident['vars'], remediation_action='kill_query'),
                                         env=env, args=['-vvv'])
            out['runs']['resolve'] = _timed('playbooks/resolve.yml', dict(incident['vars'], resolved_by='alice'),
                                            env=env, args=['-vvv'])
        finally:
            for conn in sessions:
                try:
                    conn.close()
                except Exception:  # pylint: disable=broad-except
                    pass
            try:
                if keys:
                    _redis().delete(*keys)
                    _redis().slowlog_reset()
            finally:
                receiver.close()
                # the injected 5xx lines stay in the backend's log for the whole window: a fresh container
                heal('pool_exhaustion')
    out['files'] = _files(incident['path'])
    yield out
    shutil.rmtree(canaries, ignore_errors=True)


def _outputs(out):
    texts = {}
    for name, res in out['runs'].items():
        texts[name + ':stdout'] = getattr(res, 'stdout', None) or ''
        texts[name + ':stderr'] = getattr(res, 'stderr', None) or ''
        if isinstance(texts[name + ':stdout'], bytes):
            texts[name + ':stdout'] = texts[name + ':stdout'].decode('utf-8', 'replace')
            texts[name + ':stderr'] = texts[name + ':stderr'].decode('utf-8', 'replace')
    texts.update(out['files'])
    for i, req in enumerate(out['receiver'].requests):
        texts['delivery %d %s' % (i, req['path'])] = json.dumps(req['json'])
    return texts


def test_every_run_ended_and_succeeded(attack):
    for name, res in attack['runs'].items():
        assert not isinstance(res, subprocess.TimeoutExpired), '%s did not end within %d s' % (name, RUN_LIMIT)
        assert res.rc == 0, (name, res)


def test_no_payload_ran(attack):
    assert attack['corpus'].executed() == []


def test_the_data_reached_the_incident(attack):
    """The attack is real: the payloads are in the findings (as data), or this suite tests nothing."""
    findings = attack['files'][os.path.join(attack['incident']['path'], 'findings.json')]
    assert "lookup(" in findings and '/api/' in findings
    checks = {f['check'] for f in json.loads(findings) if f['status'] != 'ok'}
    assert 'app.errors' in checks and 'redis.slowlog' in checks, checks


def test_no_jinja_was_rendered(attack):
    texts = _outputs(attack)
    for payload, rendered in Corpus.math():
        for name, text in texts.items():
            assert rendered not in text, '%r rendered as %r in %s' % (payload, rendered, name)


def test_printed_commands_hold_no_outside_text(attack):
    """A person pastes NEXT into a shell, and ansible-playbook templates every -e value."""
    dx = json.loads(attack['files'][os.path.join(attack['incident']['path'], 'diagnosis.json')])
    commands = [h.get('first_action') or '' for h in dx['hypotheses']] + [h.get('then') or '' for h in dx['hypotheses']]
    # the console's NEXT lines and the -vvv dump: from the command on (a summary before it quotes the data)
    commands += [line[line.index('ansible-playbook '):] for line in attack['runs']['triage'].stdout.splitlines()
                 if 'ansible-playbook ' in line]
    assert any('-e remediation_action=kill_query' in c for c in commands), commands  # the foreign sessions got their action
    for command in commands:
        for piece in ('{{', '{%', '$(', '`', 'lookup', 'canary', '<script>'):
            assert piece not in command, (piece, command)


def test_no_secret_anywhere(attack):
    for name, text in _outputs(attack).items():
        # a delivery carries its own target's credential (PagerDuty's routing key is in the body it is sent in)
        secrets = LabEnv.secrets if name.startswith('delivery ') else LabEnv.secrets + COMMS_SECRETS
        for secret in secrets:
            assert secret not in text, 'a secret leaked into %s' % name


def test_report_html_is_escaped_with_a_strict_csp(attack):
    html = attack['files'][os.path.join(attack['incident']['path'], 'report.html')]
    for active in ACTIVE_HTML:
        assert active not in html, active
    assert '&lt;script&gt;alert(1)&lt;/script&gt;' in html  # the data is shown, escaped
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp, 'no CSP meta tag'
    policy = csp.group(1)
    assert "default-src 'none'" in policy and "script-src 'unsafe-inline'" not in policy, policy


def test_slack_text_is_escaped(attack):
    slack = [json.dumps(r['json'], ensure_ascii=False) for r in attack['receiver'].requests
             if r['path'].startswith('/services/')]
    assert slack, 'nothing was delivered to Slack'
    assert any('&lt;script&gt;alert(1)&lt;/script&gt;' in text for text in slack), slack  # the data went out
    for text in slack:
        for active in ACTIVE_SLACK + ('<script>',):
            assert active not in text, (active, text[:2000])


def test_markdown_documents_show_outside_text_as_text(attack):
    """messages/ and the post-mortem: no HTML, link or image from data; the payloads are there as text."""
    md = MarkdownIt('commonmark').enable('table')
    shown = ''
    names = [p for p in attack['files'] if p.endswith('.md')]
    assert any('/messages/' in n and n.endswith('-update-identified.md') for n in names), names
    for name in names:
        tokens = md.parse(attack['files'][name])
        kinds = {t.type for t in tokens} | {c.type for t in tokens for c in (t.children or [])}
        assert not kinds & {'html_inline', 'html_block', 'link_open', 'image'}, (name, kinds)
        shown += ''.join(c.content for t in tokens for c in (t.children or []) if c.type in ('text', 'code_inline'))
    assert '<script>alert(1)</script>' in shown and '$(touch ' in shown


# --- alerts -----------------------------------------------------------------------------------------------------

def _notification(corpus, status='firing'):
    code = corpus.code()
    return {
        'version': '4', 'groupKey': '{}:{alertname="Hostile%s"}' % corpus.token, 'status': status,
        'receiver': 'sre', 'groupLabels': {'alertname': 'Hostile%s' % corpus.token},
        'commonLabels': {}, 'commonAnnotations': {}, 'externalURL': 'http://127.0.0.1:9093',
        'alerts': [{
            'status': status, 'fingerprint': 'f%s' % corpus.token,
            'startsAt': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), 'endsAt': '0001-01-01T00:00:00Z',
            'generatorURL': 'http://127.0.0.1:9090/graph?g0.expr=%s' % code[4],
            'labels': {'alertname': 'Hostile%s' % corpus.token, 'team': code[1], 'service': code[0],
                       'severity': 'critical', 'instance': code[5], 'job': '<script>alert(1)</script>'},
            'annotations': {'summary': 'sum {{ 7*7 }} %s' % code[2], 'description': ' '.join(corpus.everything()),
                            'runbook_url': code[6], 'big': corpus.big(256 * 1024)},
        }],
    }


def test_alert_labels_and_annotations_are_data(lab, tmp_path):
    corpus = Corpus(tmp_path / 'canaries', secrets=LabEnv.secrets)
    os.makedirs(corpus.canary_dir)
    note = tmp_path / 'notification.json'
    note.write_text(json.dumps(_notification(corpus)))
    incidents = tmp_path / 'incidents'
    res = run('playbooks/alert.yml', {'alert_notification_file': str(note), 'incident_dir': str(incidents),
                                      'triage_probe': False}, timeout=RUN_LIMIT)
    assert res.rc == 0, res
    assert corpus.executed() == []
    dirs = glob.glob(str(incidents / '*' / 'incident.json'))
    assert len(dirs) == 1, dirs
    record = json.load(open(dirs[0]))
    assert 'sum {{ 7*7 }}' in json.dumps(record) or 'sum {{ 7*7 }}' in open(
        os.path.join(os.path.dirname(dirs[0]), 'timeline.jsonl')).read()
    texts = _files(os.path.dirname(dirs[0]))
    texts['stdout'] = res.stdout
    for name, text in texts.items():
        assert 'sum 49' not in text, name
        for secret in LabEnv.secrets:
            assert secret not in text, 'a secret leaked into %s' % name


def test_a_deep_or_broken_notification_is_refused_clearly(lab, tmp_path):
    for body in (Corpus.deep_json(), '{"alerts": [', Corpus.invalid_utf8().decode('latin-1')):
        note = tmp_path / 'n.json'
        note.write_text(body)
        res = run('playbooks/alert.yml', {'alert_notification_file': str(note), 'incident_dir': str(tmp_path / 'i')},
                  timeout=120)
        assert res.rc != 0, res
        assert 'Traceback' not in res.stdout + res.stderr and 'RecursionError' not in res.stdout + res.stderr, res
        assert not os.path.exists(str(tmp_path / 'i')) or not os.listdir(str(tmp_path / 'i')), res
