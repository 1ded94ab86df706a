"""The on-call console (plugins/callback/oncall.py, plugin_utils/render/console.py) on events recorded from a real run.

fixtures/oncall/bad_deploy_triage.json: every callback event of `playbooks/triage.yml` against the lab after
`make fault NAME=bad_deploy`, recorded with fixtures/oncall/record_events.py (see its header).
"""
import json
import os
import re

import pytest

from ansible import constants as C
from ansible.plugins.loader import fragment_loader
from ansible.utils.plugin_docs import get_docstring

from ansible_collections.sre.incident_response.plugins.callback import oncall
from ansible_collections.sre.incident_response.plugins.plugin_utils.render.console import Console

HERE = os.path.dirname(os.path.abspath(__file__))
EVENTS = os.path.join(HERE, 'fixtures', 'oncall', 'bad_deploy_triage.json')


def load_events():
    with open(EVENTS) as handle:
        return json.load(handle)


def replay(console, events, rename=None):
    out = []
    for event in events:
        if event['hook'] == 'play_start':
            out += console.play_start(event['play'], event['t'])
        elif event['hook'] == 'ok':
            task = rename(event['task']) if rename else event['task']
            out += console.result(task, event['action'], event['result'], tags=event.get('tags'))
        elif event['hook'] == 'stats':
            out += console.finish(event['t'])
    return [text for text, _style in out]


@pytest.fixture(scope='module')
def lines():
    return replay(Console(), load_events())


def test_recorded_run_is_the_real_bad_deploy(lines):
    events = load_events()
    # the default callback prints a line for each of these results, and a banner for each task
    assert sum(1 for e in events if e['hook'] in ('ok', 'skipped')) > 70
    assert len(lines) < 45


def test_incident_id_and_severity_and_its_change(lines):
    incident = [line for line in lines if line.strip().startswith('INCIDENT ')]
    assert len(incident) == 1 and re.match(r'^   INCIDENT INC-\d{8}-\d{4}-[0-9a-f]{4}  SEV4 ', incident[0])
    assert '   SEVERITY SEV4 -> SEV2' in lines
    assert re.match(r'^INC-\d{8}-\d{4}-[0-9a-f]{4}  SEV2  files: \S+', lines[-2])


def test_every_phase_as_it_starts_and_how_long_it_took(lines):
    plays = [e['play'] for e in load_events() if e['hook'] == 'play_start']
    starts = [line[3:] for line in lines if line.startswith('== ')]
    assert starts == plays
    durations = [line for line in lines if re.match(r'^   done in \d+\.\d s$', line)]
    assert len(durations) == len(plays)
    # the duration closes its phase: it comes before the next phase starts
    for i, line in enumerate(lines):
        if line.startswith('== ') and i > 0:
            assert lines[i - 1].startswith('   done in ') or not any(x.startswith('== ') for x in lines[:i])


def test_every_finding_not_ok_once_the_moment_it_is_recorded(lines):
    events = load_events()
    recorded = {}
    for e in events:
        if e['hook'] == 'ok' and e['action'].endswith('.finding'):
            for f in e['result'].get('findings') or []:
                recorded[(f['host'], f['check'])] = f['status']
    bad = sorted(k for k, status in recorded.items() if status != 'ok')
    shown = sorted(tuple(m.group(2, 3)) for m in (re.match(r'^   (CRIT|WARN|UNKNOWN) +([^/ ]+)/(\S+):', x) for x in lines) if m)
    assert bad and shown == bad
    assert not any(re.match(r'^   OK ', x) for x in lines)
    # app.errors (found in the scope phase) is printed inside that phase, before the changes phase starts
    scope = lines.index(next(x for x in lines if x.startswith('== Triage 1-2')))
    changes = lines.index(next(x for x in lines if x.startswith('== Triage 2-3')))
    assert any('app-backend/app.errors' in x for x in lines[scope:changes])


def test_diagnosis_and_the_exact_next_command(lines):
    diag = [x for x in lines if x.startswith('   DIAGNOSIS ')]
    assert diag[0].startswith('   DIAGNOSIS 1. error_spike_after_deploy (confidence 0.')
    assert any(x.strip() == 'evidence: app-backend/deploy.recent, app-backend/app.errors' for x in lines)
    nexts = [x for x in lines if x.startswith('NEXT ') or x.startswith('   NEXT ')]
    assert nexts and all(re.search(r'ansible-playbook playbooks/remediate\.yml -i inventory/lab -e remediation_action=rollback '
                                   r'-e incident_id=INC-\S+ -e service=backend$', x) for x in nexts)
    assert lines[-1].startswith('NEXT ansible-playbook playbooks/remediate.yml')
    # the rollback recommendation of the triage (a debug task meant for the responder) is shown
    assert any(x.strip().startswith('Apply: Roll back immediately') for x in lines)


def test_messages_written_are_listed_and_nothing_else(lines):
    assert any(re.match(r'^   MESSAGE \d{8}T\d{6}Z-declared\.md$', x) for x in lines)
    assert any(x.startswith('   Channel #incidents; deliveries:') for x in lines)
    for noise in ('ok: [', 'skipping: [', 'TASK [', 'Validating arguments', 'INCIDENT DECLARED:'):
        assert not any(noise in x for x in lines), noise


def test_a_renamed_task_keeps_its_console_lines(lines):
    """A playbook copy may rename every task: the console knows results by action, keys and tags, not names."""
    renamed = replay(Console(), load_events(), rename=lambda name: 'renamed by a user')
    assert renamed == lines
    assert any(x.strip().startswith('Apply: Roll back immediately') for x in renamed)
    assert any(x.startswith('   Channel #incidents; deliveries:') for x in renamed)


def test_debug_text_is_printed_by_tag_and_a_users_own_names():
    msg = {'msg': ['PLAN restart on backend (app-backend):', 'mode: plan only']}
    assert Console().result('Any name at all', 'ansible.builtin.debug', msg, tags=['oncall_message']) == [
        ('   PLAN restart on backend (app-backend):', 'info'), ('   mode: plan only', 'info')]
    assert Console().result('Show the plan of restart on backend', 'ansible.builtin.debug', msg) == []
    mine = Console(messages_from=['My own *'])
    assert mine.result('site : My own summary', 'ansible.builtin.debug', {'msg': 'hello'}) == [('   hello', 'info')]
    report = {'msg': ['(/srv/ir/incidents/INC-1/messages/20261127T031200Z-declared.md)', 'Channel #incidents; file only']}
    assert Console().result('Tell people', 'ansible.builtin.debug', report, tags=['oncall_comms_report']) == [
        ('   MESSAGE 20261127T031200Z-declared.md', 'info'), ('   Channel #incidents; file only', 'info')]


def test_footer_path_relative_to_the_working_directory():
    console = Console(cwd='/srv/ir')
    console.result('Declare', 'sre.incident_response.incident_context', {'ansible_facts': {
        'incident': {'id': 'INC-1', 'severity': 'SEV3'}, 'incident_path': '/srv/ir/incidents/INC-1'}})
    assert console.finish(0.0)[-1] == ('INC-1  SEV3  files: incidents/INC-1', 'phase')
    other = Console(cwd='/srv/irx')
    other.result('Declare', 'x.incident_context', {'ansible_facts': {'incident': {'id': 'INC-1'}, 'incident_path': '/srv/ir/incidents/INC-1'}})
    assert other.finish(0.0)[-1][0].endswith('files: /srv/ir/incidents/INC-1')


def test_healthy_diagnosis_and_dedup():
    console = Console()
    doc = {'healthy': True, 'summary': 'All 31 checks ok: no incident evident', 'hypotheses': []}
    first = console.result('sre.incident_response.diagnose : Diagnose', 'sre.incident_response.diagnose', {'diagnosis': doc})
    assert first == [('   HEALTHY: All 31 checks ok: no incident evident', 'ok')]
    assert console.result('Diagnose', 'sre.incident_response.diagnose', {'diagnosis': doc}) == []
    finding = {'host': 'h', 'check': 'pg.locks', 'status': 'crit', 'summary': 'x ' * 200}
    out = console.result('Record', 'sre.incident_response.finding', {'findings': [finding], 'recorded': True})
    assert len(out) == 1 and out[0][1] == 'crit' and out[0][0].endswith('...') and len(out[0][0]) < 260
    assert console.result('Record', 'sre.incident_response.finding', {'findings': [finding], 'recorded': True}) == []
    # findings not recorded (no incident) are not news; other debug tasks are left to -v
    assert Console().result('Record', 'sre.incident_response.finding', {'findings': [finding], 'recorded': False}) == []
    assert Console().result('Show the incident', 'ansible.builtin.debug', {'msg': 'Declared INC-1'}) == []


# --- the callback plugin itself -----------------------------------------------------------------------------

class FakeDisplay(object):
    def __init__(self, verbosity=0):
        self.verbosity = verbosity
        self.lines = []

    def display(self, msg, color=None, stderr=False, screen_only=False, log_only=False, newline=True):
        if not log_only:
            self.lines.append((msg, color))

    def banner(self, msg, color=None, cows=True):
        self.lines.append(('%s %s' % (msg, '*' * 10), color))

    def __getattr__(self, name):  # warning, v, vv, deprecated ...
        return lambda *a, **k: None


class FakeTask(object):
    def __init__(self, name, action='ansible.builtin.debug', uuid='t1', tags=()):
        self._name, self.action, self._uuid, self.tags = name, action, uuid, list(tags)
        self.no_log, self.check_mode, self.args = False, False, {}
        self.loop, self.delegate_to, self.ignore_unreachable = None, None, False

    def get_name(self):
        return self._name


class FakeHost(object):
    def __init__(self, name):
        self.name = name

    def get_name(self):
        return self.name


class FakeResult(object):
    def __init__(self, task, host, data):
        self.task, self._task = task, task
        self.host, self._host = FakeHost(host), FakeHost(host)
        self.result, self._result = data, data
        self.task_name = task.get_name()


class FakePlay(object):
    strategy = 'linear'
    check_mode = False

    def __init__(self, name):
        self.name = name

    def get_name(self):
        return self.name


def make(verbosity=0):
    """The plugin with its options defined from its DOCUMENTATION, as the plugin loader does."""
    doc = get_docstring(oncall.__file__, fragment_loader, collection_name='sre.incident_response')[0]
    C.config.initialize_plugin_configuration_definitions('callback', 'sre.incident_response.oncall', doc['options'])
    cb = oncall.CallbackModule()
    assert cb.CALLBACK_TYPE == 'stdout' and cb.CALLBACK_NAME == 'sre.incident_response.oncall'
    cb._load_name = 'sre.incident_response.oncall'
    cb._display = FakeDisplay(verbosity)
    cb.set_options()
    return cb


def test_callback_options_come_from_its_documentation():
    cb = make()
    assert cb.get_option('oncall_max_chars') == 220 and cb.get_option('oncall_hypotheses') == 3
    assert cb.get_option('oncall_messages_from') == []
    assert cb.get_option('display_ok_hosts') is True  # the default callback's options are there too (for -v)


def test_callback_compact_success_full_failure_and_unreachable():
    cb = make()
    cb.v2_playbook_on_play_start(FakePlay('Triage 1-2 min - assess scope'))
    task = FakeTask('sre.incident_response.health : Probe', 'sre.incident_response.health_probe', 'u1')
    cb.v2_playbook_on_task_start(task, False)
    cb.v2_runner_on_ok(FakeResult(task, 'app-backend', {'changed': False, 'findings': []}))
    cb.v2_runner_on_skipped(FakeResult(task, 'app-db', {'skipped': True}))
    cb.v2_runner_on_failed(FakeResult(task, 'app-db', {'failed': True, 'msg': 'probe error'}), ignore_errors=True)
    text = '\n'.join(m for m, _c in cb._display.lines)
    assert text.startswith('== Triage 1-2 min - assess scope')
    assert 'ok: [' not in text and 'skipping' not in text and 'probe error' not in text and 'TASK [' not in text
    failing = FakeTask('sre.incident_response.remediation : Fail loudly when verification failed', 'ansible.builtin.fail', 'u2')
    cb.v2_playbook_on_task_start(failing, False)
    cb.v2_runner_on_failed(FakeResult(failing, 'app-backend', {'failed': True, 'msg': 'VERIFICATION FAILED after rollback'}))
    cb.v2_runner_on_unreachable(FakeResult(failing, 'db-2', {'unreachable': True, 'msg': 'ssh: connect to host db-2 port 22: Connection refused'}))
    text = '\n'.join(m for m, _c in cb._display.lines)
    assert 'TASK [sre.incident_response.remediation : Fail loudly when verification failed]' in text
    assert 'fatal: [app-backend]: FAILED!' in text and 'VERIFICATION FAILED after rollback' in text
    assert 'fatal: [db-2]: UNREACHABLE!' in text and 'Connection refused' in text
    assert any(c == C.COLOR_ERROR for m, c in cb._display.lines if 'FAILED!' in m)


def test_callback_with_v_is_the_default_callback():
    cb = make(verbosity=1)
    cb.v2_playbook_on_play_start(FakePlay('Triage 1-2 min - assess scope'))
    task = FakeTask('sre.incident_response.health : Probe', 'sre.incident_response.health_probe', 'u1')
    cb.v2_playbook_on_task_start(task, False)
    cb.v2_runner_on_ok(FakeResult(task, 'app-backend', {'changed': False}))
    text = '\n'.join(m for m, _c in cb._display.lines)
    assert 'PLAY [Triage 1-2 min - assess scope]' in text and 'TASK [sre.incident_response.health : Probe]' in text
    assert 'ok: [app-backend]' in text and '== Triage' not in text


def test_escape_sequences_from_outside_text_do_not_reach_the_terminal():
    """A log line's ESC sequences (clear screen, retitle, recolour) and bidi overrides are shown, not acted on."""
    cb = make(0)
    cb._emit([('   CRIT    app-backend/app.errors: /api/\x1b[2J\x1b]0;pwned\x07x \u202egnp.exe\x9b31m', 'crit')])
    (line, dummy), = cb._display.lines
    assert '\x1b' not in line and '\x07' not in line and '\u202e' not in line and '\x9b' not in line
    assert line == '   CRIT    app-backend/app.errors: /api/\\x1b[2J\\x1b]0;pwned\\x07x \\u202egnp.exe\\x9b31m'


def test_callback_prints_a_tagged_debug_task_whatever_its_name():
    cb = make()
    cb.v2_playbook_on_play_start(FakePlay('Remediate'))
    task = FakeTask('my copy : Tell me the plan', 'ansible.builtin.debug', 'u3', tags=['oncall_message'])
    cb.v2_playbook_on_task_start(task, False)
    cb.v2_runner_on_ok(FakeResult(task, 'app-backend', {'msg': ['PLAN restart on backend (app-backend):']}))
    other = FakeTask('my copy : Show the plan of restart on backend', 'ansible.builtin.debug', 'u4')
    cb.v2_runner_on_ok(FakeResult(other, 'app-backend', {'msg': 'left to -v'}))
    text = [m for m, _c in cb._display.lines]
    assert '   PLAN restart on backend (app-backend):' in text and not any('left to -v' in m for m in text)
