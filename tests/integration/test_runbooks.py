"""playbooks/runbooks.yml renders docs/runbooks/<service>-runbook.md from the inventory (no lab service needed)."""
import filecmp
import json
import os
import re
import subprocess

from markdown_it import MarkdownIt

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, '.venv', 'bin')
LAB_SERVICES = ('backend', 'db', 'proxy', 'redis')


def run(extra_vars, check=False):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               LAB_INSTANCE='0')  # the shipped runbooks describe the default lab instance
    cmd = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', 'inventory/lab', 'playbooks/runbooks.yml',
           '-e', json.dumps(extra_vars)] + (['--check'] if check else [])
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return proc


def changed(proc):
    return sum(int(n) for n in re.findall(r'changed=(\d+)', proc.stdout))


def test_render_is_idempotent_and_matches_the_shipped_runbooks(tmp_path):
    dest = tmp_path / 'runbooks'
    first = run({'runbook_dest': str(dest)})
    assert changed(first) == 1
    names = sorted(n for n in os.listdir(str(dest)) if not n.startswith('.'))  # .<name>.sha256: what was rendered
    assert names == sorted('%s-runbook.md' % s for s in LAB_SERVICES)
    second = run({'runbook_dest': str(dest)})
    assert changed(second) == 0 and '0 changed' in second.stdout
    match, mismatch, errors = filecmp.cmpfiles(str(dest), os.path.join(ROOT, 'docs', 'runbooks'), names, shallow=False)
    assert not mismatch and not errors, 'docs/runbooks is stale: re-run playbooks/runbooks.yml (%s)' % (mismatch + errors)

    for name in names:
        text = (dest / name).read_text()
        tokens = MarkdownIt('commonmark').parse(text)
        assert not [t for t in tokens if t.type.startswith('html')]
        heads = [(t.tag, tokens[i + 1].content) for i, t in enumerate(tokens) if t.type == 'heading_open']
        assert heads[0] == ('h1', name.replace('-runbook.md', '') + ' runbook')
        assert [h for tag, h in heads if tag == 'h2'] == ['Overview', 'Common issues', 'Escalation']
        assert len([h for tag, h in heads if tag == 'h3']) >= 2
        for needle in ('**Purpose:**', '**Dependencies:**', '**Critical paths:**', '**Symptoms:**', '**Diagnosis:**',
                       '**Resolution:**', 'playbooks/investigate.yml -i inventory/lab', '**On-call channel:** #incidents',
                       '**Owner team:** platform'):
            assert needle in text, '%s lacks %s' % (name, needle)
        for secret in ('lab-pg-S3cret-4f9a', 'lab-redis-S3cret-9d3e'):
            assert secret not in text
    backend = (dest / 'backend-runbook.md').read_text()
    assert '-e remediation_action=rollback -e service=backend -e apply=true -e approved_by=<name>' in backend
    assert 'http://127.0.0.1:18000/health/ready' in backend
    redis = (dest / 'redis-runbook.md').read_text()
    assert '-e remediation_action=flush_keys -e service=redis' in redis and 'protected (never removed) `session:*`' in redis


def test_check_mode_reports_without_writing(tmp_path):
    dest = tmp_path / 'runbooks'
    run({'runbook_dest': str(dest)})
    target = dest / 'db-runbook.md'
    target.write_text('edited by hand\n')
    checked = run({'runbook_dest': str(dest)}, check=True)
    assert changed(checked) == 1
    assert target.read_text() == 'edited by hand\n'
    run({'runbook_dest': str(dest), 'runbook_services': ['db']})
    assert target.read_text() == 'edited by hand\n'  # a person's edit is never overwritten
    assert (dest / 'db-runbook.new.md').read_text().startswith('# db runbook')
