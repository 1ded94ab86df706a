"""Release quality: the collection as users get it.

- the built tarball installs offline into an empty collections path, and
  `ansible-playbook sre.incident_response.triage` runs from the installed copy against the lab;
- `ansible-builder create` turns execution-environment.yml into a valid build context;
- `ansible-doc` renders every plugin in plugins/ (discovered, so new plugins are covered);
- `ansible-test sanity` (the tests that run offline) passes on a copy laid out as ansible_collections/sre/incident_response;
- `antsibull-changelog lint` passes;
- playbooks/awx_configure.yml renders its job templates, surveys and workflow, and they agree with the specs.
"""
import glob
import json
import os
import re
import subprocess
import tarfile

import pytest
import yaml

from ansible_collections.sre.incident_response.plugins.plugin_utils.awx import awx_survey

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, '.venv', 'bin')


def _env(extra=None):
    env = dict(os.environ)
    env['PATH'] = BIN + os.pathsep + env.get('PATH', '')
    env['ANSIBLE_CONFIG'] = os.path.join(ROOT, 'ansible.cfg')
    env['ANSIBLE_NOCOLOR'] = '1'
    env.update(extra or {})
    return env


DOC_TYPES = {'modules': 'module', 'callback': 'callback', 'filter': 'filter', 'test': 'test', 'lookup': 'lookup',
             'inventory': 'inventory', 'connection': 'connection', 'become': 'become', 'cache': 'cache', 'vars': 'vars',
             'strategy': 'strategy', 'shell': 'shell', 'netconf': 'netconf', 'cliconf': 'cliconf', 'httpapi': 'httpapi'}


def _run(cmd, cwd=ROOT, env=None, timeout=600):
    proc = subprocess.run(cmd, cwd=cwd, env=_env(env), capture_output=True, text=True, timeout=timeout, check=False)
    return proc


def _fmt(proc):
    return 'rc=%s\n--- stdout:\n%s\n--- stderr:\n%s' % (proc.returncode, proc.stdout[-5000:], proc.stderr[-3000:])


def _collection_files():
    """Tracked and untracked, non-ignored files of the checkout (what a clean clone plus work in progress holds)."""
    out = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=ROOT, capture_output=True, text=True, check=True)
    return [p for p in out.stdout.splitlines() if p and os.path.isfile(os.path.join(ROOT, p)) and not p.startswith('incidents/')]


@pytest.fixture(scope='module')
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp('build')
    proc = _run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', '--output-path', str(out)])
    assert proc.returncode == 0, _fmt(proc)
    found = glob.glob(str(out / 'sre-incident_response-*.tar.gz'))
    assert len(found) == 1, found
    return found[0]


def test_tarball_content(tarball):
    with open(os.path.join(ROOT, 'galaxy.yml')) as handle:
        galaxy = yaml.safe_load(handle)
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    assert os.path.basename(tarball) == 'sre-incident_response-%s.tar.gz' % galaxy['version']
    for required in ('MANIFEST.json', 'FILES.json', 'meta/runtime.yml', 'playbooks/triage.yml',
                     'roles/incident/meta/argument_specs.yml', 'plugins/callback/timeline.py', 'execution-environment.yml'):
        assert required in names, required
    for leaked in ('.venv', '.collections', 'incidents', 'tests/output', '.git'):
        assert not any(n == leaked or n.startswith(leaked + '/') for n in names), leaked
    assert not any(n.endswith('.pyc') or '/__pycache__' in n for n in names)


def test_installed_tarball_runs_triage(tarball, lab, tmp_path):
    """Offline install into an empty path; the installed copy (not the checkout) runs the triage against the lab."""
    coll = tmp_path / 'collections'
    work = tmp_path / 'work'
    work.mkdir()
    # A user's ansible.cfg: only the installed path, the timeline callback on. No checkout link anywhere.
    (work / 'ansible.cfg').write_text(
        '[defaults]\ncollections_path = %s\ncallbacks_enabled = sre.incident_response.timeline\n'
        'interpreter_python = auto_silent\nretry_files_enabled = false\n[ssh_connection]\npipelining = true\n' % coll)
    env = dict(os.environ)
    env.pop('ANSIBLE_CONFIG', None)
    env.pop('ANSIBLE_COLLECTIONS_PATH', None)
    env.update({'PATH': BIN + os.pathsep + env.get('PATH', ''), 'ANSIBLE_NOCOLOR': '1', 'ANSIBLE_FORCE_COLOR': '0'})
    proc = subprocess.run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'install', '--offline', '-p', str(coll), tarball],
                          cwd=str(work), env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, _fmt(proc)
    installed = coll / 'ansible_collections' / 'sre' / 'incident_response'
    assert (installed / 'MANIFEST.json').is_file() and not os.path.islink(str(installed)), _fmt(proc)

    incidents = work / 'incidents'
    cmd = [os.path.join(BIN, 'ansible-playbook'), 'sre.incident_response.triage', '-i', os.path.join(ROOT, 'inventory', 'lab'),
           '-e', json.dumps({'incident_dir': str(incidents), 'triage_deliver': False}), '-v']
    proc = subprocess.run(cmd, cwd=str(work), env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, _fmt(proc)
    # the playbook came from the installed collection
    listed = subprocess.run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'list', 'sre.incident_response', '--format', 'json'],
                            cwd=str(work), env=env, capture_output=True, text=True, timeout=120, check=False)
    assert str(coll / 'ansible_collections') in listed.stdout and ROOT + '/.collections' not in listed.stdout, listed.stdout
    dirs = [d for d in incidents.iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    incident = dirs[0]
    for name in ('incident.json', 'findings.json', 'diagnosis.json', 'timeline.jsonl'):
        assert (incident / name).is_file(), name
    findings = json.loads((incident / 'findings.json').read_text())
    assert findings, 'no findings from the installed triage'
    kinds = set(json.loads(line)['kind'] for line in (incident / 'timeline.jsonl').read_text().splitlines() if line.strip())
    assert {'declared', 'finding', 'diagnosis'} <= kinds, kinds
    assert 'play' in kinds, 'the installed timeline callback wrote no play events: %s' % kinds


def test_ansible_builder_create(tmp_path):
    ctx = tmp_path / 'context'
    proc = _run([os.path.join(BIN, 'ansible-builder'), 'create', '-f', 'execution-environment.yml', '-c', str(ctx)])
    assert proc.returncode == 0, _fmt(proc)
    files = [p for p in ('Containerfile', 'Dockerfile') if (ctx / p).is_file()]
    assert files, 'no Containerfile/Dockerfile in %s' % list(ctx.iterdir())
    containerfile = (ctx / files[0]).read_text()
    assert 'FROM ' in containerfile and 'ansible-galaxy' in containerfile.replace('check_galaxy', 'ansible-galaxy')
    with open(os.path.join(ROOT, 'execution-environment.yml')) as handle:
        ee = yaml.safe_load(handle)
    assert ee['version'] == 3
    reqs = (ctx / '_build' / 'requirements.txt').read_text()
    pinned = open(os.path.join(ROOT, 'requirements.txt')).read().lower().split()
    for line in reqs.split():
        assert line.lower() in pinned, '%s in the EE is not the version requirements.txt tests' % line
    for module in ('psycopg2-binary', 'redis', 'dnspython', 'cryptography'):
        assert module in reqs, module
    assert (ctx / '_build' / 'bindep.txt').read_text().strip()
    galaxy_reqs = yaml.safe_load((ctx / '_build' / 'requirements.yml').read_text())
    wanted = set(c['name'] for c in galaxy_reqs['collections'])
    with open(os.path.join(ROOT, 'galaxy.yml')) as handle:
        deps = set(yaml.safe_load(handle).get('dependencies') or {})
    assert deps <= wanted, 'galaxy.yml dependencies missing from the EE: %s' % (deps - wanted)


def _plugins():
    """(ansible-doc type, FQCN) of every plugin under plugins/, discovered from the tree."""
    found = []
    for directory, doc_type in sorted(DOC_TYPES.items()):
        path = os.path.join(ROOT, 'plugins', directory)
        if not os.path.isdir(path):
            continue
        if doc_type in ('filter', 'test'):
            proc = _run([os.path.join(BIN, 'ansible-doc'), '-t', doc_type, '-l', 'sre.incident_response'])
            assert proc.returncode == 0, _fmt(proc)
            names = [line.split()[0] for line in proc.stdout.splitlines() if line.startswith('sre.incident_response.')]
            assert names or not glob.glob(os.path.join(path, '*.py')), 'no %s plugins listed' % doc_type
            found += [(doc_type, n) for n in names]
            continue
        for source in sorted(glob.glob(os.path.join(path, '*.py'))):
            name = os.path.splitext(os.path.basename(source))[0]
            if name != '__init__':
                found.append((doc_type, 'sre.incident_response.' + name))
    return found


def test_every_action_plugin_has_a_documented_module():
    for source in glob.glob(os.path.join(ROOT, 'plugins', 'action', '*.py')):
        name = os.path.basename(source)
        if name != '__init__.py':
            assert os.path.isfile(os.path.join(ROOT, 'plugins', 'modules', name)), 'action plugin %s has no module for its docs' % name


def test_ansible_doc_renders_every_plugin():
    plugins = _plugins()
    assert len(plugins) >= 10
    failures = []
    by_type = {}
    for doc_type, name in plugins:
        by_type.setdefault(doc_type, []).append(name)
    for doc_type, names in sorted(by_type.items()):
        # one call per type; per plugin only to name the culprits
        proc = _run([os.path.join(BIN, 'ansible-doc'), '-t', doc_type, '--json'] + names, timeout=300)
        ok = proc.returncode == 0 and 'ERROR' not in proc.stderr
        # the text a person reads too: a YAML item such as "- the form C(host/check: summary)" parses as a dict,
        # which --json passes through and the text renderer refuses
        text = _run([os.path.join(BIN, 'ansible-doc'), '-t', doc_type] + names, timeout=300)
        failures += ['%s: %s' % (doc_type, line) for line in text.stderr.splitlines() if 'ERROR' in line]
        if ok:
            docs = json.loads(proc.stdout)
            for name in names:
                doc = (docs.get(name) or {}).get('doc') or {}
                if not doc.get('short_description') or not (doc.get('description') or doc_type == 'callback'):
                    failures.append('%s %s: empty documentation' % (doc_type, name))
                if doc_type == 'module' and not (docs[name].get('examples') and docs[name].get('return') is not None):
                    failures.append('%s %s: EXAMPLES or RETURN missing' % (doc_type, name))
            continue
        for name in names:
            single = _run([os.path.join(BIN, 'ansible-doc'), '-t', doc_type, name])
            if single.returncode != 0 or 'ERROR' in single.stderr:
                failures.append('%s %s: %s' % (doc_type, name, single.stderr.strip()[-400:]))
    assert not failures, '\n'.join(failures)


def test_ansible_test_sanity():
    """ansible-test sanity as Galaxy and Automation Hub reviewers run it: every test, each in its own venv (--venv),
    on a copy laid out as ansible_collections/sre/incident_response (scripts/sanity.sh, also run by make lint).

    `make test` runs `make lint` first and then pytest with SRE_SANITY_RAN=1: the suite (4-7 minutes) runs once."""
    if os.environ.get('SRE_SANITY_RAN') == '1':
        pytest.skip('make lint ran the whole sanity suite in this make test')
    script = os.path.join(ROOT, 'scripts', 'sanity.sh')
    listed = _run([script, '--list-tests'], timeout=120)
    assert listed.returncode == 0, _fmt(listed)
    expected = set(listed.stdout.split())
    assert len(expected) >= 20, _fmt(listed)
    proc = _run([script], timeout=1200)
    assert proc.returncode == 0, _fmt(proc)
    ran = set(re.findall(r'^Running sanity test "([^"]+)"', proc.stdout, re.M))
    assert ran == expected, 'not run: %s' % sorted(expected - ran)
    # a test whose tool is missing (shellcheck: scripts/setup-system.sh installs it) passes without checking anything
    assert 'Required program' not in proc.stdout + proc.stderr, _fmt(proc)


def test_sanity_ignore_entries_have_reasons():
    path = os.path.join(ROOT, 'tests', 'sanity', 'ignore-2.19.txt')
    if not os.path.exists(path):
        return
    for line in open(path).read().splitlines():
        if line.strip() and not line.startswith('#'):
            entry, sep, reason = line.partition(' # ')
            assert sep and len(reason.strip()) > 20, 'ignore entry without a reason: %s' % line
            assert os.path.exists(os.path.join(ROOT, entry.split()[0])), 'stale ignore entry: %s' % line


def test_changelog_lint():
    proc = _run([os.path.join(BIN, 'antsibull-changelog'), 'lint'])
    assert proc.returncode == 0 and not proc.stdout.strip(), _fmt(proc)
    fragments = glob.glob(os.path.join(ROOT, 'changelogs', 'fragments', '*.yml'))
    assert len(fragments) >= 2


def test_awx_configure_renders_surveys_that_agree(tmp_path, run_playbook):
    """The playbook (not only the library) produces the job templates; every rendered survey agrees with the specs."""
    out = tmp_path / 'awx'
    res = run_playbook('playbooks/awx_configure.yml', {'awx_configure_apply': False, 'awx_configure_render_dir': str(out)},
                       inventory='localhost,')
    assert res.rc == 0, res
    specs = awx_survey.load_role_specs(os.path.join(ROOT, 'roles'))
    rendered = json.loads((out / 'awx_configure.json').read_text())
    templates = rendered['job_templates']
    workflows = rendered['workflows']
    assert [w['name'] for w in workflows] == ['Incident - respond with approval', 'Incident - triage sliced']
    creds = [rendered]
    # the jobs print with the on-call console (merged into the controller's AWX_TASK_ENV)
    assert rendered['job_environment'] == {'ANSIBLE_STDOUT_CALLBACK': 'sre.incident_response.oncall'}
    assert len(templates) >= 17 and len(set(t['name'] for t in templates)) == len(templates)
    for item in templates + workflows:
        assert awx_survey.survey_disagreements(item['survey_spec'], item['questions'], specs) == [], item['name']
    for item in templates:
        assert os.path.isfile(os.path.join(ROOT, item['playbook'])) or item['playbook'] == 'playbooks/investigate.yml', item['playbook']
        remediation = 'remediate' in item['playbook']
        assert item['allow_simultaneous'] is (not remediation), item['name']
        if item['playbook'] == 'playbooks/remediate.yml':
            assert item['job_type'] == 'check', 'remediation templates outside the workflow only plan: %s' % item['name']
    # the workflow: triage -> plan -> approval (timeout) -> apply -> communicate
    nodes = dict((n['identifier'], n) for n in workflows[0]['nodes'])
    assert nodes['triage']['related']['success_nodes'] == [{'identifier': 'plan'}]
    assert nodes['plan']['related']['success_nodes'] == [{'identifier': 'approve'}]
    approve = nodes['approve']
    assert approve['unified_job_template']['type'] == 'workflow_approval' and approve['unified_job_template']['timeout'] > 0
    assert approve['related']['success_nodes'] == [{'identifier': 'apply'}]
    assert nodes['apply']['extra_data'] == {'apply': True}
    assert 'awx_remediate.yml' in [t['playbook'].split('/')[-1] for t in templates if t['name'] == nodes['apply']['unified_job_template']['name']][0]
    assert {'communicate_mitigating', 'communicate_identified'} <= set(nodes)
    # secrets never in the rendered definitions: credential types inject by Jinja reference only
    for ctype in creds[0]['credential_types']:
        for value in ctype['injectors']['extra_vars'].values():
            assert value.startswith('{{ ') and value.endswith(' }}'), value
