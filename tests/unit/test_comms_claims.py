"""Exactly-once delivery claims in the incident store (plugins/plugin_utils/incident_store.py)."""
import datetime
import multiprocessing

from ansible_collections.sre.incident_response.plugins.plugin_utils.comms import comms
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore
from ansible_collections.sre.incident_response.plugins.plugin_utils import incident_store as store_mod

NOW = datetime.datetime(2026, 12, 1, 14, 0, tzinfo=datetime.timezone.utc)


def test_sent_is_never_resent_and_failed_is_retried_target_by_target(tmp_path):
    path = str(tmp_path)
    assert IncidentStore.of_path(path).claim_deliveries(['declared'], 'run-a', NOW)['declared'][0] == 'claimed'
    assert IncidentStore.of_path(path).claim_deliveries(['declared'], 'run-b', NOW)['declared'][0] == 'busy'
    IncidentStore.of_path(path).settle_deliveries({'declared': {'slack': True, 'webhook': False}}, 'run-a', NOW)
    decision, rec = IncidentStore.of_path(path).claim_deliveries(['declared'], 'run-b', NOW)['declared']
    assert decision == 'claimed' and rec['targets'] == {'slack': 'sent', 'webhook': 'failed'}
    IncidentStore.of_path(path).settle_deliveries({'declared': {'webhook': True}}, 'run-b', NOW)
    assert IncidentStore.of_path(path).claim_deliveries(['declared'], 'run-c', NOW)['declared'][0] == 'sent'


def test_a_stale_claim_is_taken_over(tmp_path):
    IncidentStore.of_path(str(tmp_path)).claim_deliveries(['ticket'], 'dead-run', NOW)
    later = NOW + datetime.timedelta(seconds=store_mod.CLAIM_STALE_SECONDS + 1)
    assert IncidentStore.of_path(str(tmp_path)).claim_deliveries(['ticket'], 'run-b', later)['ticket'][0] == 'claimed'


def test_keys_update_per_cadence_interval():
    incident = {'severity': 'SEV1', 'started_at': '2026-12-01T13:50:00Z'}
    assert comms.delivery_key('declared', 'Investigating', incident, NOW) == 'declared'
    assert comms.delivery_key('statuspage', 'Identified', incident, NOW) == 'statuspage|Identified'
    assert comms.delivery_key('update', 'Identified', incident, NOW) == 'update|Identified|0'
    assert comms.delivery_key('update', 'Identified', incident, NOW + datetime.timedelta(minutes=6)) == 'update|Identified|1'


def _claim(args):
    path, run = args
    return IncidentStore.of_path(path).claim_deliveries(['declared', 'statuspage|Investigating'], run, NOW)['declared'][0]


def test_concurrent_processes_claim_once(tmp_path):
    with multiprocessing.Pool(4) as pool:
        decisions = pool.map(_claim, [(str(tmp_path), 'run-%d' % i) for i in range(8)])
    assert decisions.count('claimed') == 1 and decisions.count('busy') == 7
