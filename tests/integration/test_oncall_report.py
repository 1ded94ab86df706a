"""The on-call console and report.html on one real lab incident, as `make demo` runs it.

One story (module fixture): bad_deploy injected; triage, the open incident's report, the rollback applied with an
approval, resolve - every run with the collection's default stdout callback, sre.incident_response.oncall. Then:
- the console printed what a responder needs and nothing else, failures in full, and works under ansible-runner;
- report.html of the resolved incident opens in headless Chromium (Debian's `chromium`, installed by
  scripts/setup-system.sh): a screenshot, no console message, the SVG with one lane per host and one mark per
  finding event; self-contained and redacted.
"""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files

from conftest import ROOT, heal, inject, lab_lock, run  # noqa: E402

ONCALL = {'ANSIBLE_STDOUT_CALLBACK': 'sre.incident_response.oncall'}
TRIAGE_PLAYS = [
    'Triage 0-1 min - acknowledge and classify',
    'Triage 1-3 min - assess scope and recent changes (every area of every host at once)',
    'Triage 3-4 min - diagnose and communicate',
    'Triage 4-5 min - mitigate or investigate',
]
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync', '--no-first-run']


@pytest.fixture(scope='module')
def story(lab, tmp_path_factory):
    root = tmp_path_factory.mktemp('story')
    incident_id = 'INC-20261201-0300-d3m0'
    base = {'incident_id': incident_id, 'incident_dir': str(root / 'incidents')}
    out = {'id': incident_id, 'path': str(root / 'incidents' / incident_id), 'root': root}
    with lab_lock():
        inject('bad_deploy')
        try:
            out['triage'] = run('playbooks/triage.yml', base, env=ONCALL, timeout=300)
            assert out['triage'].rc == 0, out['triage']
            out['open_report'] = run('playbooks/report.yml', base, env=ONCALL, timeout=120)
            assert out['open_report'].rc == 0, out['open_report']
            with open(os.path.join(out['path'], 'report.html')) as handle:
                out['open_html'] = handle.read()
            out['apply'] = run('playbooks/remediate.yml',
                               dict(base, remediation_action='rollback', service='backend', apply=True,
                                    approved_by='alice', approval_reason='errors since the 1.1.0 deploy'),
                               env=ONCALL, timeout=300)
            assert out['apply'].rc == 0, out['apply']
            out['resolve'] = run('playbooks/resolve.yml', dict(base, resolved_by='alice'), env=ONCALL, timeout=120)
            assert out['resolve'].rc == 0, out['resolve']
        finally:
            heal('bad_deploy')
    return out


def lines(result):
    return result.stdout.splitlines()


# --- the console -------------------------------------------------------------------------------------------------

def test_triage_console_prints_what_the_responder_needs(story):
    out = lines(story['triage'])
    text = story['triage'].stdout
    assert [x[3:].split('  [')[0] for x in out if x.startswith('== ')] == TRIAGE_PLAYS
    assert len([x for x in out if re.match(r'^   done in \d+(\.\d s| min \d\d s)$', x)]) == len(TRIAGE_PLAYS)
    assert re.search(r'^   INCIDENT %s  SEV\d ' % story['id'], text, re.M)
    assert re.search(r'^   SEVERITY SEV\d -> SEV2$', text, re.M) or re.search(r'^   INCIDENT %s  SEV2 ' % story['id'], text, re.M)
    # the crit finding is printed inside the phase that found it
    scope = out.index(next(x for x in out if x.startswith('== Triage 1-3')))
    changes = out.index(next(x for x in out if x.startswith('== Triage 3-4')))
    assert any(re.match(r'^   CRIT +app-backend/app\.errors: /api/orders: ', x) for x in out[scope:changes]), text
    assert re.search(r'^   DIAGNOSIS 1\. error_spike_after_deploy \(confidence 0\.\d\d\): Bug in the new code', text, re.M)
    rollback = ('ansible-playbook playbooks/remediate.yml -i inventory/lab -e remediation_action=rollback -e incident_id=%s '
                '-e service=backend' % story['id'])
    recap = out.index(next(x for x in out if x.startswith('PLAY RECAP ')))
    assert out[recap - 2] == 'NEXT ' + rollback, text
    assert re.search(r'^app-backend +: ok=\d+ +changed=\d+ +unreachable=0 +failed=0', text, re.M)
    for noise in ('ok: [', 'skipping: [', 'TASK [', 'PLAY [', '"msg":'):
        assert noise not in text, noise
    assert len(out) < 70
    # every finding not ok in findings.json was printed
    for finding in files.read_json(os.path.join(story['path'], 'findings.json')):
        if finding['status'] != 'ok':
            assert '%s/%s: ' % (finding['host'], finding['check']) in text, finding


def test_remediation_console_shows_plan_approval_and_verification(story):
    text = story['apply'].stdout
    assert 'PLAN rollback on backend (app-backend):' in text and 'app-backend:1.1.0' in text
    assert re.search(r'^   VERIFIED rollback on backend: ', text, re.M), text
    assert 'TASK [' not in text and 'ok: [' not in text


def test_failures_are_shown_in_full(run_playbook, incident):
    res = run_playbook('playbooks/remediate.yml', dict(incident['vars'], remediation_action='reboot_everything'), env=ONCALL)
    assert res.rc != 0
    assert re.search(r'^TASK \[Check the action\] \*+$', res.stdout, re.M), res
    assert 'fatal: [app-backend]: FAILED! =>' in res.stdout and '-e remediation_action=... is required' in res.stdout


def test_console_under_ansible_runner_as_awx_runs_it(story, tmp_path):
    """AWX: ANSIBLE_STDOUT_CALLBACK in the job environment; ansible-runner wraps it in awx_display."""
    ansible_runner = pytest.importorskip('ansible_runner')
    env = {'ANSIBLE_CONFIG': os.path.join(ROOT, 'ansible.cfg'), 'ANSIBLE_NOCOLOR': '1',
           'PATH': os.path.join(ROOT, '.venv', 'bin') + os.pathsep + os.environ.get('PATH', ''),
           'ANSIBLE_STDOUT_CALLBACK': 'sre.incident_response.oncall'}
    (tmp_path / 'runner').mkdir()
    result = ansible_runner.run(private_data_dir=str(tmp_path / 'runner'), project_dir=ROOT, playbook='playbooks/report.yml',
                                inventory=os.path.join(ROOT, 'inventory', 'lab'),
                                extravars={'incident_id': story['id'], 'incident_dir': str(story['root'] / 'incidents')},
                                envvars=env, quiet=True, timeout=300)
    stdout = result.stdout.read()
    assert result.rc == 0 and result.status == 'successful', stdout[-3000:]
    assert '== Render the incident report (report.html)' in stdout and 'TASK [' not in stdout
    assert re.search(r'Report \S+/report\.html \((updated|unchanged)\): SEV2, 4 host lane\(s\)', stdout), stdout
    events = [e['event'] for e in result.events]
    assert 'playbook_on_play_start' in events and 'runner_on_ok' in events and 'playbook_on_stats' in events


# --- the report ----------------------------------------------------------------------------------------------------

def test_open_incident_report_on_demand(story):
    assert 'Investigating' in story['open_html'] and 'Resolved' not in story['open_html'].split('</header>')[0]
    assert re.search(r'Report \S+/report\.html \(updated\): SEV2', story['open_report'].stdout)


def _chromium():
    exe = shutil.which('chromium')
    assert exe, 'chromium is missing: run make setup (scripts/setup-system.sh installs it)'
    return exe


def test_report_opens_in_headless_chromium(story, lab_env):
    path = os.path.join(story['path'], 'report.html')
    html = open(path).read()
    # self-contained: nothing fetched from anywhere (the SVG namespace is a name, not a request)
    assert not re.search(r'''(src|href)\s*=\s*["']?\s*(https?:)?//''', html, re.I)
    assert not re.search(r'url\(|@import|<script|<link', html, re.I)
    for secret in lab_env.secrets:
        assert secret not in html
    assert 'resolve' in html and 'Resolved' in html.split('</header>')[0]

    events = files.read_jsonl(os.path.join(story['path'], 'timeline.jsonl'))
    finding_events = [e for e in events if e['kind'] == 'finding']
    hosts = {f['host'] for f in files.read_json(os.path.join(story['path'], 'findings.json'))}
    chain = [e['kind'] for e in events if e['kind'] in ('plan', 'approval', 'action', 'verify')]
    assert {'plan', 'approval', 'action', 'verify'} <= set(chain)

    exe = _chromium()
    profile = tempfile.mkdtemp(prefix='report-chromium-')
    shot = os.path.join(story['root'], 'report.png')
    try:
        url = 'file://' + path
        dom = subprocess.run([exe] + CHROMIUM_FLAGS + ['--user-data-dir=' + profile, '--enable-logging=stderr', '--v=0',
                                                       '--dump-dom', url], capture_output=True, text=True, timeout=120, check=False)
        snap = subprocess.run([exe] + CHROMIUM_FLAGS + ['--user-data-dir=' + profile, '--hide-scrollbars',
                                                        '--window-size=1240,1100', '--screenshot=' + shot, url],
                              capture_output=True, text=True, timeout=120, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert dom.returncode == 0 and snap.returncode == 0, (dom.stderr[-2000:], snap.stderr[-2000:])
    # the page logged nothing to its console (it has no script; any message is an error or a blocked load)
    assert not [x for x in dom.stderr.splitlines() if ':CONSOLE' in x], dom.stderr[-2000:]
    with open(shot, 'rb') as handle:
        png = handle.read()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 20000

    rendered = dom.stdout
    svg = re.search(r'<svg id="timeline-svg".*?</svg>', rendered, re.S)
    assert svg, rendered[:2000]
    svg = svg.group(0)
    lanes = re.findall(r'<g class="lane" data-host="([^"]+)"', svg)
    assert sorted(lanes) == sorted(hosts) and len(lanes) == len(set(lanes))
    marks = re.findall(r'<circle class="mark finding s-(\w+)" data-key="([^"]+)"', svg)
    assert len(marks) == len(finding_events)
    assert sorted(marks) == sorted((e['data']['status'], '%s/%s' % (e['host'], e['data']['check'])) for e in finding_events)
    assert len(re.findall(r'<path class="message"', svg)) == sum(1 for e in events if e['kind'] == 'comms')
    assert len(re.findall(r'<g class="step step-(plan|approval|action|verify)"', svg)) == len(chain)
    assert re.findall(r'<g class="severity-change">', svg) and 'SEV2' in svg
    assert 'acknowledge due' in svg and 'next update due' in svg
    # the grid: the worst status each cell had (app.errors was crit before the rollback, ok after it)
    cell = re.search(r'<a class="s-(\w+)" href="#f-app-backend-app-errors"', rendered)
    assert cell and cell.group(1) == 'crit'
    assert 'id="f-app-backend-app-errors"' in rendered
    assert re.search(r'<b>error_spike_after_deploy</b>.*?href="#f-app-backend-deploy-recent"', rendered, re.S)
    postmortem = [n for n in os.listdir(story['path']) if n.startswith('postmortem-')]
    with open(os.path.join(story['path'], postmortem[0])) as handle:
        title = handle.readline().strip()
    assert len(postmortem) == 1 and title.startswith('# ') and title in rendered
    print('report screenshot: %s' % shot)
