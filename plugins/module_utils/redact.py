# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redaction of secrets before anything reaches the incident files.

Two layers: keys whose names look secret have their values replaced whole, and
strings are scrubbed of secret-looking substrings (URL credentials, webhook
paths, tokens, password assignments) and of every literal value the caller
knows to be secret. Dict KEYS are strings like any other: outside data is often
keyed by what it holds (request paths, application names, Redis keys), so a key
is scrubbed too; when two keys become the same, the later one gets a suffix
(`` (2)``, `` (3)``...) and no value is lost.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

REDACTED = '********'

SECRET_KEY_RE = re.compile(
    r'(pass(word|wd)?|secret|token|api[_-]?key|routing[_-]?key|integration[_-]?key|'
    r'webhook([_-]?url)?|authorization|credential|private[_-]?key|dsn|cookie)$',
    re.IGNORECASE)

DEFAULT_PATTERNS = (
    # scheme://user:password@host
    r'(?<=://)[^/\s:@]+:[^/\s@]+(?=@)',
    # Slack incoming webhooks and similar hook paths
    r'hooks\.slack\.com/services/[A-Za-z0-9/_-]+',
    r'(?<=/services/)[A-Za-z0-9_-]{6,}/[A-Za-z0-9_-]{6,}/[A-Za-z0-9_-]{6,}',
    # bearer tokens and key=value secrets
    r'(?i:(?<=bearer )[A-Za-z0-9._~+/=-]{8,})',
    r'(?i:(?<=password=)[^\s&;,\'"]+)',
    r'(?i:(?<=passwd=)[^\s&;,\'"]+)',
    r'(?i:(?<=secret=)[^\s&;,\'"]+)',
    r'(?i:(?<=token=)[^\s&;,\'"]+)',
    r'(?i:(?<=api_key=)[^\s&;,\'"]+)',
    r'(?i:(?<=apikey=)[^\s&;,\'"]+)',
    r'(?i:(?<="password": ")[^"]+)',
    r'(?i:(?<="token": ")[^"]+)',
    r'(?i:(?<="secret": ")[^"]+)',
    # PEM private keys
    r'-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----',
)
# Each default pattern runs only over a string that holds one of its hints (in lower case): a probe result has
# thousands of short strings and long log excerpts, nearly none of them with a secret.
_DEFAULT_RULES = tuple((hints, re.compile('|'.join('(?:%s)' % DEFAULT_PATTERNS[i] for i in indexes))) for hints, indexes in (
    (('://',), (0,)),
    (('/services/',), (1, 2)),
    (('bearer ',), (3,)),
    (('password=', 'passwd=', 'secret=', 'token=', 'api_key=', 'apikey='), (4, 5, 6, 7, 8, 9)),
    (('"password": "', '"token": "', '"secret": "'), (10, 11, 12)),
    (('private key',), (13,)),
))
_KEY_CACHE_MAX = 10000


class Redactor(object):
    """Scrubs secrets from nested data. Patterns are regexes; literals are known secret values."""

    def __init__(self, patterns=None, literals=None, secret_keys=True):
        self.patterns = [re.compile(p) for p in (patterns or [])]  # the caller's, after the defaults
        self.literals = sorted({str(v) for v in (literals or []) if v is not None and len(str(v)) >= 4},
                               key=len, reverse=True)
        self.secret_keys = secret_keys
        self._keys = {}  # key -> its redacted text (keys repeat: requests, errors, p95_ms...)

    def add_literals(self, values):
        merged = set(self.literals)
        merged.update(str(v) for v in values if v is not None and len(str(v)) >= 4)
        self.literals = sorted(merged, key=len, reverse=True)
        self._keys = {}

    def text(self, value):
        if not isinstance(value, str):
            return value
        for literal in self.literals:
            if literal in value:
                value = value.replace(literal, REDACTED)
        lower = value.lower()
        for hints, pattern in _DEFAULT_RULES:
            if any(hint in lower for hint in hints):
                value = pattern.sub(REDACTED, value)
                lower = value.lower()
        for pattern in self.patterns:
            value = pattern.sub(REDACTED, value)
        return value

    def key(self, key, taken=()):
        """A dict key scrubbed like any text; a suffix keeps it apart from the keys already `taken`."""
        if not isinstance(key, str):
            return key
        new = self._keys.get(key)
        if new is None:
            new = self.text(key)
            if len(self._keys) < _KEY_CACHE_MAX:
                self._keys[key] = new
        if new in taken:
            number = 2
            while '%s (%d)' % (new, number) in taken:
                number += 1
            new = '%s (%d)' % (new, number)
        return new

    def data(self, value, _key=None):
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                new_key = self.key(key, out)
                if self.secret_keys and isinstance(key, str) and SECRET_KEY_RE.search(key) \
                        and item not in (None, '', [], {}) and not isinstance(item, (bool, dict, list)):
                    out[new_key] = REDACTED
                else:
                    out[new_key] = self.data(item, key)
            return out
        if isinstance(value, (list, tuple)):
            return [self.data(item) for item in value]
        if isinstance(value, str):
            return self.text(value)
        return value


def redact(value, patterns=None, literals=None):
    return Redactor(patterns=patterns, literals=literals).data(value)
