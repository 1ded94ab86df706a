"""The AWX/AAP controller API as the gate asks it (incident_approval.fetch_awx_job + awx_launcher), against a small
HTTP server on 127.0.0.1 standing in for the controller: a running job's launcher is accepted; a finished, unknown
or unauthorised job is not; the token goes in the Authorization header and nowhere else."""
import http.server
import json
import threading

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import incident_approval as ap

TOKEN = 'tok-not-a-real-secret-5c1e'


class Controller(object):
    def __init__(self, jobs, token=TOKEN):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                outer.requests.append((self.path, self.headers.get('Authorization')))
                if self.headers.get('Authorization') != 'Bearer %s' % token:
                    code, body = 401, {'detail': 'Authentication credentials were not provided.'}
                else:
                    job = jobs.get(self.path)
                    code, body = (200, job) if job is not None else (404, {'detail': 'Not found.'})
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

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
    '/api/v2/jobs/4244/': {'id': 4244, 'status': 'running',
                           'launched_by': {'id': 9, 'name': 'nightly', 'type': 'schedule'}},
}
OS_ROOT = {'launcher': 'root', 'source': 'OS user root (uid 0)', 'identities': ['root'], 'problems': [], 'notes': []}


def gate_identity(controller, job_id, environ=None):
    tv = {'awx_job_id': job_id, 'awx_user_name': 'mallory', 'remediation_awx_url': controller.url}
    env = {'JOB_ID': str(job_id), 'CONTROLLER_OAUTH_TOKEN': TOKEN} if environ is None else environ
    return ap.launcher_identity(tv, {'awx_job_id': job_id, 'awx_user_name': 'mallory'}, env, os_ident=OS_ROOT)


def test_a_running_jobs_launcher_is_accepted():
    with Controller(JOBS) as controller:
        out = gate_identity(controller, 4242)
    assert controller.requests == [('/api/v2/jobs/4242/', 'Bearer %s' % TOKEN)]
    assert out['launcher'] == 'carol' and out['problems'] == [] and out['awx'] == {'job_id': '4242', 'launcher': 'carol'}
    assert TOKEN not in json.dumps(out)


def test_a_scheduled_job_is_launched_by_its_schedule():
    with Controller(JOBS) as controller:
        out = gate_identity(controller, 4244)
    assert out['launcher'] == 'schedule:nightly' and out['problems'] == []


@pytest.mark.parametrize('job_id, environ, why', [
    (4243, None, 'AWX job 4243 is not running (status successful)'),
    (4299, None, 'the controller knows no job 4299'),
    (4242, {'JOB_ID': '4242', 'CONTROLLER_OAUTH_TOKEN': 'wrong'}, 'answered HTTP 401'),
    (4242, {'JOB_ID': '4242'}, 'no controller credential in the job environment'),
])
def test_a_finished_unknown_or_unauthorised_job_is_refused(job_id, environ, why):
    with Controller(JOBS) as controller:
        out = gate_identity(controller, job_id, environ)
    assert out['launcher'] == 'root' and len(out['problems']) == 1 and why in out['problems'][0], out
    assert 'awx_user_name=mallory ignored: the launcher is root' in ' '.join(out['notes'])
    assert TOKEN not in json.dumps(out)


def test_an_unreachable_controller_is_refused_in_bounded_time():
    server = http.server.HTTPServer(('127.0.0.1', 0), http.server.BaseHTTPRequestHandler)
    url = 'http://127.0.0.1:%d' % server.server_address[1]
    server.server_close()  # nothing listens there now
    with pytest.raises(ap.AwxUnverified) as err:
        ap.fetch_awx_job(url, 1, {'CONTROLLER_OAUTH_TOKEN': TOKEN}, timeout=2)
    assert 'could not be read' in str(err.value) and TOKEN not in str(err.value)


def test_basic_auth_from_the_credential_and_credentials_in_the_url_are_not_shown():
    seen = {}
    with Controller({}, token='unused') as controller:
        url = controller.url.replace('http://', 'http://user:pw@')
        with pytest.raises(ap.AwxUnverified) as err:
            ap.fetch_awx_job(url, 5, {'CONTROLLER_USERNAME': 'reader', 'CONTROLLER_PASSWORD': 'pw-5e2'})
        seen.update(controller.requests and {'auth': controller.requests[0][1]})
    assert seen['auth'].startswith('Basic ')
    assert 'user:pw' not in str(err.value) and 'pw-5e2' not in str(err.value)
