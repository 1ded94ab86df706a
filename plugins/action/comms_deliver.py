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
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident import files
from ansible_collections.sre.incident_response.plugins.plugin_utils.diagnosis import severity as sevtable
from ansible_collections.sre.incident_response.plugins.plugin_utils.incident_store import IncidentStore, task_redactor

PAGERDUTY_URL = 'https://events.pagerduty.com/v2/enqueue'


def _not_resent(item):
    """Why a message lost its delivery claim (exactly once): another run sent it, or holds it and sends it."""
    if item['state'] == 'sent':
        return 'already sent at %s' % item['at']
    return 'claimed by a concurrent run at %s, which sends it' % item['at']


class Run(object):
    """The state of one delivery run, filled stage by stage (ActionModule.run)."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


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

    # --- main: one run in named stages ---------------------------------------------------------------

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGSPEC)
        self._config_errors = []
        run = self._load(args, task_vars)
        self._resolve_targets(run, args, task_vars)
        self._compose(run, args)
        self._claim(run, args)
        self._render(run, args)
        self._plan_jobs(run, args)
        self._deliver(run, args)
        self._settle(run)
        self._record(run, task_vars)
        result.update(self._summarize(run))
        return result

    def _load(self, args, task_vars):
        """The incident, its diagnosis, findings and timeline (from the store), the status, severity and channel."""
        for kind in args['kinds']:
            if kind not in comms.KINDS:
                raise AnsibleActionFail('kinds: %r is not one of %s' % (kind, ', '.join(comms.KINDS)))
        try:
            status = comms.normalize_status(args['status'])
        except ValueError as exc:
            raise AnsibleActionFail(str(exc))
        store = IncidentStore.resolve(args, task_vars,
                                      required='no incident_id known: run the incident role first (or give incident_id)')
        incident = store.incident()
        if not incident:
            raise AnsibleActionFail('incident %s has no incident.json in %s: declare it first (role incident)'
                                    % (store.incident_id, store.path))
        run = Run(store=store, incident=incident, status=status, diagnosis=store.diagnosis(),
                  findings=store.findings(), events=store.timeline(), now=files.utcnow())
        run.severity = sevtable.normalize(incident.get('severity') or 'SEV4')
        run.policy = sevtable.info(run.severity)
        run.channel = args['channel'] or (args['slack'] or {}).get('channel') or run.policy['channel']
        return run

    def _resolve_targets(self, run, args, task_vars):
        """Secrets by reference only (every resolved value is scrubbed from everything returned or written), the
        PagerDuty routing of the severity's escalation, and the people to tag."""
        run.slack_url = self._secret(task_vars, (args['slack'] or {}).get('url_var'), 'slack.url_var')
        run.webhook_url = self._secret(task_vars, (args['webhook'] or {}).get('url_var'), 'webhook.url_var')
        run.webhook_token = self._secret(task_vars, (args['webhook'] or {}).get('token_var'), 'webhook.token_var')
        run.sp_cfg = args['statuspage'] or {}
        run.sp_key = self._secret(task_vars, run.sp_cfg.get('api_key_var'), 'statuspage.api_key_var')
        run.pd_cfg = args['pagerduty'] or {}
        run.routing = []
        for role in run.policy['escalation']:
            contact = (args['contacts'] or {}).get(role) or {}
            own = contact.get('pagerduty_routing_key_var') if isinstance(contact, dict) else None
            var = (run.pd_cfg.get('routing_key_vars') or {}).get(role) or own
            key = self._secret(task_vars, var, 'the PagerDuty routing key of %s' % role)
            if key and key not in [k for r, k in run.routing]:
                run.routing.append((role, key))
        secrets = [value for value in (run.slack_url, run.webhook_url, run.webhook_token, run.sp_key,
                                       run.sp_cfg.get('url')) + tuple(k for r, k in run.routing) if value]
        run.redactor = task_redactor(task_vars, self._templar)  # the inventory's secrets too (database, cache passwords)
        run.redactor.add_literals(list(dict.fromkeys(secrets)))
        # Tag people explicitly (the practice): the escalation and notify roles of this severity.
        run.mentions = []
        for role in list(run.policy.get('escalation') or []) + list(run.policy.get('notify') or []):
            contact = (args['contacts'] or {}).get(role)
            handle = contact.get('handle') if isinstance(contact, dict) else None
            if handle and handle not in run.mentions:
                run.mentions.append(handle)

    def _compose(self, run, args):
        """What the messages say: the given texts, else what the diagnosis, findings and timeline say."""
        diagnosis, incident, status = run.diagnosis, run.incident, run.status
        run.findings_text = args['findings_text'] or comms.summarize_findings(diagnosis, run.findings)
        run.actions_text = args['actions_text'] or comms.summarize_actions(run.events, diagnosis, status)
        run.impact = args['impact'] or comms.user_impact(incident, diagnosis)
        run.top = ((diagnosis or {}).get('hypotheses') or [None])[0]
        top = run.top
        run.issue = args['issue'] or (top.get('likely_cause') if (top and status != 'Investigating') else incident.get('title'))
        run.root_cause = args['root_cause'] or (top.get('likely_cause') if top else '')
        run.service = args['service'] or ', '.join((diagnosis or {}).get('affected_services') or incident.get('services') or [])

    def _claim(self, run, args):
        """Exactly once: claim each message in the incident store under its lock before rendering or sending it.
        A message sent before (or being sent by a concurrent run) is neither written nor sent again."""
        run.claiming = bool(args['deliver']) and not self._task.check_mode
        run.run_id = uuid.uuid4().hex
        run.claims, run.keys, run.already = {}, {}, []
        run.kinds = list(args['kinds'])
        if not run.claiming:
            return
        run.keys = dict((kind, comms.delivery_key(kind, 'Investigating' if kind == 'declared' else run.status,
                                                  run.incident, run.now)) for kind in run.kinds)
        run.claims = run.store.claim_deliveries(sorted(set(run.keys.values())), run.run_id, run.now)
        for kind in list(run.kinds):
            decision, rec = run.claims[run.keys[kind]]
            if decision != 'claimed':
                run.kinds.remove(kind)
                run.already.append({'kind': kind, 'key': run.keys[kind], 'state': decision, 'at': rec.get('at')})

    def _render(self, run, args):
        """Render each claimed message, redacted, into messages/ (never over an earlier one)."""
        incident, now, status = run.incident, run.now, run.status
        run.messages = []
        for kind in run.kinds:
            if kind == 'declared':
                text = comms.render_declared(incident, now, impact=run.impact)
                msg_status = 'Investigating'
            elif kind == 'update':
                text = comms.render_update(incident, status, run.findings_text, run.actions_text, now)
                msg_status = status
            elif kind == 'statuspage':
                text = comms.render_statuspage(incident, status, now, issue=run.issue, impact=run.impact,
                                               eta=args['eta'], service=run.service, root_cause=run.root_cause)
                msg_status = status
            else:
                text = comms.render_ticket(incident, run.findings_text, run.actions_text, now)
                msg_status = None
            text = run.redactor.text(text)
            file_path = run.store.write_message(kind, text, now, msg_status)
            run.messages.append({'kind': kind, 'status': msg_status, 'path': file_path, 'text': text,
                                 'key': run.keys[kind] if run.claiming else None})

    def _plan_jobs(self, run, args):
        """The deliveries due: (target, message, url, payload, headers, method) per configured target, the page
        (trigger or resolve) when the severity pages; targets a claim already sent are left out."""
        jobs = self._message_jobs(run) + self._page_jobs(run, args)
        if run.claiming:
            jobs = [job for job in jobs
                    if (run.claims[job[1]['key']][1].get('targets') or {}).get(job[0]) != 'sent']
        run.jobs = jobs

    def _message_jobs(self, run):
        """Slack, the webhook and the status page, per message."""
        incident, now = run.incident, run.now
        jobs = []
        for msg in run.messages:
            if msg['kind'] in ('declared', 'update', 'ticket') and run.slack_url:
                jobs.append(('slack', msg, run.slack_url,
                             comms.slack_payload(msg['text'], run.channel, mentions=run.mentions), {}, 'POST'))
            if run.webhook_url:
                headers = {'Authorization': 'Bearer %s' % run.webhook_token} if run.webhook_token else {}
                payload = comms.webhook_payload(incident, msg['kind'], msg['status'], msg['text'], run.channel, now)
                payload['mentions'] = run.mentions
                jobs.append(('webhook', msg, run.webhook_url, payload, headers, 'POST'))
            if msg['kind'] == 'statuspage' and run.sp_cfg.get('url') and run.sp_key and run.sp_cfg.get('publish', True):
                state = run.store.comms_state()
                payload = comms.statuspage_payload(incident, msg['status'], msg['text'], run.sp_cfg.get('component_ids'))
                base = str(run.sp_cfg['url']).rstrip('/') + '/incidents'
                auth = {'Authorization': 'OAuth %s' % run.sp_key}
                if state.get('statuspage_incident_id'):
                    jobs.append(('statuspage', msg, '%s/%s' % (base, state['statuspage_incident_id']), payload, auth, 'PATCH'))
                else:
                    jobs.append(('statuspage', msg, base, payload, auth, 'POST'))
        return jobs

    def _page_jobs(self, run, args):
        """PagerDuty: trigger when the severity pages (or page: always), resolve with the Resolved update; when
        paging is due and nobody can be paged, run.unpaged says so."""
        incident = run.incident
        jobs = []
        run.page_action = None
        run.unpaged = None
        kinds = [m['kind'] for m in run.messages]
        if args['page'] != 'never':
            wants_page = args['page'] == 'always' or run.policy['page']
            if run.status == 'Resolved' and 'update' in kinds:
                run.page_action = 'resolve' if run.routing else None
            elif wants_page and ('declared' in kinds or args['page'] == 'always'):
                run.page_action = 'trigger' if run.routing else None
                if not run.routing and run.messages:
                    # Paging is due but nobody can be paged: say so instead of staying silent.
                    run.unpaged = {'target': 'pagerduty', 'message': os.path.basename(run.messages[0]['path']),
                                   'ok': None, 'http_status': None, 'error': None, 'skipped': True,
                                   'reason': 'not configured: no pagerduty_routing_key_var for %s'
                                             % ', '.join(run.policy['escalation'])}
        if run.page_action and run.messages:
            pd_url = run.pd_cfg.get('url') or PAGERDUTY_URL
            anchor = run.messages[0]
            summary = '%s: %s' % (incident.get('title'), escape.one_line(run.impact, 300))
            top = run.top
            details = {'incident_id': run.store.incident_id, 'commander': incident.get('commander'),
                       'channel': run.channel, 'status': run.status, 'top_hypothesis': top.get('pattern') if top else None,
                       'first_action': top.get('first_action') if top else None}
            for role, key in run.routing:
                jobs.append(('pagerduty:%s' % role, anchor, pd_url,
                             comms.pagerduty_payload(key, incident, run.page_action, summary,
                                                     details=run.redactor.data(details)), {}, 'POST'))
        return jobs

    def _deliver(self, run, args):
        """Send the jobs concurrently; in check mode (or with deliver: false) nothing leaves the controller."""
        run.deliveries = []
        run.settled = dict((m['key'], {}) for m in run.messages if run.claiming)
        if not (run.jobs and args['deliver'] and not self._task.check_mode):
            reason = 'check mode' if self._task.check_mode else 'delivery disabled'
            for job in run.jobs:
                run.deliveries.append({'target': job[0], 'message': os.path.basename(job[1]['path']), 'ok': None,
                                       'http_status': None, 'error': None, 'skipped': True, 'reason': reason})
            return
        with ThreadPoolExecutor(max_workers=min(8, len(run.jobs))) as pool:
            futures = [(job, pool.submit(comms.post_json, job[2], job[3], job[4], job[5], args['timeout']))
                       for job in run.jobs]
            for job, future in futures:
                outcome = future.result()
                entry = {'target': job[0], 'message': os.path.basename(job[1]['path']), 'ok': outcome['ok'],
                         'http_status': outcome['status'], 'error': outcome['error'], 'skipped': False}
                if job[0].startswith('pagerduty'):
                    entry['event_action'] = run.page_action
                    entry['dedup_key'] = run.store.incident_id
                if job[0] == 'statuspage' and outcome['ok'] and isinstance(outcome['body'], dict) and outcome['body'].get('id'):
                    run.store.write_comms_state({'statuspage_incident_id': str(outcome['body']['id'])})
                run.deliveries.append(run.redactor.data(entry))
                if run.claiming:
                    run.settled[job[1]['key']][job[0]] = bool(outcome['ok'])

    def _settle(self, run):
        """Record in the store what each claimed message's targets did (a failed target is retried next run), and
        add the deliveries that could not be attempted (nobody to page, targets not configured)."""
        if run.claiming and run.settled:
            run.store.settle_deliveries(run.settled, run.run_id, files.utcnow())
        if run.unpaged:
            run.deliveries.append(run.unpaged)
        for problem in self._config_errors:
            run.deliveries.append({'target': problem['target'],
                                   'message': os.path.basename(run.messages[0]['path']) if run.messages else None,
                                   'ok': False, 'http_status': None, 'error': 'not configured: %s' % problem['error'],
                                   'skipped': False})

    def _record(self, run, task_vars):
        """One comms event per message, with the outcome of its deliveries."""
        records = []
        for msg in run.messages:
            mine = [d for d in run.deliveries if d['message'] == os.path.basename(msg['path'])]
            outcome = ', '.join('%s %s' % (d['target'], 'skipped' if d['skipped'] else ('ok' if d['ok'] else 'FAILED'))
                                for d in mine) or 'file only'
            title = msg['text'].splitlines()[0] if msg['text'] else msg['kind']
            records.append(run.store.event(
                'comms', '%s -> %s (%s)' % (escape.one_line(title, 160), run.channel, outcome),
                host=task_vars.get('inventory_hostname'),
                data={'message': msg['kind'], 'status': msg['status'], 'file': run.store.relpath(msg['path']),
                      'channel': run.channel, 'severity': run.severity, 'deliveries': mine}))
        run.store.append(records, run.redactor)

    def _summarize(self, run):
        """The task's result: the messages, what this run delivered, and what it did not send again and why."""
        deliveries, already, redactor = run.deliveries, run.already, run.redactor
        failed = [d for d in deliveries if d.get('ok') is False]
        report = []
        for msg in run.messages:
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
        report.append('Channel %s; deliveries: %s' % (run.channel, delivered or 'none configured (files only)'))
        return dict(
            report=[redactor.text(line) for line in report],
            changed=bool(run.messages),
            channel=run.channel,
            mentions=run.mentions,
            severity=run.severity,
            messages=[{'kind': m['kind'], 'status': m['status'], 'path': m['path'], 'text': m['text']} for m in run.messages],
            deliveries=deliveries,
            delivery_failed=len(failed),
            not_resent=already,
            paged=[d['target'].split(':', 1)[1] for d in deliveries if d['target'].startswith('pagerduty:')
                   and d.get('ok') and run.page_action == 'trigger'],
            page_action=run.page_action,
            msg=redactor.text('%d message(s) written to %s; %d delivery(ies), %d failed%s' % (
                len(run.messages), run.store.messages_dir, len(deliveries), len(failed),
                ('; %d not sent again (sent or being sent by another run)' % len(already)) if already else '')),
        )
