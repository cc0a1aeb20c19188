"""Redaction rules (the server's file) and bounded reprs."""

from __future__ import annotations

import json
from importlib import resources

import pytest

import devtrace
from devtrace._repr import bounded_json, bounded_repr, shorten
from devtrace.redact import add_rules, is_secret_name, rules


def test_the_rules_file_is_shipped_and_every_rule_applies():
    document = json.loads(resources.files("devtrace").joinpath("redaction_rules.json").read_text())
    assert document["version"] == 1
    assert [r.name for r in rules()][: len(document["rules"])] == [r["name"] for r in document["rules"]]
    samples = {
        "private_key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
        "github_token": "ghp_" + "a1" * 18,
        "github_fine_grained_token": "github_pat_" + "B" * 30,
        "anthropic_api_key": "sk-ant-api03-" + "c" * 30,
        "openai_api_key": "sk-proj-" + "d" * 30,
        "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "google_api_key": "AIza" + "e" * 35,
        "slack_token": "xoxb-123456789012-abcdef",
        "stripe_key": "sk_live_" + "f" * 24,
        "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlX2hlcmU",
        "email": "ana.lopez@example.org",
    }
    for name, secret in samples.items():
        assert devtrace.redact(f"x {secret} y") == f"x [REDACTED:{name}] y", name


def test_only_the_secret_group_is_replaced():
    assert devtrace.redact("git clone https://ana:s3cr3t@git.example.com/r.git") == (
        "git clone https://ana:[REDACTED:url_password]@git.example.com/r.git"
    )
    assert devtrace.redact("Authorization: Bearer abc.def.ghi123jkl456") == "Authorization: Bearer [REDACTED:bearer_token]"
    assert devtrace.redact('{"db_password": "hunter22"}') == '{"db_password": "[REDACTED:password_assignment]"}'
    # A token inside a URL keeps the more specific marker, as on the server.
    assert devtrace.redact("https://x:ghp_" + "a1" * 18 + "@github.com/o/r") == (
        "https://x:[REDACTED:github_token]@github.com/o/r"
    )
    assert devtrace.redact("max_tokens=512 input_tokens: 12") == "max_tokens=512 input_tokens: 12"


def test_extra_rules_apply_after_the_built_in_ones():
    add_rules([{"name": "ticket", "pattern": r"\bTCK-[0-9]{4}\b"}])
    assert devtrace.redact("see TCK-1234") == "see [REDACTED:ticket]"
    with pytest.raises(ValueError, match="not a valid redaction rules file"):
        add_rules([{"name": "bad", "pattern": "(unclosed"}])


def test_secret_names():
    for name in ("password", "db_password", "api_key", "apikey", "OPENAI_API_KEY", "auth_token", "session_id", "cookie"):
        assert is_secret_name(name), name
    for name in ("tokens", "max_tokens", "author", "passage", "keyword"):
        assert not is_secret_name(name), name


def test_bounded_reprs():
    assert bounded_repr(42) == ("int", "42")
    assert bounded_repr("x" * 500, 40) == ("str", "'xxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxx'")
    kind, text = bounded_repr(list(range(1000)))
    assert kind == "list" and text == "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ...]"
    kind, text = bounded_repr({"a": {"b": {"c": {"d": {"e": 1}}}}})
    assert text == "{'a': {'b': {'c': {'d': {...}}}}}"

    class Broken:
        def __repr__(self):
            raise RuntimeError("no")

    assert bounded_repr(Broken()) == ("test_redact.test_bounded_reprs.<locals>.Broken", "<test_bounded_reprs.<locals>.Broken (repr failed: RuntimeError)>")

    class Chatty:
        def __repr__(self):
            return "Chatty(" + "token=ghp_" + "z" * 40 + " " + "w" * 500 + ")"

    kind, text = bounded_repr(Chatty(), 80)
    assert len(text) == 80
    assert text.startswith("Chatty(token=[REDACTED:github_token] www")
    assert text.endswith("… (+472 chars)")
    # A secret longer than the bound is redacted before it is cut, so no part of it shows.
    _, text = bounded_repr("sk-proj-" + "q" * 300, 30)
    assert "qqq" not in text and "REDACTED" in text


def test_secret_named_strings_are_replaced_whole():
    assert bounded_repr("hunter2", name="password") == ("str", "[REDACTED:secret_name]")
    assert bounded_repr(3, name="token_count") == ("int", "3")
    assert bounded_repr({"password": "x", "user": "ana"})[1] == "{'password': '[REDACTED:secret_name]', 'user': 'ana'}"


def test_bounded_json_and_shorten():
    assert bounded_json({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert bounded_json({"k": "v" * 100}, 30) == '{"k":"vvvvvvvvvvv… (+91 chars)'
    assert shorten("abc", 3) == "abc"
