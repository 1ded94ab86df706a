"""Integration: an attacker puts the lab passwords where the probes read them, and triage at -vvv leaks none.

Issue 18 row 3: a request to the backend whose path holds a password (it lands in the app log, the probe keys
`by_path` on it) and a live PostgreSQL session whose application_name is the PostgreSQL and Redis passwords (the
probe keys `by_user_application` on it, the diagnosis names it). Triage runs with -vvv under the on-call console
and under the default callback; stdout, stderr and every file under incidents/<id>/ must hold none of the four
lab passwords, and no `password` key with a value. The redacted copies must be there (the data was read), and
two secret paths must stay two keys (nothing dropped when they become the same key).
"""
import json
import os
import re
import time
import urllib.error
import urllib.request

import psycopg2
import pytest

from conftest import lab_lock

REDACTED = '********'
# a key named like a password with a value that is not a redaction marker (JSON, YAML or key=value output)
PASSWORD_VALUE = re.compile(r'''(?i)["']?\b([a-z0-9_]*(?:password|passwd))["']?\s*[:=]\s*["']?([^"'\s,}\]]*)''')
HIDDEN = {REDACTED, 'value_specified_in_no_log_parameter', '', 'null', 'none', '~'}


def request_paths(lab_env):
    """GET /api/orders/<password> for every lab password: 404s, and one access-log line each."""
    for secret in lab_env.secrets:
        try:
            urllib.request.urlopen('%s/api/orders/%s' % (lab_env.base_url, secret), timeout=5).read()
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
        except urllib.error.URLError as exc:  # pragma: no cover - the lab is down
            raise AssertionError('the lab backend did not answer: %s' % exc)


def open_session(lab_env):
    """A live session whose application_name is the PostgreSQL and the Redis password, idle in a transaction."""
    conn = psycopg2.connect(host='127.0.0.1', port=lab_env.db_port, dbname='app', user='app',
                            password=lab_env.pg_password, connect_timeout=5,
                            application_name='%s %s' % (lab_env.pg_password, lab_env.redis_password))
    cur = conn.cursor()
    cur.execute('SELECT 1')  # opens the transaction: the session stays "idle in transaction"
    cur.fetchall()
    return conn


def leaks(text, secrets):
    found = [s for s in secrets if s in text]
    found += ['%s=%s' % m for m in PASSWORD_VALUE.findall(text) if m[1].lower() not in HIDDEN]
    return found


@pytest.mark.parametrize('callback', ['sre.incident_response.oncall', 'ansible.builtin.default'])
def test_triage_vvv_leaks_no_secret_from_request_paths_or_application_names(lab, run_playbook, incident, callback):
    with lab_lock():
        request_paths(lab)
        conn = open_session(lab)
        try:
            time.sleep(1.5)  # past the idle-in-transaction threshold given below
            extra = dict(incident['vars'], postgres_idle_in_transaction_warn_seconds=1)
            res = run_playbook('playbooks/triage.yml', extra, timeout=420, args=['-vvv'],
                               env={'ANSIBLE_STDOUT_CALLBACK': callback})
        finally:
            conn.close()
    assert res.rc == 0, res
    assert 'ESTABLISH LOCAL CONNECTION' in res.stdout or '<app-db>' in res.stdout, res  # really -vvv

    problems = {}
    for name, text in (('stdout', res.stdout), ('stderr', res.stderr)):
        if leaks(text, lab.secrets):
            problems[name] = leaks(text, lab.secrets)
    files = []
    for root, dummy, names in os.walk(incident['path']):
        for name in names:
            path = os.path.join(root, name)
            files.append(path)
            with open(path, encoding='utf-8', errors='replace') as handle:
                found = leaks(path + '\n' + handle.read(), lab.secrets)
            if found:
                problems[os.path.relpath(path, incident['path'])] = found
    assert not problems, 'secrets leaked: %s' % problems
    names = set(os.path.relpath(p, incident['path']) for p in files)
    assert {'findings.json', 'timeline.jsonl', 'diagnosis.json', 'incident.json'} <= names, names
    assert any(n.startswith('messages/') for n in names) and any(n.startswith('evidence/') for n in names), names

    # the secrets were read (so the test can fail): their redacted copies are in the findings, none dropped
    with open(os.path.join(incident['path'], 'findings.json')) as handle:
        findings = dict(('%s/%s' % (f['host'], f['check']), f) for f in json.load(handle))
    by_path = findings['app-backend/app.errors']['evidence']['by_path']
    redacted_paths = [p for p in by_path if p.startswith('/api/orders/%s' % REDACTED)]
    assert len(redacted_paths) >= len(lab.secrets), sorted(by_path)
    holders = findings['app-db/pg.connections']['evidence']['holders']
    assert any(h['application_name'] == '%s %s' % (REDACTED, REDACTED) for h in holders), holders
    assert findings['app-db/pg.connections']['status'] != 'ok'  # idle in transaction: the diagnosis saw it too
