"""What a worker needs to open its inspector: a small frozen value that is safe to pickle.

The settings travel to every worker inside :class:`~inspector.contrib.dask.InspectorPlugin`,
so they hold no secret: the token is named (an environment variable, or an importable
``module:function`` that returns it), and read on the worker by :func:`read_token`. A URL that
carries a credential itself (``user:password@``, ``?access_token=``) is refused for the same
reason.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
from typing import Any, Callable, Dict, Optional, Tuple

import attrs

from inspector.client import DEFAULT_MAX_IN_FLIGHT
from inspector.exceptions import InspectorError, InvalidArgument
from inspector.redaction import redact, redact_url

__all__ = ["InspectorSettings", "read_store_url", "read_token"]

# The variable read when the settings name none, as on the command line.
DEFAULT_TOKEN_ENV = "INSPECTOR_TOKEN"

_CALLBACK = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _urls(value: Any) -> Tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _check_urls(instance: Any, attribute: Any, urls: Tuple[str, ...]) -> None:
    if not urls:
        raise InvalidArgument("url: give at least one ws:// or wss:// endpoint")
    for url in urls:
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            raise InvalidArgument("url: expected a ws:// or wss:// endpoint")
        if redact(url) != url or "@" in url.partition("://")[2].partition("/")[0]:
            # The settings are pickled to every worker: a secret here would travel with them.
            raise InvalidArgument(
                f"url {redact_url(url)!r} carries a credential; give the token by its "
                "environment variable (token_env) or a secrets callback (token_callback)"
            )


def _positive_or_none(instance: Any, attribute: Any, value: Optional[float]) -> None:
    if value is not None and (isinstance(value, bool) or not value > 0):
        raise InvalidArgument(f"{attribute.name} must be a positive number of seconds, or None")


def _positive(instance: Any, attribute: Any, value: float) -> None:
    if value is None:
        raise InvalidArgument(f"{attribute.name} must be a positive number of seconds")
    _positive_or_none(instance, attribute, value)


def _at_least_one(instance: Any, attribute: Any, value: Optional[int]) -> None:
    if value is None and attribute.name in ("max_in_flight", "connection_cap"):
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"{attribute.name} must be a whole number of at least 1")


def _not_negative(instance: Any, attribute: Any, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(f"{attribute.name} must be a whole number of at least 0")


def _check_token_env(instance: Any, attribute: Any, value: Optional[str]) -> None:
    if value is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
        # The value is not repeated: it may be a secret given here by mistake.
        raise InvalidArgument(f"{attribute.name} takes the name of an environment variable, "
                              "never the secret itself")


def _check_callback(instance: Any, attribute: Any, value: Optional[str]) -> None:
    if value is not None and not _CALLBACK.match(value):
        raise InvalidArgument("token_callback must be 'module:function', e.g. "
                              "'mycompany.secrets:inspector_token'")


@attrs.frozen(repr=False)
class InspectorSettings:
    """How every worker opens its :class:`~inspector.DocumentInspector`, without the token.

    Args:
        url: The documents API endpoint, or several endpoints of one service (its nodes):
            each worker then talks to one of them, chosen by its name.
        timeout: Seconds for one document, as ``DocumentInspector(timeout=...)``.
        request_timeout: Seconds for one request's reply.
        connect_timeout: Seconds for opening the connection.
        max_in_flight: Requests awaiting a reply on one worker's connection at once.
        max_documents_in_flight: Documents one worker works on at once.
        retries: Times one request is sent again after a lost connection or silence.
        token_env: The NAME of the environment variable that holds the token on the workers;
            None: ``INSPECTOR_TOKEN`` if it is set there, else no token.
        token_callback: ``'module:function'``, importable on the workers, called with no
            arguments to return the token (a secrets manager); used instead of ``token_env``.
        connection_cap: The most connections the whole cluster may hold open to one endpoint
            at once (a ``distributed.Semaphore`` per endpoint); None: no cap.
        idle_release: Seconds a worker keeps its connection, and its lease under the cap, with
            no batch to run; then it closes it so that a worker beyond the cap gets its turn.
        store_env: For workers that write to the inventory themselves (PostgreSQL): the NAME
            of the environment variable holding the database URL on the workers (the URL
            carries a password, so it never travels with the settings).

    Raises:
        InvalidArgument: a value that cannot be used, named; a URL that carries a credential.
    """

    url: Tuple[str, ...] = attrs.field(converter=_urls, validator=_check_urls)
    timeout: Optional[float] = attrs.field(default=30.0, validator=_positive_or_none)
    request_timeout: Optional[float] = attrs.field(default=10.0, validator=_positive_or_none)
    connect_timeout: Optional[float] = attrs.field(default=10.0, validator=_positive_or_none)
    max_in_flight: Optional[int] = attrs.field(default=DEFAULT_MAX_IN_FLIGHT,
                                               validator=_at_least_one)
    max_documents_in_flight: int = attrs.field(default=32, validator=_at_least_one)
    retries: int = attrs.field(default=5, validator=_not_negative)
    token_env: Optional[str] = attrs.field(default=None, validator=_check_token_env)
    token_callback: Optional[str] = attrs.field(default=None, validator=_check_callback)
    connection_cap: Optional[int] = attrs.field(default=None, validator=_at_least_one)
    idle_release: float = attrs.field(default=2.0, validator=_positive)
    store_env: Optional[str] = attrs.field(default=None, validator=_check_token_env)

    def __repr__(self) -> str:
        urls = ", ".join(redact_url(url) for url in self.url)
        return f"<InspectorSettings {urls} cap={self.connection_cap}>"

    @property
    def key(self) -> str:
        """A short digest of these settings: equal settings, equal key (names the plugin)."""
        text = repr(attrs.astuple(self))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def url_for(self, worker_name: object) -> str:
        """The endpoint a worker talks to: spread over the endpoints by the worker's name."""
        if len(self.url) == 1:
            return self.url[0]
        if isinstance(worker_name, int):
            index = worker_name
        else:  # a stable choice across processes (str hashes are salted per process)
            index = int.from_bytes(hashlib.sha256(str(worker_name).encode()).digest()[:4], "big")
        return self.url[index % len(self.url)]

    def inspector_options(self) -> Dict[str, Any]:
        """The keyword arguments for :class:`~inspector.DocumentInspector`, token aside."""
        return {
            "timeout": self.timeout,
            "request_timeout": self.request_timeout,
            "connect_timeout": self.connect_timeout,
            "max_in_flight": self.max_in_flight,
            "max_documents_in_flight": self.max_documents_in_flight,
            "retries": self.retries,
        }


def read_token(settings: InspectorSettings) -> Optional[str]:
    """Read the token where the settings say, in this process (on a worker).

    Raises:
        InspectorError: the named variable is not set, or the callback cannot be imported or
            does not return a string. The message never holds a token.
    """
    if settings.token_callback is not None:
        module_name, _, function_name = settings.token_callback.partition(":")
        try:
            callback: Callable[[], Any] = getattr(
                importlib.import_module(module_name), function_name
            )
        except (ImportError, AttributeError) as error:
            raise InspectorError(
                f"token_callback {settings.token_callback!r} cannot be imported here: "
                f"{type(error).__name__}"
            ) from None
        token = callback()
        if token is not None and not isinstance(token, str):
            raise InspectorError(
                f"token_callback {settings.token_callback!r} returned a "
                f"{type(token).__name__}, not a str"
            )
        return token or None
    if settings.token_env is None:
        return os.environ.get(DEFAULT_TOKEN_ENV) or None
    token = os.environ.get(settings.token_env)
    if not token:
        raise InspectorError(
            f"the environment variable {settings.token_env} is not set or empty on this worker"
        )
    return token


def read_store_url(settings: InspectorSettings) -> str:
    """Read the inventory's database URL where ``store_env`` says, in this process (a worker).

    Raises:
        InspectorError: ``store_env`` is not given, or its variable is not set here.
    """
    if settings.store_env is None:
        raise InspectorError("these settings name no store_env: the workers cannot write")
    url = os.environ.get(settings.store_env)
    if not url:
        raise InspectorError(
            f"the environment variable {settings.store_env} is not set or empty on this worker"
        )
    return url
