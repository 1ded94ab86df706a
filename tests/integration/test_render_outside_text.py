"""Outside text through the real rendering path (issue 18, row 2): the backend's 5xx log lines carry markup in
their request paths; triage, an update and playbooks/report.yml run as an on-call engineer runs them, against the
lab and a real HTTP receiver on 127.0.0.1. Then:

- report.html shows the paths as text: no element or attribute from data, one Content-Security-Policy that allows no
  script and only the page's own style (by hash); headless Chromium loads it without a single console message
  (a policy violation, a script, a blocked load would log one);
- Slack received the text escaped by Slack's rules (`<!channel>` and links from data inert), in one code block;
- messages/*.md and the post-mortem render, in a CommonMark parser, as text: no HTML, link or image.

The lines are written to the backend container's stdout, which is what `docker logs` - the app_logs probe's source
- returns: the lab backend answers an unknown path with a 404, so a request alone would not make a 5xx line with
it. The backend is recreated afterwards (fresh logs for the next test).
"""
import base64
import datetime
import glob
import hashlib
import html.parser
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest
from markdown_it import MarkdownIt

from conftest import heal, lab_lock, run  # noqa: E402
from test_comms_delivery import Receiver, comms_vars  # noqa: E402

SCRIPT = '<script>alert(1)</script>'
IMG = '<img src=x onerror=alert(2)>'
SLACK = '<!channel>|<@U123>|[x](https://evil.example/)'
PATHS = ['/api/' + SCRIPT, '/api/' + IMG, '/api/' + SLACK]
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync', '--no-first-run']


def inject_5xx_lines(container, count=8):
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='milliseconds').replace('+00:00', 'Z')
    lines = [json.dumps({'ts': now, 'level': 'ERROR', 'msg': 'upstream failed', 'method': 'GET', 'path': path,
                         'status': 500, 'latency_ms': 2.0}) for dummy in range(count) for path in PATHS]
    subprocess.run(['docker', 'exec', '-i', container, 'sh', '-c', 'cat > /proc/1/fd/1'],
                   input='\n'.join(lines) + '\n', text=True, check=True, timeout=60)


class Page(html.parser.HTMLParser):
    def __init__(self, text):
        super(Page, self).__init__(convert_charrefs=True)
        self.tags, self.attrs, self.styles, self.csp, self.text = [], [], [], [], []
        self._in_style = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend((tag, name, value) for name, value in attrs)
        self._in_style = tag == 'style'
        if tag == 'meta' and (dict(attrs).get('http-equiv') or '').lower() == 'content-security-policy':
            self.csp.append(dict(attrs)['content'])

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        (self.styles if self._in_style else self.text).append(data)


@pytest.fixture(scope='module')
def story(lab, tmp_path_factory):
    root = tmp_path_factory.mktemp('outside')
    incident_id = 'INC-20261204-0300-xss1'
    incident = {'id': incident_id, 'dir': str(root / 'incidents'), 'path': str(root / 'incidents' / incident_id),
                'vars': {'incident_id': incident_id, 'incident_dir': str(root / 'incidents')}}
    receiver = Receiver()
    out = {'incident': incident, 'receiver': receiver, 'root': root}
    try:
        with lab_lock():
            try:
                inject_5xx_lines(lab.backend)
                out['triage'] = run('playbooks/triage.yml', comms_vars(incident, receiver), timeout=300)
                assert out['triage'].rc == 0, out['triage']
            finally:
                heal('pool_exhaustion')  # recreates the backend: the injected lines leave its log
        out['update'] = run('playbooks/communicate.yml', dict(comms_vars(incident, receiver), status='Identified'),
                            timeout=120)
        assert out['update'].rc == 0, out['update']
        out['report'] = run('playbooks/report.yml', incident['vars'], timeout=120)
        assert out['report'].rc == 0, out['report']
        with open(os.path.join(incident['path'], 'report.html')) as handle:
            out['html'] = handle.read()
        yield out
    finally:
        receiver.close()


def test_the_payloads_reached_the_incident(story):
    """The premise: the paths are in the findings (else the other tests prove nothing)."""
    with open(os.path.join(story['incident']['path'], 'findings.json')) as handle:
        errors = [f for f in json.load(handle) if f['check'] == 'app.errors'][0]
    assert errors['status'] == 'crit' and SCRIPT in errors['summary'] and IMG in errors['summary'], errors


def test_report_shows_outside_text_as_text_under_a_strict_policy(story):
    page = Page(story['html'])
    assert not {'script', 'img', 'iframe', 'object', 'embed', 'link', 'base', 'form'} & set(page.tags)
    assert not [a for a in page.attrs if a[1].startswith('on') or a[1] in ('style', 'src', 'srcdoc')], page.attrs
    text = ''.join(page.text)
    assert SCRIPT in text and IMG in text and '<!channel>' in text  # shown, as text
    assert len(page.csp) == 1 and len(page.styles) == 1
    policy = dict((d.split()[0], d.split()[1:]) for d in page.csp[0].split(';') if d.strip())
    digest = base64.b64encode(hashlib.sha256(page.styles[0].encode('utf-8')).digest()).decode()
    assert policy == {'default-src': ["'none'"], 'style-src': ["'sha256-%s'" % digest], 'img-src': ["'none'"],
                      'base-uri': ["'none'"], 'form-action': ["'none'"]}, policy
    assert re.search(r'Report \S+/report\.html \(updated\): SEV\d', story['report'].stdout), story['report']


def test_report_in_headless_chromium_logs_nothing(story):
    """The browser applies the policy: a wrong style hash, a script or a blocked load would log a console message."""
    exe = shutil.which('chromium')
    assert exe, 'chromium is missing: run make setup (scripts/setup-system.sh installs it)'
    profile = tempfile.mkdtemp(prefix='render-chromium-')
    try:
        dom = subprocess.run([exe] + CHROMIUM_FLAGS + ['--user-data-dir=' + profile, '--enable-logging=stderr', '--v=0',
                                                       '--dump-dom', 'file://' + os.path.join(story['incident']['path'],
                                                                                              'report.html')],
                             capture_output=True, text=True, timeout=120, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert not [x for x in dom.stderr.splitlines() if ':CONSOLE' in x], dom.stderr[-2000:]
    assert '<script' not in dom.stdout and '<img' not in dom.stdout
    assert '&lt;script&gt;alert(1)&lt;/script&gt;' in dom.stdout


def test_slack_got_the_text_escaped(story):
    texts = [r['json']['text'] for r in story['receiver'].by_path('/services/')]
    update = [t for t in texts if 'INCIDENT UPDATE' in t]
    assert len(update) == 1, texts
    assert '&lt;script&gt;alert(1)&lt;/script&gt;' in update[0], update[0]
    for text in texts:
        block = text[text.index('```'):]
        assert block.count('```') == 2 and block.endswith('```'), text
        assert '<' not in block and '>' not in block, block  # <!channel>, <@U123> from data: inert
    hooks = [r['json']['text'] for r in story['receiver'].by_path('/hook/') if r['json']['event'] == 'incident.update']
    assert hooks and '<script>' not in hooks[0]


def test_messages_and_postmortem_render_as_text(story):
    md = MarkdownIt('commonmark').enable('table')
    path = story['incident']['path']
    names = sorted(glob.glob(os.path.join(path, 'messages', '*.md'))) + glob.glob(os.path.join(path, 'postmortem-*.md'))
    assert any(n.endswith('-update-identified.md') for n in names), names
    shown = ''
    for name in names:
        with open(name) as handle:
            tokens = md.parse(handle.read())
        kinds = {t.type for t in tokens} | {c.type for t in tokens for c in (t.children or [])}
        assert not kinds & {'html_inline', 'html_block', 'link_open', 'image'}, (name, kinds)
        shown += ''.join(c.content for t in tokens for c in (t.children or []) if c.type in ('text', 'code_inline'))
    assert SCRIPT in shown and IMG in shown
