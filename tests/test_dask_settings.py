"""InspectorSettings: validated where they enter, safe to pickle, the token read on the worker."""

from __future__ import annotations

import pickle
import sys
import types
from typing import Any, Iterator

import pytest

from inspector import InspectorError, InvalidArgument
from inspector.contrib.dask import InspectorSettings, read_token

TOKEN = "tok-settings-3a9f"


@pytest.fixture
def secrets_module() -> Iterator[types.ModuleType]:
    """An importable module ``inspector_test_secrets`` with token callbacks."""
    module = types.ModuleType("inspector_test_secrets")
    module.token = lambda: TOKEN  # type: ignore[attr-defined]
    module.number = lambda: 42  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


@pytest.mark.parametrize("options, named", [
    ({"url": "http://example.com"}, "url"),
    ({"url": ()}, "url"),
    ({"url": "ws://x", "timeout": 0}, "timeout"),
    ({"url": "ws://x", "request_timeout": -1.0}, "request_timeout"),
    ({"url": "ws://x", "max_in_flight": 0}, "max_in_flight"),
    ({"url": "ws://x", "max_documents_in_flight": 0}, "max_documents_in_flight"),
    ({"url": "ws://x", "retries": -1}, "retries"),
    ({"url": "ws://x", "connection_cap": 0}, "connection_cap"),
    ({"url": "ws://x", "idle_release": 0}, "idle_release"),
    ({"url": "ws://x", "idle_release": None}, "idle_release"),
    ({"url": "ws://x", "token_callback": "no-colon"}, "token_callback"),
])
def test_a_bad_value_is_refused_by_name(options: Any, named: str) -> None:
    """Each bad number or name raises InvalidArgument naming the setting."""
    with pytest.raises(InvalidArgument, match=named):
        InspectorSettings(**options)


@pytest.mark.parametrize("url", [
    "ws://user:s3cr3t@docs:8765/api",
    "wss://docs/api?access_token=s3cr3t",
])
def test_a_url_with_a_credential_is_refused_without_showing_it(url: str) -> None:
    """A credential in the URL would be pickled to every worker: refused, and not repeated."""
    with pytest.raises(InvalidArgument) as caught:
        InspectorSettings(url)
    assert "s3cr3t" not in str(caught.value) and "token_env" in str(caught.value)


def test_a_token_given_as_its_variable_name_is_refused_without_showing_it() -> None:
    """token_env takes a variable's name; a token given there by mistake is not echoed."""
    with pytest.raises(InvalidArgument) as caught:
        InspectorSettings("ws://docs", token_env="eyJhbGciOi.JIUzI1-NiJ9")
    assert "eyJ" not in str(caught.value)


def test_settings_pickle_equal_and_repr_hides_the_query() -> None:
    """Settings come back equal from pickle; the repr shows the endpoint, not its query."""
    settings = InspectorSettings(("ws://a:1/api?tenant=x", "ws://b:2/api"), connection_cap=4)
    assert pickle.loads(pickle.dumps(settings)) == settings
    assert "tenant" not in repr(settings) and "ws://a:1/api" in repr(settings)


def test_equal_settings_have_equal_keys() -> None:
    """The key names the plugin: equal settings share it, different ones do not."""
    one = InspectorSettings("ws://a:1", connection_cap=2)
    assert one.key == InspectorSettings("ws://a:1", connection_cap=2).key
    assert one.key != InspectorSettings("ws://a:1", connection_cap=3).key


def test_workers_are_spread_over_the_endpoints() -> None:
    """Numbered workers take the endpoints in turn; a named worker always the same one."""
    settings = InspectorSettings(("ws://a:1", "ws://b:2"))
    assert [settings.url_for(n) for n in range(4)] == ["ws://a:1", "ws://b:2"] * 2
    assert settings.url_for("tcp://10.0.0.5:4000") == settings.url_for("tcp://10.0.0.5:4000")
    assert InspectorSettings("ws://a:1").url_for("anything") == "ws://a:1"


def test_the_token_is_read_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """token_env names the variable the worker reads."""
    monkeypatch.setenv("DOCS_TOKEN", TOKEN)
    assert read_token(InspectorSettings("ws://x", token_env="DOCS_TOKEN")) == TOKEN


def test_without_a_name_inspector_token_is_read_if_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on the command line: INSPECTOR_TOKEN if set, else no token at all."""
    monkeypatch.setenv("INSPECTOR_TOKEN", TOKEN)
    assert read_token(InspectorSettings("ws://x")) == TOKEN
    monkeypatch.delenv("INSPECTOR_TOKEN")
    assert read_token(InspectorSettings("ws://x")) is None


def test_a_named_variable_that_is_unset_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unset named variable is an InspectorError naming the variable."""
    monkeypatch.delenv("DOCS_TOKEN", raising=False)
    with pytest.raises(InspectorError, match="DOCS_TOKEN is not set"):
        read_token(InspectorSettings("ws://x", token_env="DOCS_TOKEN"))


def test_the_token_callback_is_imported_and_called(secrets_module: types.ModuleType) -> None:
    """'module:function' is imported on the worker and called for the token."""
    settings = InspectorSettings("ws://x", token_callback="inspector_test_secrets:token")
    assert read_token(settings) == TOKEN
    assert TOKEN.encode() not in pickle.dumps(settings)


def test_a_bad_token_callback_is_an_error(secrets_module: types.ModuleType) -> None:
    """A callback that cannot be imported, or returns no string, says so."""
    with pytest.raises(InspectorError, match="cannot be imported"):
        read_token(InspectorSettings("ws://x", token_callback="inspector_test_secrets:nope"))
    with pytest.raises(InspectorError, match="returned a int"):
        read_token(InspectorSettings("ws://x", token_callback="inspector_test_secrets:number"))
