"""The shared helpers: error text, redaction, Retry-After, aware times, ${NAME}."""

from __future__ import annotations

import datetime as dt

import pytest

from sync_pipelines.common.env_vars import UnsetVariableError, interpolate
from sync_pipelines.common.error_text import first_line
from sync_pipelines.common.redaction import redact, secret_values
from sync_pipelines.common.retry_after import retry_after_seconds
from sync_pipelines.common.time import aware


def test_first_line_prefers_the_driver_message():
    class Wrapped(Exception):
        orig = ValueError("driver says no\nmore detail")

    assert first_line(Wrapped("outer")) == "driver says no"
    assert first_line(RuntimeError()) == "RuntimeError"


def test_one_threshold_for_secrets_longest_first():
    assert secret_values(["ab", "abc", None, "", "abcdef", "abc"]) == ["abcdef", "abc"]
    assert redact("pw abcdef and abc", secret_values(["abc", "abcdef"])) == "pw *** and ***"


def test_retry_after_seconds_or_an_http_date():
    now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    assert retry_after_seconds(" 7 ") == 7.0
    assert retry_after_seconds("-3") == 0.0
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("soon") is None


def test_aware_assumes_utc():
    naive = dt.datetime(2026, 1, 1)
    assert aware(naive).tzinfo is dt.UTC
    assert aware(None) is None


def test_env_vars_interpolate_in_order_with_defaults_and_escapes(monkeypatch):
    monkeypatch.setenv("SP_TEST_SET", "from-env")
    monkeypatch.delenv("SP_TEST_UNSET", raising=False)
    assert interpolate("${SP_TEST_SET}/${DIR}", {"DIR": "here", "SP_TEST_SET": "no"}) == (
        "from-env/here"
    )
    assert interpolate("${HOME_LIKE}", fallbacks={"HOME_LIKE": lambda: "/h"}) == "/h"
    assert interpolate("${SP_TEST_UNSET:-dflt} $${SP_TEST_SET}") == "dflt ${SP_TEST_SET}"
    with pytest.raises(UnsetVariableError, match="SP_TEST_UNSET is not set"):
        interpolate("${SP_TEST_UNSET}")
