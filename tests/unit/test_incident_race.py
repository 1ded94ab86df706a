"""Runs racing on one new incident id (AWX slices, parallel --limit runs) declare it once and keep every service."""
import multiprocessing
import os

from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import incident as logic
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files
from ansible_collections.sre.incident_response.plugins.module_utils.redact import Redactor
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore

INCIDENT_ID = 'INC-20261201-0300-race'


def _declare(args):
    root, service, barrier = args
    barrier.wait()
    out = logic.declare_or_load(incident_id=INCIDENT_ID, incident_dir=root, services=[service])
    return out['created']


def test_concurrent_declarations_of_one_new_id_declare_it_once(tmp_path):
    services = ['web-%d' % i for i in range(8)]
    with multiprocessing.Manager() as manager:
        barrier = manager.Barrier(len(services))
        with multiprocessing.Pool(len(services)) as pool:
            created = pool.map(_declare, [(str(tmp_path), s, barrier) for s in services])
    assert created.count(True) == 1
    path = os.path.join(str(tmp_path), INCIDENT_ID)
    events = files.read_jsonl(os.path.join(path, 'timeline.jsonl'))
    assert [e['kind'] for e in events].count('declared') == 1
    assert files.read_json(os.path.join(path, 'incident.json'))['services'] == sorted(services)


def _evidence(args):
    root, index, barrier = args
    store = IncidentStore(INCIDENT_ID, os.path.join(root, INCIDENT_ID))
    barrier.wait()
    return store.write_evidence([('controller', 'net.dns.json', {'writer': index})] * 20, Redactor())


def test_concurrent_writers_of_one_evidence_file_do_not_collide(tmp_path):
    with multiprocessing.Manager() as manager:
        barrier = manager.Barrier(4)
        with multiprocessing.Pool(4) as pool:
            written = pool.map(_evidence, [(str(tmp_path), i, barrier) for i in range(4)])
    assert all(len(w) == 20 for w in written)
    directory = os.path.join(str(tmp_path), INCIDENT_ID, 'evidence', 'controller')
    assert os.listdir(directory) == ['net.dns.json']  # no temporary file left behind
