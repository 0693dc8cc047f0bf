"""Tests of inspector.redaction's handling of the caller's own credentials (issue 10)."""

from __future__ import annotations

import pytest

from inspector.redaction import REDACTED, credential_values, is_credential_header, redact_values


@pytest.mark.parametrize(
    "name",
    ["Authorization", "proxy-authorization", "Cookie", "X-Api-Key", "X-Auth-Token",
     "Private-Token", "X-Session-Id", "X-Amz-Security-Token", "X-Signature", "X-CSRF-Token",
     "X-Client-Secret", "X-Password"],
)
def test_credential_headers_are_recognised(name: str) -> None:
    """Authorization, Cookie and any name suggesting a credential are credential headers."""
    assert is_credential_header(name)


@pytest.mark.parametrize("name", ["User-Agent", "Accept-Language", "X-Request-Id", "X-Team"])
def test_ordinary_headers_are_not_credentials(name: str) -> None:
    """Headers that carry no secret are kept across origins."""
    assert not is_credential_header(name)


def test_credential_values_split_schemes_and_cookies() -> None:
    """The token of Bearer, each cookie's value and whole values are all secrets."""
    lines = ["Authorization: Bearer tok-1", "Cookie: a=c1; b=c2", "X-Team: finance"]
    secrets = credential_values(lines)
    assert set(secrets) == {"Bearer tok-1", "tok-1", "a=c1; b=c2", "c1", "c2"}
    assert [len(s) for s in secrets] == sorted(map(len, secrets), reverse=True)
    assert "finance" not in secrets


def test_redact_values_hides_every_occurrence() -> None:
    """Every occurrence of each secret is replaced; other text stays."""
    secrets = credential_values(["Authorization: Bearer tok-1"])
    text = "400 Bearer tok-1 (you sent tok-1)"
    assert redact_values(text, secrets) == f"400 {REDACTED} (you sent {REDACTED})"
    assert redact_values("nothing here", secrets) == "nothing here"
