# -*- coding: utf-8 -*-
# Copyright: sre.incident_response contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redaction of secrets before anything reaches the incident files.

Two layers: keys whose names look secret have their values replaced whole, and
strings are scrubbed of secret-looking substrings (URL credentials, webhook
paths, tokens, password assignments) and of every literal value the caller
knows to be secret.
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
    r'(?i)(?<=bearer )[A-Za-z0-9._~+/=-]{8,}',
    r'(?i)(?<=password=)[^\s&;,\'"]+',
    r'(?i)(?<=passwd=)[^\s&;,\'"]+',
    r'(?i)(?<=secret=)[^\s&;,\'"]+',
    r'(?i)(?<=token=)[^\s&;,\'"]+',
    r'(?i)(?<=api_key=)[^\s&;,\'"]+',
    r'(?i)(?<=apikey=)[^\s&;,\'"]+',
    r'(?i)(?<="password": ")[^"]+',
    r'(?i)(?<="token": ")[^"]+',
    r'(?i)(?<="secret": ")[^"]+',
    # PEM private keys
    r'-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----',
)


class Redactor(object):
    """Scrubs secrets from nested data. Patterns are regexes; literals are known secret values."""

    def __init__(self, patterns=None, literals=None, secret_keys=True):
        self.patterns = [re.compile(p) for p in (list(DEFAULT_PATTERNS) + list(patterns or []))]
        self.literals = sorted({str(v) for v in (literals or []) if v is not None and len(str(v)) >= 4},
                               key=len, reverse=True)
        self.secret_keys = secret_keys

    def add_literals(self, values):
        merged = set(self.literals)
        merged.update(str(v) for v in values if v is not None and len(str(v)) >= 4)
        self.literals = sorted(merged, key=len, reverse=True)

    def text(self, value):
        if not isinstance(value, str):
            return value
        for literal in self.literals:
            if literal in value:
                value = value.replace(literal, REDACTED)
        for pattern in self.patterns:
            value = pattern.sub(REDACTED, value)
        return value

    def data(self, value, _key=None):
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if self.secret_keys and isinstance(key, str) and SECRET_KEY_RE.search(key) \
                        and item not in (None, '', [], {}) and not isinstance(item, (bool, dict, list)):
                    out[key] = REDACTED
                else:
                    out[key] = self.data(item, key)
            return out
        if isinstance(value, (list, tuple)):
            return [self.data(item) for item in value]
        if isinstance(value, str):
            return self.text(value)
        return value


def redact(value, patterns=None, literals=None):
    return Redactor(patterns=patterns, literals=literals).data(value)
