"""The timeline callback (plugins/callback/timeline.py) and the timeline_event action in real ansible-playbook runs.

Covers every v2_* hook the callback implements: playbook start, play start, task start, handler task start,
runner start, ok, failed, skipped, unreachable, and stats (the post-mortem draft). No lab service is needed:
the hosts are local (plus one unreachable host on a closed loopback port).
"""
import json
import os
import subprocess
import textwrap
import uuid

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.timeline import task_results

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, '.venv', 'bin')

PLANTED_PASSWORD = 'Planted-Pa55word-7q2x'
PLANTED_TOKEN = 'PlantedWebhookTok3n9x'
PLANTED_WEBHOOK = 'https://hooks.slack.com/services/TPLANT01/BPLANT02/' + PLANTED_TOKEN

INVENTORY = textwrap.dedent('''\
    ---
    all:
      hosts:
        h1: {ansible_connection: local}
        h2: {ansible_connection: local}
      children:
        ghosts:
          hosts:
            ghost: {ansible_connection: ssh, ansible_host: 127.0.0.1, ansible_port: 1, ansible_user: nobody}
      vars:
        ansible_python_interpreter: "{{ ansible_playbook_python }}"
        # the password hides behind a harmless name: only the password_var reference marks it secret
        my_db_ref: %s
        incident_services:
          - name: db
            kind: postgres
            postgres: {password_var: my_db_ref}
        comms_slack_webhook_url: %s
    ''' % (PLANTED_PASSWORD, PLANTED_WEBHOOK))

PLAYBOOK = textwrap.dedent('''\
    ---
    - name: Timeline hooks
      hosts: h1,h2
      gather_facts: false
      tasks:
        - name: Say the secrets
          ansible.builtin.debug:
            msg: "db {{ my_db_ref }} hook {{ comms_slack_webhook_url }} token {{ comms_slack_webhook_url | basename }}"
        - name: Change something
          ansible.builtin.command: "echo {{ my_db_ref }}"
          changed_when: true
          notify: Handle it
        - name: Hidden
          ansible.builtin.command: "echo {{ my_db_ref }} {{ comms_slack_webhook_url }}"
          changed_when: false
          no_log: true
        - name: Fail with the secrets
          ansible.builtin.fail:
            msg: "cannot log in with password {{ my_db_ref }} to {{ comms_slack_webhook_url }}"
          when: inventory_hostname == 'h2'
          ignore_errors: true
        - name: Never runs
          ansible.builtin.debug:
            msg: skipped
          when: false
        - name: Record a note
          sre.incident_response.timeline_event:
            kind: note
            summary: "note with {{ my_db_ref }} and {{ comms_slack_webhook_url | basename }}"
            data:
              token: "{{ comms_slack_webhook_url | basename }}"
              detail: "{{ my_db_ref }}"
          run_once: true
      handlers:
        - name: Handle it
          ansible.builtin.command: "echo handled"
          changed_when: false

    - name: Unreachable host
      hosts: ghosts
      gather_facts: false
      tasks:
        - name: Ping the ghost
          ansible.builtin.ping:
    ''')


def env(extra=None):
    out = dict(os.environ)
    out['PATH'] = VENV_BIN + os.pathsep + out.get('PATH', '')
    out['ANSIBLE_CONFIG'] = os.path.join(ROOT, 'ansible.cfg')
    out['ANSIBLE_NOCOLOR'] = '1'
    out['ANSIBLE_TIMEOUT'] = '3'
    out.update(extra or {})
    return out


def playbook_cmd(playbook, inventory, extra_vars=None):
    cmd = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', str(inventory), str(playbook)]
    if extra_vars:
        cmd += ['-e', json.dumps(extra_vars)]
    return cmd


def run(playbook, inventory, extra_vars=None, extra_env=None):
    return subprocess.run(playbook_cmd(playbook, inventory, extra_vars), cwd=ROOT, env=env(extra_env),
                          capture_output=True, text=True, timeout=300, check=False)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def all_text(directory):
    out = {}
    for base, _dirs, names in os.walk(str(directory)):
        for name in names:
            with open(os.path.join(base, name), 'rb') as handle:
                out[os.path.join(base, name)] = handle.read().decode('utf-8', 'replace')
    return out


def test_every_hook_records_and_nothing_secret_reaches_the_files(tmp_path):
    inventory = write(tmp_path, 'inventory.yml', INVENTORY)
    playbook = write(tmp_path, 'hooks.yml', PLAYBOOK)
    incident_id = 'INC-TL-%s' % uuid.uuid4().hex[:6]
    root = tmp_path / 'incidents'
    proc = run(playbook, inventory, {'incident_id': incident_id, 'incident_dir': str(root)})
    assert proc.returncode == 4, proc.stdout[-3000:] + proc.stderr[-2000:]  # the ghost is unreachable
    # the stdout callback still works beside ours
    assert 'PLAY RECAP' in proc.stdout and 'sre.incident_response.timeline' not in proc.stderr

    path = root / incident_id
    events = files.read_jsonl(str(path / 'timeline.jsonl'))
    raw_lines = (path / 'timeline.jsonl').read_text().splitlines()
    assert len(raw_lines) == len(events)  # every line is valid JSON
    assert {e['incident_id'] for e in events} == {incident_id}
    assert all(set(e) == {'ts', 'incident_id', 'kind', 'host', 'summary', 'data'} for e in events)

    plays = [e for e in events if e['kind'] == 'play']
    assert [(e['data']['phase'], e['data']['play']) for e in plays] == [
        ('start', 'Timeline hooks'), ('end', 'Timeline hooks'), ('start', 'Unreachable host'), ('end', 'Unreachable host')]
    assert plays[0]['data']['first_in_run'] is True and plays[2]['data']['first_in_run'] is False
    assert plays[-1]['data']['stats']['ghost']['unreachable'] == 1
    assert len({e['data']['run'] for e in plays}) == 1

    # one compact event per task (and play), plus a detailed event per failed or unreachable result
    compact = [e for e in events if e['kind'] == 'task' and 'hosts' in e['data']]
    assert [(e['data']['task'], e['host']) for e in compact] == [
        ('Say the secrets', None), ('Change something', None), ('Hidden', None), ('Fail with the secrets', None),
        ('Never runs', None), ('Record a note', 'h1'), ('Handle it', None), ('Ping the ghost', 'ghost')]
    assert compact[3]['summary'] == ('Fail with the secrets: ok 0, changed 0, failed 1, unreachable 0, skipped 1'
                                     ' (1 failure ignored)')
    details = [e for e in events if e['kind'] == 'task' and e['data'].get('detail')]
    assert [(e['data']['task'], e['host'], e['data']['status']) for e in details] == [
        ('Fail with the secrets', 'h2', 'failed'), ('Ping the ghost', 'ghost', 'unreachable')]
    assert len(compact) + len(details) == len([e for e in events if e['kind'] == 'task'])

    tasks = {(r['task'], r['host']): r for r in task_results(events)}
    assert tasks[('Say the secrets', 'h1')]['status'] == 'ok'
    assert tasks[('Change something', 'h2')]['status'] == 'changed'
    assert tasks[('Hidden', 'h1')]['status'] == 'ok' and 'msg' not in tasks[('Hidden', 'h1')]
    assert tasks[('Fail with the secrets', 'h2')]['status'] == 'failed'
    assert tasks[('Fail with the secrets', 'h2')]['ignored'] is True
    assert 'cannot log in' in tasks[('Fail with the secrets', 'h2')]['msg']
    assert tasks[('Fail with the secrets', 'h1')]['status'] == 'skipped'
    assert tasks[('Never runs', 'h1')]['status'] == 'skipped'
    assert tasks[('Handle it', 'h1')]['status'] == 'ok'  # handler hook
    assert tasks[('Ping the ghost', 'ghost')]['status'] == 'unreachable'
    for result in tasks.values():
        assert isinstance(result['duration_s'], float) and 0 <= result['duration_s'] < 60
    assert tasks[('Change something', 'h1')]['action'] == 'ansible.builtin.command'
    notes = [e for e in events if e['kind'] == 'note']
    assert len(notes) == 1 and notes[0]['host'] == 'h1'
    stamps = [files.parse_ts(e['ts']) for e in events]
    assert stamps == sorted(stamps)

    # stats hook: the post-mortem draft
    drafts = list(path.glob('postmortem-*.md'))
    assert len(drafts) == 1 and 'Status: Draft' in drafts[0].read_text()

    produced = all_text(path)
    assert set(os.path.basename(p) for p in produced) >= {'timeline.jsonl', drafts[0].name}
    for name, text in produced.items():
        for secret in (PLANTED_PASSWORD, PLANTED_TOKEN, 'TPLANT01/BPLANT02'):
            assert secret not in text, '%s leaked into %s' % (secret, name)
    assert '********' in (path / 'timeline.jsonl').read_text()


HELLO = textwrap.dedent('''\
    ---
    - name: Hello {{ label }}
      hosts: h1
      gather_facts: false
      tasks:
        - name: Step {{ item }}
          ansible.builtin.command: "sleep 0.2"
          changed_when: false
          loop: [1, 2, 3]
        - name: Last step
          ansible.builtin.debug:
            msg: "done {{ label }}"
    ''')


def test_runs_of_one_incident_append_and_incidents_never_mix(tmp_path):
    inventory = write(tmp_path, 'inventory.yml', INVENTORY)
    playbook = write(tmp_path, 'hello.yml', HELLO)
    root = tmp_path / 'incidents'
    a, b = 'INC-A-%s' % uuid.uuid4().hex[:6], 'INC-B-%s' % uuid.uuid4().hex[:6]
    procs = [subprocess.Popen(playbook_cmd(playbook, inventory, {'incident_id': iid, 'incident_dir': str(root),
                                                                 'label': iid}),
                              cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for iid in (a, b)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-2000:] + err[-2000:]
    second = run(playbook, inventory, {'incident_id': a, 'incident_dir': str(root), 'label': a + '-again'})
    assert second.returncode == 0, second

    events_a = files.read_jsonl(str(root / a / 'timeline.jsonl'))
    events_b = files.read_jsonl(str(root / b / 'timeline.jsonl'))
    assert {e['incident_id'] for e in events_a} == {a}
    assert {e['incident_id'] for e in events_b} == {b}
    assert not any(b in json.dumps(e) for e in events_a) and not any(a in json.dumps(e) for e in events_b)
    runs = [e['data']['run'] for e in events_a]
    blocks = [r for i, r in enumerate(runs) if i == 0 or runs[i - 1] != r]
    assert len(blocks) == 2 and blocks[0] != blocks[1]  # two runs, each one contiguous block, in order
    assert [e['data']['play'] for e in events_a if e['kind'] == 'play' and e['data']['phase'] == 'start'] == [
        'Hello ' + a, 'Hello ' + a + '-again']
    assert len(events_b) == len([e for e in events_a if e['data']['run'] == blocks[0]])


FACTS = textwrap.dedent('''\
    ---
    - name: Incident known late
      hosts: h1,h2
      gather_facts: false
      tasks:
        - name: Before the incident is known
          ansible.builtin.debug:
            msg: early
        - name: Declare (what the incident role does)
          ansible.builtin.set_fact:
            incident_id: "{{ new_id }}"
            incident_path: "{{ new_path }}"
        - name: After
          ansible.builtin.debug:
            msg: late
    ''')


def test_incident_from_facts_buffers_then_flushes_and_no_incident_writes_nothing(tmp_path):
    inventory = write(tmp_path, 'inventory.yml', INVENTORY)
    playbook = write(tmp_path, 'facts.yml', FACTS)
    new_id = 'INC-F-%s' % uuid.uuid4().hex[:6]
    new_path = tmp_path / 'elsewhere' / new_id
    proc = run(playbook, inventory, {'new_id': new_id, 'new_path': str(new_path)})
    assert proc.returncode == 0, proc
    events = files.read_jsonl(str(new_path / 'timeline.jsonl'))
    assert [e['kind'] for e in events][0] == 'play'
    tasks = [(r['task'], r['host']) for r in task_results(events)]
    assert ('Before the incident is known', 'h1') in tasks and ('After', 'h2') in tasks
    assert len(tasks) == 6
    assert len([e for e in events if e['kind'] == 'task']) == 3  # one event per task
    assert list(new_path.glob('postmortem-*.md'))

    # without any incident: nothing is written anywhere, the run still succeeds
    empty = tmp_path / 'cwd-incidents'
    plain = run(write(tmp_path, 'plain.yml', HELLO), inventory, {'label': 'x'},
                extra_env={'SRE_INCIDENT_DIR': str(empty)})
    assert plain.returncode == 0, plain
    assert not empty.exists()

    # the env option names an incident for runs that declare none
    env_id = 'INC-E-%s' % uuid.uuid4().hex[:6]
    by_env = run(tmp_path / 'plain.yml', inventory, {'label': 'y'},
                 extra_env={'SRE_INCIDENT_DIR': str(empty), 'SRE_INCIDENT_ID': env_id,
                            'SRE_INCIDENT_POSTMORTEM_DRAFT': 'false'})
    assert by_env.returncode == 0, by_env
    assert files.read_jsonl(str(empty / env_id / 'timeline.jsonl'))
    assert not list((empty / env_id).glob('postmortem-*.md'))


def test_ansible_runner_with_the_awx_stdout_callback(tmp_path):
    """AWX runs playbooks through ansible-runner with its own stdout callback (awx_display); ours runs beside it."""
    import ansible_runner

    inventory = write(tmp_path, 'inventory.yml', INVENTORY)
    playbook = write(tmp_path, 'hello.yml', HELLO)
    incident_id = 'INC-AWX-%s' % uuid.uuid4().hex[:6]
    root = tmp_path / 'incidents'
    private = tmp_path / 'runner'
    private.mkdir()
    result = ansible_runner.run(
        private_data_dir=str(private), project_dir=ROOT, playbook=str(playbook), inventory=str(inventory),
        extravars={'incident_id': incident_id, 'incident_dir': str(root), 'label': 'awx'},
        envvars={'ANSIBLE_CONFIG': os.path.join(ROOT, 'ansible.cfg'),
                 'PATH': VENV_BIN + os.pathsep + os.environ.get('PATH', '')},
        quiet=True, timeout=300)
    assert result.rc == 0, result.stdout.read()[-3000:]
    assert result.config.env.get('ANSIBLE_STDOUT_CALLBACK') == 'awx_display'
    runner_events = [e['event'] for e in result.events]
    assert 'runner_on_ok' in runner_events and 'playbook_on_stats' in runner_events
    events = files.read_jsonl(str(root / incident_id / 'timeline.jsonl'))
    # (a looped task's name is rendered without its item, differently across ansible-core versions)
    assert [(r['task'].split()[0], r['host'], r['status']) for r in task_results(events)] == [
        ('Step', 'h1', 'ok'), ('Last', 'h1', 'ok')]
    assert len([e for e in events if e['kind'] == 'task']) == 2
    assert [e['data']['phase'] for e in events if e['kind'] == 'play'] == ['start', 'end']
    assert list((root / incident_id).glob('postmortem-*.md'))


SLOW = textwrap.dedent('''\
    ---
    - name: Slow run
      hosts: h1
      gather_facts: false
      tasks:
        - name: Quick step
          ansible.builtin.debug:
            msg: quick
        - name: Slow step {{ item }}
          ansible.builtin.command: "sleep 1"
          changed_when: false
          loop: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        - name: Never reached
          ansible.builtin.debug:
            msg: never
    ''')


def test_interrupted_run_leaves_a_valid_timeline_and_a_draft(tmp_path):
    """Ctrl-C (SIGINT to the process group) never reaches v2_playbook_on_stats; the draft is still written."""
    import signal
    import time
    inventory = write(tmp_path, 'inventory.yml', INVENTORY)
    playbook = write(tmp_path, 'slow.yml', SLOW)
    incident_id = 'INC-INT-%s' % uuid.uuid4().hex[:6]
    path = tmp_path / 'incidents' / incident_id
    proc = subprocess.Popen(playbook_cmd(playbook, inventory, {'incident_id': incident_id,
                                                               'incident_dir': str(tmp_path / 'incidents')}),
                            cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if any(e['kind'] == 'task' for e in files.read_jsonl(str(path / 'timeline.jsonl'))):
                break
            time.sleep(0.1)
        time.sleep(1)
        os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0
    lines = (path / 'timeline.jsonl').read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert [e['data']['task'] for e in events if e['kind'] == 'task'][0] == 'Quick step'
    assert not any(e['kind'] == 'task' and e['data']['task'] == 'Never reached' for e in events)
    assert events[-1]['kind'] == 'play' and events[-1]['data']['interrupted'] is True  # recorded by the exit hook
    drafts = list(path.glob('postmortem-*.md'))
    assert len(drafts) == 1 and 'Status: Draft' in drafts[0].read_text()
