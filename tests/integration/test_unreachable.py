"""A managed host Ansible cannot reach is a finding, not a crash: the run goes on for every other host."""
import json
import os
import shutil

import yaml

from conftest import ROOT


def test_unreachable_host_is_a_crit_finding_and_triage_completes(lab, run_playbook, incident, tmp_path):
    inv = tmp_path / 'inventory'
    shutil.copytree(os.path.join(ROOT, 'inventory', 'lab'), str(inv))
    hosts = yaml.safe_load((inv / 'hosts.yml').read_text())
    # an SSH host on a closed loopback port: refused at once, never leaves this machine
    hosts['all']['children']['backend']['hosts']['app-backend-2'] = {
        'ansible_connection': 'ssh', 'ansible_host': '127.0.0.1', 'ansible_port': 9, 'ansible_user': 'nobody'}
    (inv / 'hosts.yml').write_text('---\n' + yaml.safe_dump(hosts))
    services = yaml.safe_load((inv / 'host_vars' / 'app-backend.yml').read_text())['incident_services'][:1]
    services[0] = dict(services[0], name='backend-2', deploy={'type': 'docker', 'container': 'app-backend-2'})
    (inv / 'host_vars' / 'app-backend-2.yml').write_text('---\n' + yaml.safe_dump({'incident_services': services}))

    res = run_playbook('playbooks/triage.yml', incident['vars'], inventory=str(inv))
    assert res.rc in (0, 4), res  # 4: Ansible's own exit code when a host was unreachable
    assert 'No quick-reference pattern matched' in res.stdout or 'host.reachability' in res.stdout, res

    findings = json.load(open(os.path.join(incident['path'], 'findings.json')))
    by_key = {(f['host'], f['check']): f for f in findings}
    unreachable = by_key[('app-backend-2', 'host.reachability')]
    assert unreachable['status'] == 'crit' and 'unreachable' in unreachable['summary']
    # every other host was still investigated
    for key in (('app-db', 'pg.connectivity'), ('app-redis', 'redis.connectivity'), ('app-backend', 'app.errors')):
        assert by_key[key]['status'] == 'ok', by_key[key]
    incident_json = json.load(open(os.path.join(incident['path'], 'incident.json')))
    assert incident_json['severity'] in ('SEV1', 'SEV2', 'SEV3')
