"""plugins/plugin_utils/render/escape.py: outside text rendered as text in Markdown (tables included) and Slack mrkdwn.

What the escaped text becomes is checked with a real CommonMark parser (markdown-it-py, with GFM tables), not by
looking for backslashes.
"""
import html

import pytest
from markdown_it import MarkdownIt

from ansible_collections.sre.incident_response.plugins.plugin_utils.render import escape

PAYLOADS = [
    '<script>alert(1)</script>',
    '<img src=x onerror=alert(2)>',
    'GET /api/x | 500 | injected cell',
    'line one\nline two\r\n| a | b |\n|---|---|',
    '[click here](https://evil.example/phish) ![beacon](https://evil.example/p.png)',
    '<https://evil.example/> and <mailto:x@evil.example>',
    '`code` ``` fence ```',
    '*bold* **strong** _em_',
    '# heading',
    '> quote',
    '- item',
    '1. item',
    '2) item',
    '---',
    '=== setext',
    '~~~ fence',
    '&lt;script&gt; &#60;b&#62; &amp;',
    'back\\slash \\<not-a-tag\\> \\\\',
    '<!channel> <@U123> <https://evil.example|click>',
    'nul\x00 esc\x1b[31m red bell\x07',
    'u2028\u2028next',
]

MD = MarkdownIt('commonmark').enable('table')


def _inline_types(tokens):
    out = []
    for token in tokens:
        out.append(token.type)
        out.extend(child.type for child in (token.children or []))
    return out


@pytest.mark.parametrize('payload', PAYLOADS)
def test_md_renders_as_the_text_itself(payload):
    line = escape.md(payload)
    assert '\n' not in line and '\r' not in line
    tokens = MD.parse(line)
    # one paragraph of plain text: no HTML, link, image, code span, emphasis, heading, list, quote, table, fence
    assert [t.type for t in tokens] == ['paragraph_open', 'inline', 'paragraph_close'], (payload, line)
    assert set(_inline_types(tokens)) <= {'paragraph_open', 'inline', 'paragraph_close', 'text', 'softbreak'}, line
    # and that text is the original, folded onto one line
    rendered = MD.render(line)
    assert rendered == '<p>%s</p>\n' % html.escape(escape.one_line(payload), quote=True), (payload, line, rendered)


@pytest.mark.parametrize('payload', PAYLOADS)
def test_md_in_a_table_cell_keeps_the_table(payload):
    table = '| check | summary |\n|---|---|\n| %s | %s |\n' % (escape.md('app.errors'), escape.md(payload))
    tokens = MD.parse(table)
    cells = [tokens[i + 1] for i, t in enumerate(tokens) if t.type == 'td_open']
    assert len(cells) == 2 and len([t for t in tokens if t.type == 'tr_open']) == 2, (payload, table)
    children = [c.type for c in cells[1].children]
    assert set(children) <= {'text'}, (payload, children)
    assert ''.join(c.content for c in cells[1].children) == escape.one_line(payload)


def test_md_truncates_before_escaping_and_unescape_is_exact():
    text = '<' * 50
    line = escape.md(text, limit=10)
    assert line == '\\<' * 7 + '...'  # never half an escape
    for payload in PAYLOADS:
        assert escape.md_unescape(escape.md(payload)) == escape.one_line(payload)
    assert escape.md(None) == '' and escape.md(42) == '42'


def test_md_keeps_ordinary_text_readable():
    plain = 'Bug in the new code (release 1.1.0): error_spike_after_deploy on app-backend/app.errors, 100% of requests'
    assert escape.md(plain) == plain


@pytest.mark.parametrize('payload,expected', [
    ('<!channel> ping', '&lt;!channel&gt; ping'),
    ('<@U123>', '&lt;@U123&gt;'),
    ('<https://evil.example|click>', '&lt;https://evil.example|click&gt;'),
    ('a & b', 'a &amp; b'),
    ('&lt;', '&amp;lt;'),
])
def test_slack_escapes_by_slacks_rules(payload, expected):
    assert escape.slack(payload) == expected


def test_slack_code_cannot_close_its_block():
    out = escape.slack_code('a ``` b ```` c')
    assert '``' not in out and out.replace(u'\u200b', '') == 'a ``` b ```` c'
    block = '```\n%s```' % escape.slack_code('x```<!here>')
    assert block.count('```') == 2 and '<' not in block


def test_terminal_shows_control_characters_and_keeps_text():
    assert escape.terminal('plain é – ok\tx\ny') == 'plain é – ok\tx\ny'
    assert escape.terminal('\x1b[31mred\x1b[0m') == '\\x1b[31mred\\x1b[0m'
    assert escape.terminal('a\x00b\x7fc\x9bd') == 'a\\x00b\\x7fc\\x9bd'
    assert escape.terminal('\u202eevil\u2066') == '\\u202eevil\\u2066'
    assert escape.terminal(42) == '42'
