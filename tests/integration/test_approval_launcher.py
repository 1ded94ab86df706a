"""Approval identity you can trust (issue 18, row 4): real playbooks against the real lab.

The launcher never comes from extra vars or from environment variables a caller sets. As root on the controller:
- `JOB_ID=4242 ansible-playbook playbooks/remediate.yml -e remediation_action=kill_query -e apply=true -e approved_by=root
  -e approval_reason=x -e awx_job_id=4242 -e awx_user_name=mallory` is refused as self-approval and no session
  is cancelled (the row's exact command, on the db_lock fault);
- `SUDO_USER=bob` (with or without a matching SUDO_UID), `USER=bob`, `LOGNAME=bob` typed by root leave root the
  launcher: approved_by=root is refused for flush_keys and the evictable key survives;
- in an AWX job, the launcher is what the controller's API says (a small HTTP server on 127.0.0.1 stands in for
  AWX, its URL in inventory): a running job's launcher is accepted (and cannot approve), a finished or unknown job
  leaves the launcher unestablished and the destructive action is refused whoever approves.
"""
import http.server
import json
import os
import threading
import uuid

import psycopg2
import pytest
import redis

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.incident_approval import os_identity

PLAYBOOK = 'playbooks/remediate.yml'
ME = os_identity()['launcher']
TOKEN = 'awx-test-token-3b7d'


def events(incident, kind):
    path = os.path.join(incident['path'], 'timeline.jsonl')
    out = [json.loads(line) for line in open(path) if line.strip()] if os.path.exists(path) else []
    return [e for e in out if e['kind'] == kind]


def refused_approval(incident):
    refused = [e for e in events(incident, 'approval') if e['data'].get('decision') == 'refused']
    assert refused, 'the refusal is not in the timeline'
    return refused[-1]['data']


@pytest.fixture
def marker(lab_env):
    client = redis.Redis(host='127.0.0.1', port=lab_env.redis_port, password=lab_env.redis_password,
                         decode_responses=True)
    key = 'cache:approval-identity:%s' % uuid.uuid4().hex[:8]
    client.set(key, 'x' * 1024)
    yield client, key
    client.delete(key)


def test_row_4_awx_claim_by_root_is_refused_as_self_approval(fault, run_playbook, incident, lab_env):
    sql = ("SELECT application_name, pid FROM pg_stat_activity WHERE application_name IN "
           "('report-job', 'checkout-worker-1', 'checkout-worker-2')")

    def sessions():
        conn = psycopg2.connect(host='127.0.0.1', port=lab_env.db_port, dbname='app', user='postgres',
                                password=lab_env.pg_superuser_password, connect_timeout=5)
        try:
            cur = conn.cursor()
            cur.execute(sql)
            return sorted(cur.fetchall())
        finally:
            conn.close()

    with fault('db_lock'):
        before = sessions()
        assert len(before) == 3, before
        res = run_playbook(PLAYBOOK, dict(
            incident['vars'], remediation_action='kill_query', apply=True, approved_by=ME, approval_reason='x', awx_job_id=4242,
            awx_user_name='mallory', pg_terminate_min_age=1, pg_terminate_grace_period=1), env={'JOB_ID': '4242'})
        assert res.rc != 0, res
        assert 'four-eyes rule' in res.stdout and "the approver '%s' is the launcher" % ME in res.stdout, res
        assert 'the launcher cannot be established' in res.stdout and 'remediation_awx_url is not set' in res.stdout, res
        data = refused_approval(incident)
        assert data['launcher'] == ME and 'mallory' not in data['identities'], data
        assert events(incident, 'action') == [], 'something was applied'
        assert sessions() == before, 'sessions were cancelled by a self-approved run'


@pytest.mark.parametrize('env', [
    {'SUDO_USER': 'bob'},
    {'SUDO_USER': 'cloudsdk', 'SUDO_UID': '1000', 'SUDO_GID': '1000', 'SUDO_COMMAND': '/bin/bash'},
    {'USER': 'bob', 'LOGNAME': 'bob', 'LNAME': 'bob', 'USERNAME': 'bob'},
], ids=['sudo_user', 'sudo_user_with_uid', 'user_logname'])
def test_environment_typed_by_the_caller_does_not_name_the_launcher(exclusive_lab, run_playbook, incident, marker, env):
    client, key = marker
    res = run_playbook(PLAYBOOK, dict(incident['vars'], remediation_action='flush_keys', apply=True, approved_by=ME,
                                      approval_reason='self-approval attempt'), env=env, timeout=300)
    assert res.rc != 0, res
    assert 'four-eyes rule' in res.stdout, res
    data = refused_approval(incident)
    assert data['launcher'] == ME and data['identities'] == [ME], data
    if 'SUDO_USER' in env:
        assert 'SUDO_USER=%s ignored' % env['SUDO_USER'] in res.stdout, res
    assert events(incident, 'action') == [] and client.exists(key) == 1, 'an evictable key was removed'


class FakeController(object):
    """GET /api/v2/jobs/<id>/ as AWX answers it, for a bearer token; on 127.0.0.1."""

    def __init__(self, jobs):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                outer.requests.append(self.path)
                ok = self.headers.get('Authorization') == 'Bearer %s' % TOKEN
                job = jobs.get(self.path) if ok else None
                code = 200 if job else (404 if ok else 401)
                body = json.dumps(job or {'detail': 'Not found.'}).encode()
                self.send_response(code)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


JOBS = {
    '/api/v2/jobs/4242/': {'id': 4242, 'status': 'running', 'launched_by': {'id': 3, 'name': 'carol', 'type': 'user'}},
    '/api/v2/jobs/4243/': {'id': 4243, 'status': 'successful', 'launched_by': {'id': 3, 'name': 'carol', 'type': 'user'}},
}


def awx_run(run_playbook, incident, tmp_path, controller, job_id, approved_by):
    inventory = tmp_path / 'awx-inventory.yml'
    inventory.write_text('all:\n  vars:\n    remediation_awx_url: %s\n' % controller.url)
    return run_playbook(PLAYBOOK, dict(incident['vars'], remediation_action='flush_keys', apply=True, approved_by=approved_by,
                                       approval_reason='awx', awx_job_id=job_id, awx_user_name='mallory'),
                        env={'JOB_ID': str(job_id), 'CONTROLLER_OAUTH_TOKEN': TOKEN}, args=['-i', str(inventory)],
                        timeout=300)


def test_awx_launcher_comes_from_the_controller_for_a_running_job(exclusive_lab, run_playbook, incident, marker,
                                                                  tmp_path):
    client, key = marker
    with FakeController(JOBS) as controller:
        res = awx_run(run_playbook, incident, tmp_path, controller, 4242, 'carol')
    assert controller.requests == ['/api/v2/jobs/4242/'], controller.requests
    assert res.rc != 0 and 'four-eyes rule' in res.stdout and "the approver 'carol' is the launcher" in res.stdout, res
    assert 'awx_user_name=mallory ignored: the controller says carol launched job 4242' in res.stdout, res
    data = refused_approval(incident)
    assert data['launcher'] == 'carol' and data['launcher_source'] == 'AWX job 4242 launched by user carol (controller API)'
    assert data['identity_problems'] == [] and ME in data['identities'], data
    assert client.exists(key) == 1
    text = open(os.path.join(incident['path'], 'timeline.jsonl')).read()
    assert TOKEN not in text and TOKEN not in res.stdout


@pytest.mark.parametrize('job_id, why', [(4243, 'is not running (status successful)'), (4299, 'knows no job 4299')],
                         ids=['finished', 'unknown'])
def test_awx_job_the_controller_does_not_confirm_is_refused(exclusive_lab, run_playbook, incident, marker, tmp_path,
                                                            job_id, why):
    client, key = marker
    with FakeController(JOBS) as controller:
        res = awx_run(run_playbook, incident, tmp_path, controller, job_id, 'bob')
    assert res.rc != 0 and 'the launcher cannot be established' in res.stdout and why in res.stdout, res
    data = refused_approval(incident)
    assert data['launcher'] == ME and data['identity_problems'], data
    assert events(incident, 'action') == [] and client.exists(key) == 1
