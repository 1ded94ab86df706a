"""Hostile input: the payloads the collection must treat as data wherever outside text reaches it.

Used by tests/integration/test_hostile_input.py (every outside path of the lab) and by unit tests. Every payload
that would run code if it were templated or put into a shell creates a canary file named after a token: a canary
that exists after a run means something executed outside input.
"""
import os
import uuid


class Corpus(object):
    """One set of payloads with its own canary directory (so parallel runs never see each other's canaries)."""

    def __init__(self, canary_dir, secrets=()):
        self.canary_dir = str(canary_dir)
        self.token = uuid.uuid4().hex[:10]
        self.secrets = tuple(secrets)
        self._canaries = []

    def canary(self, how):
        path = os.path.join(self.canary_dir, 'canary-%s-%s' % (self.token, how))
        self._canaries.append(path)
        return path

    def executed(self):
        """The canaries that exist: each one is a payload that ran."""
        return [p for p in self._canaries if os.path.exists(p)]

    def code(self):
        """Payloads that execute something when templated by Jinja/Ansible or evaluated by a shell."""
        return [
            "{{ lookup('ansible.builtin.pipe', 'touch %s') }}" % self.canary('jinja-pipe'),
            "{{ lookup('pipe','id > %s') }}" % self.canary('jinja-id'),
            "{%% set x = lookup('pipe', 'touch %s') %%}done" % self.canary('jinja-stmt'),
            "{{ query('ansible.builtin.pipe', 'touch %s') }}" % self.canary('jinja-query'),
            "$(touch %s)" % self.canary('shell-subst'),
            "`touch %s`" % self.canary('backtick'),
            "x; touch %s #" % self.canary('semicolon'),
            "' ; touch %s ; '" % self.canary('quote-break'),
        ]

    @staticmethod
    def math():
        """Jinja that would render differently: its rendered form must never appear."""
        return [('sum {{ 7*7 }}', 'sum 49'), ('{{ 6*7 }}-answer', '42-answer'), ('{% if true %}yes{% endif %}x', 'yesx')]

    @staticmethod
    def markup():
        """Payloads that are active in HTML, Slack mrkdwn or Markdown when not escaped."""
        return ['<script>alert(1)</script>', '<img src=x onerror=alert(2)>', '<!channel>', '<@U0ADMIN1>',
                '<https://evil.invalid|click here>', '| a | b |', '[link](javascript:alert(3))', '</td></tr><tr><td>x']

    def everything(self):
        return self.code() + [m for m, dummy in self.math()] + self.markup() + list(self.secrets)

    @staticmethod
    def big(size=1024 * 1024):
        return 'A' * size

    @staticmethod
    def deep_json(depth=100000):
        return '[' * depth + ']' * depth

    @staticmethod
    def invalid_utf8():
        return b'bad-\xff\xfe-utf8-\xc3\x28'


# Raw markup that must never appear in a rendered HTML page or a Slack text when it came from outside.
ACTIVE_HTML = ('<script>alert(1)', '<img src=x onerror', '</td></tr><tr><td>x')
ACTIVE_SLACK = ('<!channel>', '<@U0ADMIN1>', '<https://evil.invalid|click here>')
