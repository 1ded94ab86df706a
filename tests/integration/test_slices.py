"""Sliced triage (issue 12; docs/awx.md, "Large fleets: job slicing") against the real lab.

Slices are what AWX job slicing runs: several `ansible-playbook playbooks/triage.yml --limit <slice>
-e incident_id=<id> -e triage_diagnose=false` at once, each probing and recording its share of the hosts
into the one incident; then `playbooks/diagnose.yml -e incident_id=<id>` diagnoses and communicates once.
Here the slices are truly concurrent processes with a new incident id (the first to get there declares it),
the fault is bad_deploy, and deliveries go to the 127.0.0.1 receiver of test_comms_delivery.py, so every
message is counted on the wire.
"""
import json
import os
import subprocess
import threading

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files

from conftest import ROOT, VENV_BIN, _env  # noqa: E402
from test_comms_delivery import PD_MANAGER, PD_ONCALL, comms_vars  # noqa: E402

# The host of the findings the controller makes once for all hosts (DNS, TLS, dependencies):
# network_controller_name, roles/network/defaults/main.yml.
CONTROLLER = 'controller'
# Checks that only a host's own probe task records for it (the controller's HTTP check names hosts too).
OWN_CHECKS = {'health.container', 'host.changes'}


def lab_inventory():
    """(hosts, service names) of inventory/lab, as Ansible sees them."""
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-inventory'), '-i', 'inventory/lab', '--list'],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    hostvars = json.loads(proc.stdout)['_meta']['hostvars']
    services = set()
    for host_vars in hostvars.values():
        services |= {s['name'] for s in host_vars.get('incident_services') or [] if isinstance(s, dict)}
    return sorted(hostvars), services


def run_slices(run_playbook, extra, slices):
    """Every slice at once, one ansible-playbook process each; [(hosts of the slice, result)]."""
    results = [None] * len(slices)

    def one(index):
        results[index] = run_playbook('playbooks/triage.yml', dict(extra, triage_diagnose=False), timeout=600,
                                      args=['--limit', ','.join(slices[index])])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(slices))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for hosts, res in zip(slices, results):
        assert res is not None and res.rc == 0, res
        # a slice probes its own hosts only, and says what comes next
        assert 'findings of %d hosts' % len(hosts) in res.stdout, res
        assert 'ansible-playbook playbooks/diagnose.yml' in res.stdout, res
    return list(zip(slices, results))


def diagnose(run_playbook, extra):
    res = run_playbook('playbooks/diagnose.yml', extra, timeout=600, env={'ANSIBLE_SHOW_CUSTOM_STATS': '1'})
    assert res.rc == 0, res
    return res


def events(path, kind=None):
    out = files.read_jsonl(os.path.join(path, 'timeline.jsonl'))
    return [e for e in out if kind is None or e['kind'] == kind]


def messages(path):
    directory = os.path.join(path, 'messages')
    return dict((name, open(os.path.join(directory, name), encoding='utf-8').read())
                for name in sorted(os.listdir(directory)) if not name.startswith('.'))


def message_kinds(path):
    return sorted(name.split('-', 1)[1] for name in messages(path))


def stats(res):
    """The set_stats data published for AWX (printed with ANSIBLE_SHOW_CUSTOM_STATS)."""
    text = res.stdout.split('CUSTOM STATS:', 1)[1]
    return json.JSONDecoder().raw_decode(text[text.index('{'):])[0]


def assert_one_consistent_findings_file(path, hosts):
    """findings.json: valid, one finding per host and check, every host's own probe in it, nothing lost."""
    findings = files.read_json(os.path.join(path, 'findings.json'))
    assert isinstance(findings, list) and findings, findings
    keys = ['%s/%s' % (f['host'], f['check']) for f in findings]
    assert len(keys) == len(set(keys)), sorted(keys)
    assert {f['host'] for f in findings} == set(hosts) | {CONTROLLER}, sorted(keys)
    for host in hosts:
        checks = {f['check'] for f in findings if f['host'] == host}
        assert OWN_CHECKS <= checks, (host, sorted(checks))
        assert os.path.isdir(os.path.join(path, 'evidence', host)), host
    # Every finding a slice recorded (one timeline event each) is in findings.json: no slice's merge was lost.
    recorded = {e['data']['key'] for e in events(path, 'finding')}
    assert recorded == set(keys), (sorted(recorded - set(keys)), sorted(set(keys) - recorded))
    return findings


def expected_pages(severity):
    return sorted([PD_ONCALL, PD_MANAGER] if severity == 'SEV1' else [PD_ONCALL])


def test_concurrent_slices_record_one_incident_then_diagnose_communicates_once(fault, run_playbook, incident,
                                                                               receiver):
    hosts, services = lab_inventory()
    assert len(hosts) >= 3, hosts
    path = incident['path']
    extra = comms_vars(incident, receiver)  # the slices get the webhooks too: they must not use them
    with fault('bad_deploy'):
        run_slices(run_playbook, extra, [[host] for host in hosts])

        # The slices probed and recorded; none of them diagnosed or communicated.
        assert not os.path.exists(os.path.join(path, 'diagnosis.json'))
        assert events(path, 'diagnosis') == []
        assert messages(path) == {}
        assert receiver.requests == []
        assert_one_consistent_findings_file(path, hosts)

        res = diagnose(run_playbook, extra)

    # one incident, declared once, holding what every slice found
    declared = events(path, 'declared')
    assert len(declared) == 1, declared
    incident_json = files.read_json(os.path.join(path, 'incident.json'))
    assert incident_json['id'] == incident['id']
    assert incident_json['declared_at'] == declared[0]['ts']
    assert incident_json['status'] == 'Investigating'
    assert set(incident_json['services']) == services, incident_json['services']  # every slice's hosts' services
    severity = incident_json['severity']
    assert severity in ('SEV1', 'SEV2'), incident_json.get('severity_reasons')
    assert events(path, 'severity')[-1]['data']['severity'] == severity
    assert_one_consistent_findings_file(path, hosts)

    # one diagnosis, by diagnose.yml, from all the slices' findings
    assert len(events(path, 'diagnosis')) == 1
    top = files.read_json(os.path.join(path, 'diagnosis.json'))['hypotheses'][0]
    assert top['pattern'] == 'error_spike_after_deploy', top
    assert 'app-backend/deploy.recent' in top['evidence'], top
    published = stats(res)
    assert published['incident_id'] == incident['id'] and published['top_pattern'] == 'error_spike_after_deploy'
    assert published['remediation_action'] == 'rollback', published

    # each message rendered once ...
    assert message_kinds(path) == ['declared.md', 'statuspage-investigating.md']
    text = [t for name, t in messages(path).items() if name.endswith('-declared.md')][0]
    assert text.startswith('INCIDENT DECLARED: ') and '\nSeverity: %s\n' % severity in text, text
    # ... and delivered once
    slack = [r['json']['text'] for r in receiver.by_path('/services/')]
    assert len(slack) == 1 and 'INCIDENT DECLARED' in slack[0], slack
    hooks = sorted(r['json']['event'] for r in receiver.by_path('/hook/'))
    assert hooks == ['incident.declared', 'incident.statuspage'], hooks
    assert [r['method'] for r in receiver.by_path('/sp/')] == ['POST']
    pages = [r['json'] for r in receiver.by_path('/pd/')]
    assert sorted(p['routing_key'] for p in pages) == expected_pages(severity), pages
    assert all(p['event_action'] == 'trigger' and p['dedup_key'] == incident['id'] for p in pages), pages
    claims = files.read_json(os.path.join(path, 'deliveries.json'))
    assert {k: v['state'] for k, v in claims.items()} == {'declared': 'sent', 'statuspage|Investigating': 'sent'}


def test_slices_and_diagnose_again_send_nothing_again(fault, run_playbook, incident, receiver):
    """Two slices + diagnose, twice (an AWX relaunch of the workflow with the same incident): nothing sent before
    is sent again; the second diagnosis may add the one INCIDENT UPDATE of its update interval, nothing else."""
    hosts, _services = lab_inventory()
    halves = [hosts[:1], hosts[1:]]
    path = incident['path']
    extra = comms_vars(incident, receiver)
    with fault('bad_deploy'):
        run_slices(run_playbook, extra, halves)
        diagnose(run_playbook, extra)
        first_requests = list(receiver.requests)
        first_messages = messages(path)
        run_slices(run_playbook, extra, halves)
        second = diagnose(run_playbook, extra)

    # the first round communicated (else "nothing again" proves nothing)
    assert sorted(name.split('-', 1)[1] for name in first_messages) == ['declared.md', 'statuspage-investigating.md']
    assert any('INCIDENT DECLARED' in r['json']['text'] for r in first_requests if r['path'].startswith('/services/'))
    assert any(r['path'].startswith('/pd/') for r in first_requests)
    # the second round ran: the slices loaded the incident, diagnose.yml diagnosed again and met the claims
    assert len(events(path, 'declared')) == 1
    assert len(events(path, 'diagnosis')) == 2
    assert 'statuspage (statuspage|Investigating) not sent again' in second.stdout, second
    assert_one_consistent_findings_file(path, hosts)

    new = receiver.requests[len(first_requests):]
    assert [r for r in new if r['path'].startswith(('/pd/', '/sp/'))] == [], new  # no page, no status page
    slack = [r['json']['text'] for r in new if r['path'].startswith('/services/')]
    hooks = [r['json']['event'] for r in new if r['path'].startswith('/hook/')]
    assert len(slack) <= 1 and all('INCIDENT UPDATE' in t and 'INCIDENT DECLARED' not in t for t in slack), slack
    assert len(hooks) <= 1 and set(hooks) <= {'incident.update'}, hooks
    assert len(new) == len(slack) + len(hooks), new
    # the first round's messages are untouched; at most the one update is new
    now = messages(path)
    assert dict((name, now.get(name)) for name in first_messages) == first_messages
    added = sorted(name.split('-', 1)[1] for name in set(now) - set(first_messages))
    assert added in ([], ['update-investigating.md']), added
