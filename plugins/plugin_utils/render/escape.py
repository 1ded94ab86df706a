# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Escaping of outside text (alert labels, log lines, database and cache contents, environment) where it is rendered.

Pure functions, standard library only; one per place text is rendered:

- ``md(value, limit)``: one line of Markdown (post-mortem, status page, ``messages/``, table cells). Whitespace,
  newlines included, is folded, control characters dropped, and every character that could start HTML, a link, an
  image, a code span, emphasis or a table cell is backslash-escaped, as is a block marker (``#``, ``>``, ``-``,
  ``1.``...) at the start. Renders as the original text; cannot break the line, the table or the document around it.
- ``md_unescape(text)``: the plain text again, for a sink that shows text verbatim (a Slack code block).
- ``slack(value)``: Slack mrkdwn text by Slack's own rules (``&``, ``<``, ``>``), so ``<!channel>``, ``<@U123>`` and
  ``<https://x|y>`` from data are shown, not acted on.
- ``slack_code(value)``: ``slack()`` for the inside of a ``` block: no run of backticks can close the block.
- ``terminal(value)``: a line for the on-call console: control characters (ESC sequences that would move the
  cursor, recolour or retitle the terminal, C1 controls) and bidirectional overrides are shown as ``\\xNN`` /
  ``\\uNNNN`` instead of acting on the screen. Newlines and tabs stay.

HTML is escaped by the report's Jinja2 environment (plugins/plugin_utils/render/report.py, autoescape on every value).
Redact before escaping: a secret that was escaped no longer matches its literal value.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# C0 controls that str.split() does not fold (ESC, NUL, BEL...) and DEL; shown as nothing.
_CONTROL = re.compile(u'[\x00-\x08\x0e-\x1b\x7f]')
# Inline Markdown anywhere in a line: backslash, code span, emphasis, link/image brackets, HTML/autolink, table cell.
_MD_INLINE = re.compile(r'([\\`*\[\]<>|])')
# Underscore emphasis: an underscore not between two letters or digits (inside a word it is inert: error_spike).
_MD_UNDERSCORE = re.compile(r'(?<![^\W_])_|_(?![^\W_])')
# An entity or numeric character reference (&lt; &#60; &#x3c;) would be decoded by a Markdown renderer.
_MD_ENTITY = re.compile(r'&(?=#?[0-9A-Za-z]+;)')
# Block markers that count only at the start of a line: heading, quote, list, setext/thematic break, fence.
_MD_LINE_START = re.compile(r'^(?:([#>+=~-])|(\d{1,9})([.)]))')
_MD_UNESCAPE = re.compile(r'\\([!-/:-@\[-`{-~])')
_BACKTICK_RUN = re.compile(r'`(?=`)')


def one_line(value, limit=None):
    """The text of `value` on one line: whitespace (newlines, tabs, U+2028...) folded, controls dropped, truncated."""
    text = ' '.join(_CONTROL.sub('', str(value if value is not None else '')).split())
    if limit and len(text) > limit:
        text = text[:max(limit - 3, 0)] + '...'
    return text


def md(value, limit=None):
    """One line of Markdown that renders as `value` (folded, truncated to `limit` before escaping)."""
    text = _MD_INLINE.sub(r'\\\1', one_line(value, limit))
    text = _MD_UNDERSCORE.sub(r'\\_', text)
    text = _MD_ENTITY.sub(r'\\&', text)
    return _MD_LINE_START.sub(lambda m: '\\' + m.group(1) if m.group(1) else m.group(2) + '\\' + m.group(3), text)


def md_unescape(text):
    """Markdown backslash escapes removed: md_unescape(md(x)) == one_line(x)."""
    return _MD_UNESCAPE.sub(r'\1', str(text if text is not None else ''))


def slack(value):
    """Slack mrkdwn text: &, < and > as Slack's escapes; mentions, channel pings and links in it are inert."""
    return str(value if value is not None else '').replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')


def slack_code(value):
    """slack() for the inside of a ``` code block: a zero-width space between backticks, so none can close it."""
    return _BACKTICK_RUN.sub(u'`\u200b', slack(value))


# What a terminal acts on: C0 controls but tab and newline, DEL, C1 controls (CSI 0x9b...), and the Unicode
# bidirectional controls that reorder what is shown ("Trojan Source").
_TERMINAL = re.compile(u'[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]')


def _visible(match):
    char = match.group(0)
    return '\\x%02x' % ord(char) if ord(char) < 0x100 else '\\u%04x' % ord(char)


def terminal(value):
    """``value`` as text a terminal shows and does not act on (see the module's docstring)."""
    return _TERMINAL.sub(_visible, u'%s' % (value,))
