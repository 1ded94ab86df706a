# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: render, file and deliver incident communications (documentation in plugins/modules/comms_deliver.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import uuid
from concurrent.futures import ThreadPoolExecutor

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sre.incident_response.plugins.plugin_utils.comms import comms
from ansible_collections.sre.incident_response.plugins.plugin_utils.render import escape
from ansible_collections.sre.incident_response.plugins.module_utils import incident_files as files
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import severity as sevtable
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore, task_redactor

STATE = 'comms_state.json'
PAGERDUTY_URL = 'https://events.pagerduty.com/v2/enqueue'


def _not_resent(item):
    """Why a message lost its delivery claim (exactly once): another run sent it, or holds it and sends it."""
    if item['state'] == 'sent':
        return 'already sent at %s' % item['at']
    return 'claimed by a concurrent run at %s, which sends it' % item['at']


class ActionModule(ActionBase):
    """Runs on the controller: messages live in the incident directory, deliveries leave from here."""

    TRANSFERS_FILES = False
    _requires_connection = False

    ARGSPEC = dict(
        kinds=dict(type='list', elements='str', default=['update']),
        status=dict(type='str', default='Investigating'),
        findings_text=dict(type='str', default=''),
        actions_text=dict(type='str', default=''),
        issue=dict(type='str', default=''),
        impact=dict(type='str', default=''),
        eta=dict(type='str', default=''),
        service=dict(type='str', default=''),
        root_cause=dict(type='str', default=''),
        channel=dict(type='str', default=''),
        deliver=dict(type='bool', default=True),
        page=dict(type='str', default='auto', choices=['auto', 'always', 'never']),
        slack=dict(type='dict', default={}),
        webhook=dict(type='dict', default={}),
        pagerduty=dict(type='dict', default={}),
        statuspage=dict(type='dict', default={}),
        contacts=dict(type='dict', default={}),
        timeout=dict(type='float', default=5.0),
        incident_id=dict(type='str', default=''),
        incident_dir=dict(type='path'),
    )

    # --- helpers ---------------------------------------------------------------------------------------

    def _secret(self, task_vars, name, what):
        """The value of the variable called `name` (the secret is given by reference, never inline)."""
        if not name:
            return None
        if name not in task_vars:
            self._config_errors.append({'target': what, 'error': 'the variable %r is not defined' % name})
            return None
        try:
            value = self._templar.template(task_vars[name])
        except Exception:  # pylint: disable=broad-except
            self._config_errors.append({'target': what, 'error': 'the variable %r could not be templated' % name})
            return None
        if value in (None, ''):
            self._config_errors.append({'target': what, 'error': 'the variable %r is empty' % name})
            return None
        return str(value)

    # --- main ------------------------------------------------------------------------------------------

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGSPEC)
        self._config_errors = []
        for kind in args['kinds']:
            if kind not in comms.KINDS:
                raise AnsibleActionFail('kinds: %r is not one of %s' % (kind, ', '.join(comms.KINDS)))
        try:
            status = comms.normalize_status(args['status'])
        except ValueError as exc:
            raise AnsibleActionFail(str(exc))
        store = IncidentStore.resolve(args, task_vars,
                                      required='no incident_id known: run the incident role first (or give incident_id)')
        incident_id, path = store.incident_id, store.path
        incident = store.incident()
        if not incident:
            raise AnsibleActionFail('incident %s has no incident.json in %s: declare it first (role incident)'
                                    % (incident_id, path))
        diagnosis = store.diagnosis()
        findings = store.findings()
        events = store.timeline()
        severity = sevtable.normalize(incident.get('severity') or 'SEV4')
        policy = sevtable.info(severity)
        channel = args['channel'] or (args['slack'] or {}).get('channel') or policy['channel']

        # Secrets by reference only; every resolved value is scrubbed from everything we return or write.
        secrets = {}
        slack_url = self._secret(task_vars, (args['slack'] or {}).get('url_var'), 'slack.url_var')
        webhook_url = self._secret(task_vars, (args['webhook'] or {}).get('url_var'), 'webhook.url_var')
        webhook_token = self._secret(task_vars, (args['webhook'] or {}).get('token_var'), 'webhook.token_var')
        sp_cfg = args['statuspage'] or {}
        sp_key = self._secret(task_vars, sp_cfg.get('api_key_var'), 'statuspage.api_key_var')
        pd_cfg = args['pagerduty'] or {}
        routing = []
        for role in policy['escalation']:
            contact = (args['contacts'] or {}).get(role) or {}
            var = (pd_cfg.get('routing_key_vars') or {}).get(role) or (contact.get('pagerduty_routing_key_var')
                                                                       if isinstance(contact, dict) else None)
            key = self._secret(task_vars, var, 'the PagerDuty routing key of %s' % role)
            if key and key not in [k for r, k in routing]:
                routing.append((role, key))
        for value in (slack_url, webhook_url, webhook_token, sp_key, sp_cfg.get('url')) + tuple(k for r, k in routing):
            if value:
                secrets[value] = True
        redactor = task_redactor(task_vars, self._templar)  # the inventory's secrets too (database, cache passwords)
        redactor.add_literals(list(secrets))

        # Tag people explicitly (the practice): the escalation and notify roles of this severity.
        mentions = []
        for role in list(policy.get('escalation') or []) + list(policy.get('notify') or []):
            contact = (args['contacts'] or {}).get(role)
            handle = contact.get('handle') if isinstance(contact, dict) else None
            if handle and handle not in mentions:
                mentions.append(handle)

        now = files.utcnow()
        findings_text = args['findings_text'] or comms.summarize_findings(diagnosis, findings)
        actions_text = args['actions_text'] or comms.summarize_actions(events, diagnosis, status)
        impact = args['impact'] or comms.user_impact(incident, diagnosis)
        top = ((diagnosis or {}).get('hypotheses') or [None])[0]
        issue = args['issue'] or (top.get('likely_cause') if (top and status != 'Investigating') else incident.get('title'))
        root_cause = args['root_cause'] or (top.get('likely_cause') if top else '')
        service = args['service'] or ', '.join((diagnosis or {}).get('affected_services') or incident.get('services') or [])

        # Exactly once: claim each message in the incident store under its lock before rendering or sending it.
        # A message sent before (or being sent by a concurrent run) is neither written nor sent again.
        claiming = bool(args['deliver']) and not self._task.check_mode
        run_id = uuid.uuid4().hex
        claims = {}
        already = []
        kinds = list(args['kinds'])
        if claiming:
            keys = dict((kind, comms.delivery_key(kind, 'Investigating' if kind == 'declared' else status, incident, now))
                        for kind in kinds)
            claims = store.claim_deliveries(sorted(set(keys.values())), run_id, now)
            for kind in list(kinds):
                decision, rec = claims[keys[kind]]
                if decision != 'claimed':
                    kinds.remove(kind)
                    already.append({'kind': kind, 'key': keys[kind], 'state': decision, 'at': rec.get('at')})

        messages = []
        for kind in kinds:
            if kind == 'declared':
                text = comms.render_declared(incident, now, impact=impact)
                msg_status = 'Investigating'
            elif kind == 'update':
                text = comms.render_update(incident, status, findings_text, actions_text, now)
                msg_status = status
            elif kind == 'statuspage':
                text = comms.render_statuspage(incident, status, now, issue=issue, impact=impact, eta=args['eta'],
                                               service=service, root_cause=root_cause)
                msg_status = status
            else:
                text = comms.render_ticket(incident, findings_text, actions_text, now)
                msg_status = None
            text = redactor.text(text)
            file_path = comms.write_message(os.path.join(path, 'messages'), kind, text, now, msg_status)
            messages.append({'kind': kind, 'status': msg_status, 'path': file_path, 'text': text,
                             'key': keys[kind] if claiming else None})

        # Deliveries, concurrently; in check mode nothing leaves the controller.
        jobs = []
        timeout = args['timeout']
        for msg in messages:
            if msg['kind'] in ('declared', 'update', 'ticket') and slack_url:
                jobs.append(('slack', msg, slack_url, comms.slack_payload(msg['text'], channel, mentions=mentions), {}, 'POST'))
            if webhook_url:
                headers = {'Authorization': 'Bearer %s' % webhook_token} if webhook_token else {}
                payload = comms.webhook_payload(incident, msg['kind'], msg['status'], msg['text'], channel, now)
                payload['mentions'] = mentions
                jobs.append(('webhook', msg, webhook_url, payload, headers, 'POST'))
            if msg['kind'] == 'statuspage' and sp_cfg.get('url') and sp_key and sp_cfg.get('publish', True):
                state = files.read_json(os.path.join(path, STATE), default={}) or {}
                payload = comms.statuspage_payload(incident, msg['status'], msg['text'], sp_cfg.get('component_ids'))
                base = str(sp_cfg['url']).rstrip('/') + '/incidents'
                if state.get('statuspage_incident_id'):
                    jobs.append(('statuspage', msg, '%s/%s' % (base, state['statuspage_incident_id']), payload,
                                 {'Authorization': 'OAuth %s' % sp_key}, 'PATCH'))
                else:
                    jobs.append(('statuspage', msg, base, payload, {'Authorization': 'OAuth %s' % sp_key}, 'POST'))
        page_action = None
        kinds = [m['kind'] for m in messages]
        unpaged = None
        if args['page'] != 'never':
            wants_page = args['page'] == 'always' or policy['page']
            if status == 'Resolved' and 'update' in kinds:
                page_action = 'resolve' if routing else None
            elif wants_page and ('declared' in kinds or args['page'] == 'always'):
                page_action = 'trigger' if routing else None
                if not routing and messages:
                    # Paging is due but nobody can be paged: say so instead of staying silent.
                    unpaged = {'target': 'pagerduty', 'message': os.path.basename(messages[0]['path']), 'ok': None,
                               'http_status': None, 'error': None, 'skipped': True,
                               'reason': 'not configured: no pagerduty_routing_key_var for %s' % ', '.join(policy['escalation'])}
        if page_action and messages:
            pd_url = pd_cfg.get('url') or PAGERDUTY_URL
            anchor = messages[0]
            summary = '%s: %s' % (incident.get('title'), escape.one_line(impact or '', 300))
            details = {'incident_id': incident_id, 'commander': incident.get('commander'), 'channel': channel,
                       'status': status, 'top_hypothesis': top.get('pattern') if top else None,
                       'first_action': top.get('first_action') if top else None}
            for role, key in routing:
                jobs.append(('pagerduty:%s' % role, anchor, pd_url,
                             comms.pagerduty_payload(key, incident, page_action, summary, details=redactor.data(details)),
                             {}, 'POST'))

        if claiming:
            jobs = [job for job in jobs
                    if (claims[job[1]['key']][1].get('targets') or {}).get(job[0]) != 'sent']
        deliveries = []
        settled = dict((m['key'], {}) for m in messages if claiming)
        if jobs and args['deliver'] and not self._task.check_mode:
            with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
                futures = [(job, pool.submit(comms.post_json, job[2], job[3], job[4], job[5], timeout)) for job in jobs]
                for job, future in futures:
                    outcome = future.result()
                    entry = {'target': job[0], 'message': os.path.basename(job[1]['path']), 'ok': outcome['ok'],
                             'http_status': outcome['status'], 'error': outcome['error'], 'skipped': False}
                    if job[0].startswith('pagerduty'):
                        entry['event_action'] = page_action
                        entry['dedup_key'] = incident_id
                    if job[0] == 'statuspage' and outcome['ok'] and isinstance(outcome['body'], dict) and outcome['body'].get('id'):
                        files.write_json_atomic(os.path.join(path, STATE), {'statuspage_incident_id': str(outcome['body']['id'])})
                    deliveries.append(redactor.data(entry))
                    if claiming:
                        settled[job[1]['key']][job[0]] = bool(outcome['ok'])
        else:
            reason = 'check mode' if self._task.check_mode else 'delivery disabled'
            for job in jobs:
                deliveries.append({'target': job[0], 'message': os.path.basename(job[1]['path']), 'ok': None,
                                   'http_status': None, 'error': None, 'skipped': True, 'reason': reason})

        if claiming and settled:
            store.settle_deliveries(settled, run_id, files.utcnow())
        if unpaged:
            deliveries.append(unpaged)
        for problem in self._config_errors:
            deliveries.append({'target': problem['target'], 'message': os.path.basename(messages[0]['path']) if messages else None,
                               'ok': False, 'http_status': None, 'error': 'not configured: %s' % problem['error'],
                               'skipped': False})

        # One comms event per message, with the outcome of its deliveries.
        records = []
        for msg in messages:
            mine = [d for d in deliveries if d['message'] == os.path.basename(msg['path'])]
            outcome = ', '.join('%s %s' % (d['target'], 'skipped' if d['skipped'] else ('ok' if d['ok'] else 'FAILED'))
                                for d in mine) or 'file only'
            title = msg['text'].splitlines()[0] if msg['text'] else msg['kind']
            records.append(files.make_event(
                incident_id, 'comms', '%s -> %s (%s)' % (escape.one_line(title or '', 160), channel, outcome),
                host=task_vars.get('inventory_hostname'),
                data={'message': msg['kind'], 'status': msg['status'], 'file': os.path.relpath(msg['path'], path),
                      'channel': channel, 'severity': severity, 'deliveries': mine}))
        store.append(records, redactor)

        failed = [d for d in deliveries if d.get('ok') is False]
        report = []
        for msg in messages:
            report.extend(msg['text'].splitlines())
            report.append('(%s)' % msg['path'])
        for item in already:
            report.append('%s (%s) not sent again: %s' % (item['kind'], item['key'], _not_resent(item)))
        # What this run delivered; a message another run sent or is sending is said so, never "none configured".
        delivered = '; '.join(
            '%s %s' % (d['target'], 'skipped (%s)' % d.get('reason') if d['skipped'] else ('ok' if d['ok'] else 'FAILED: %s' % d['error']))
            for d in deliveries)
        if already:
            lost = '; '.join('%s %s' % (i['kind'], _not_resent(i)) for i in already)
            delivered = '%s; not sent again: %s' % (delivered, lost) if delivered else 'none by this run: %s' % lost
        report.append('Channel %s; deliveries: %s' % (channel, delivered or 'none configured (files only)'))
        result.update(
            report=[redactor.text(line) for line in report],
            changed=bool(messages),
            channel=channel,
            mentions=mentions,
            severity=severity,
            messages=[{'kind': m['kind'], 'status': m['status'], 'path': m['path'], 'text': m['text']} for m in messages],
            deliveries=deliveries,
            delivery_failed=len(failed),
            not_resent=already,
            paged=[d['target'].split(':', 1)[1] for d in deliveries if d['target'].startswith('pagerduty:')
                   and d.get('ok') and page_action == 'trigger'],
            page_action=page_action,
            msg=redactor.text('%d message(s) written to %s; %d delivery(ies), %d failed%s' % (
                len(messages), os.path.join(path, 'messages'), len(deliveries), len(failed),
                ('; %d not sent again (sent or being sent by another run)' % len(already)) if already else '')),
        )
        return result
