"""Communications: the practice's templates exactly in structure, cadence, duration, file names, payloads."""
import datetime
import os

import pytest

from ansible_collections.sre.incident_response.plugins.plugin_utils.comms import comms
from ansible_collections.sre.incident_response.plugins.plugin_utils import incident_store as store_mod
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident.incident import INCIDENT_STATUSES

NOW = datetime.datetime(2026, 11, 27, 3, 20, 5, tzinfo=datetime.timezone.utc)


def incident(sev='SEV2', **kw):
    inc = {'id': 'INC-20261127-0312-a1b2', 'title': 'Orders API returns 500', 'severity': sev,
           'commander': 'On-call IC (@oncall-ic)', 'started_at': '2026-11-27T03:12:00.000Z',
           'impact': 'Customers cannot place orders', 'services': ['backend', 'db']}
    inc.update(kw)
    return inc


def test_declared_message_is_the_template():
    text = comms.render_declared(incident(), NOW)
    assert text.splitlines() == [
        'INCIDENT DECLARED: Orders API returns 500',
        'Severity: SEV2',
        'Commander: On-call IC (@oncall-ic)',
        'Start time: 2026-11-27T03:12:00.000Z',
        'Impact: Customers cannot place orders',
        'Status: Investigating',
        'Next update: 2026-11-27 03:50 UTC (in 30 minutes)',
    ]


@pytest.mark.parametrize('sev,expected', [
    ('SEV1', '2026-11-27 03:35 UTC (in 15 minutes)'),
    ('SEV2', '2026-11-27 03:50 UTC (in 30 minutes)'),
    ('SEV3', '2026-11-27 05:20 UTC (in 2 hours)'),
    ('SEV4', '2026-11-28 03:20 UTC (in 1 day)'),
])
def test_next_update_follows_the_cadence(sev, expected):
    assert comms.next_update(NOW, sev)[1] == expected


def test_update_message_is_the_template_with_duration():
    text = comms.render_update(incident(), 'identified', 'Bad deploy of backend', 'Rolling back', NOW)
    assert text.splitlines() == [
        'INCIDENT UPDATE: Orders API returns 500',
        'Severity: SEV2',
        'Duration: 8 min',
        'Status: Identified',
        'Current findings: Bad deploy of backend',
        'Actions in progress: Rolling back',
        'Next update: 2026-11-27 03:50 UTC (in 30 minutes)',
    ]


def test_resolved_update_has_no_next_update_time():
    text = comms.render_update(incident('SEV1'), 'Resolved', 'x', 'y', NOW)
    assert 'Status: Resolved' in text
    assert text.splitlines()[-1] == 'Next update: None - resolved; post-mortem: required within 48 hours'


def test_unknown_status_is_refused():
    with pytest.raises(ValueError, match='Fixed'):
        comms.render_update(incident(), 'Fixed', '', '', NOW)


def test_status_page_investigating():
    text = comms.render_statuspage(incident('SEV1'), 'Investigating', NOW, impact='Errors when placing orders')
    assert text.splitlines() == [
        '[Investigating] We are investigating reports of orders API returns 500.',
        'Users may experience errors when placing orders.',
        'We will provide an update within 15 minutes.',
    ]


@pytest.mark.parametrize('status', ['Identified', 'Mitigating'])
def test_status_page_identified(status):
    text = comms.render_statuspage(incident(), status, NOW, issue='A faulty release of the orders service',
                                   eta='within 30 minutes')
    assert text.splitlines() == [
        '[Identified] The issue has been identified as a faulty release of the orders service.',
        'We are working on a fix. Estimated resolution: within 30 minutes.',
    ]


def test_status_page_resolved():
    text = comms.render_statuspage(incident(), 'Resolved', NOW, service='the orders API',
                                   root_cause='A bug in release 1.1.0')
    assert text.splitlines() == [
        '[Resolved] The issue affecting the orders API has been resolved.',
        'The root cause was a bug in release 1.1.0.',
        'We apologize for the disruption and will publish a detailed post-mortem.',
    ]


def test_ticket_for_sev4():
    text = comms.render_ticket(incident('SEV4'), 'one warning', 'handle in working hours', NOW)
    assert text.splitlines()[0] == 'TICKET: [SEV4] Orders API returns 500'
    assert 'Respond within: 4 hours' in text and 'Create a ticket' in text


def test_message_files_are_named_by_time_and_kind_and_never_overwritten(tmp_path):
    first = store_mod.write_message(str(tmp_path), 'update', 'a', NOW, 'Identified')
    second = store_mod.write_message(str(tmp_path), 'update', 'b', NOW, 'Identified')
    assert os.path.basename(first) == '20261127T032005Z-update-identified.md'
    assert os.path.basename(second) == '20261127T032005Z-update-identified-2.md'
    assert open(first).read() == 'a' and open(second).read() == 'b'
    assert os.path.basename(store_mod.write_message(str(tmp_path), 'declared', 'c', NOW)) == '20261127T032005Z-declared.md'


def test_pagerduty_payloads_use_the_incident_id_as_dedup_key():
    trig = comms.pagerduty_payload('R' * 32, incident('SEV1'), 'trigger', 'Orders down', details={'a': 1})
    assert trig['event_action'] == 'trigger' and trig['dedup_key'] == 'INC-20261127-0312-a1b2'
    assert trig['payload']['severity'] == 'critical' and trig['payload']['summary'].startswith('[SEV1] ')
    res = comms.pagerduty_payload('R' * 32, incident('SEV1'), 'resolve', 'x')
    assert res == {'routing_key': 'R' * 32, 'event_action': 'resolve', 'dedup_key': 'INC-20261127-0312-a1b2'}
    with pytest.raises(ValueError):
        comms.pagerduty_payload('k', incident(), 'explode', 'x')


def test_statuspage_payload_maps_status():
    body = comms.statuspage_payload(incident(), 'Mitigating', 'text', ['c1'])
    assert body['incident']['status'] == 'identified' and body['incident']['component_ids'] == ['c1']
    assert comms.statuspage_payload(incident(), 'Resolved', 't')['incident']['status'] == 'resolved'


def test_content_from_diagnosis():
    diagnosis = {'affected_services': ['backend'], 'hypotheses': [
        {'pattern': 'error_spike_after_deploy', 'likely_cause': 'Bug in the new code', 'confidence': 0.95,
         'evidence': ['app-backend/deploy.recent'], 'first_action': 'ansible-playbook playbooks/remediate.yml -e remediation_action=rollback'}]}
    assert comms.summarize_findings(diagnosis).startswith('Affected: backend. Top hypotheses: 1) Bug in the new code')
    assert comms.summarize_actions([], diagnosis, 'Investigating') == \
        'Recommended first action: ansible-playbook playbooks/remediate.yml -e remediation_action=rollback'
    events = [{'kind': 'plan', 'summary': 'rollback planned'}, {'kind': 'action', 'summary': 'rolled back to 1.0.0'}]
    assert comms.summarize_actions(events, diagnosis, 'Mitigating') == 'rollback planned; rolled back to 1.0.0'
    assert comms.user_impact({'impact': 'Under assessment'}, diagnosis) == 'errors since the latest deployment (backend)'
    assert comms.user_impact({'impact': 'Checkout fails'}, diagnosis) == 'Checkout fails'
    assert comms.summarize_findings({'healthy': True, 'summary': 'All 12 checks ok', 'hypotheses': []}) == 'All 12 checks ok'


# --- outside text in messages: Markdown files and status pages, Slack ----------------------------------------------

BAD = '<script>alert(1)</script> <img src=x onerror=alert(2)> <!channel> <@U123> [click](https://evil.example/) ' \
      '![b](https://evil.example/p.png) `tick` ``` | cell |\nStatus: Resolved\r\n# heading'


def bad_incident():
    return incident(title=BAD, commander=BAD, impact=BAD, services=[BAD], id='INC-20261127-0312-a1b2')


def all_messages():
    inc = bad_incident()
    out = {'declared': comms.render_declared(inc, NOW, impact=BAD),
           'update': comms.render_update(inc, 'Identified', BAD, BAD, NOW),
           'ticket': comms.render_ticket(inc, BAD, BAD, NOW)}
    for status in INCIDENT_STATUSES:
        out['statuspage-%s' % status] = comms.render_statuspage(inc, status, NOW, issue=BAD, impact=BAD, eta=BAD,
                                                                service=BAD, root_cause=BAD)
    return out


def test_outside_text_cannot_add_a_line_to_a_message():
    lines = {'declared': 7, 'update': 7, 'ticket': 8, 'statuspage-Investigating': 3, 'statuspage-Identified': 2,
             'statuspage-Mitigating': 2, 'statuspage-Resolved': 3}
    for name, text in all_messages().items():
        assert len(text.splitlines()) == lines[name], (name, text)
        assert not [ln for ln in text.splitlines() if ln.startswith(('Status: Resolved', '#', '|'))], (name, text)


def test_messages_render_as_text_in_markdown():
    """messages/*.md and the status page body: the outside text is shown, never HTML, a link, an image or code."""
    from markdown_it import MarkdownIt
    md = MarkdownIt('commonmark').enable('table')
    for name, text in all_messages().items():
        tokens = md.parse(text)
        kinds = {t.type for t in tokens} | {c.type for t in tokens for c in (t.children or [])}
        assert kinds <= {'paragraph_open', 'inline', 'paragraph_close', 'text', 'softbreak'}, (name, kinds, text)
        html = md.render(text)
        assert '<script' not in html and '<img' not in html and '<a ' not in html, html
        assert '&lt;script&gt;alert(1)&lt;/script&gt;' in html, (name, html)


def test_slack_gets_the_text_escaped_by_slacks_rules_and_mentions_live():
    text = all_messages()['update']
    body = comms.slack_payload(text, '#incidents', mentions=['<!subteam^S0ONCALL>', '@ic'])['text']
    mentions, block = body.split('\n', 1)
    assert mentions == '<!subteam^S0ONCALL> @ic'  # configured: live
    assert block.startswith('```\n') and block.endswith('```') and block.count('```') == 2, block
    assert '<' not in block and '>' not in block, block  # <!channel>, <@U123>, <url|text> from data: inert
    assert '&lt;!channel&gt;' in block and '&lt;script&gt;alert(1)&lt;/script&gt;' in block
    assert '\\<' not in block and '[click](https://evil.example/)' in block  # shown as it was, no Markdown escapes
    assert comms.slack_payload('', '#c')['text'] == ''
