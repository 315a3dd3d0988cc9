"""Requests under an Idempotency-Key that this process is still serving."""

from __future__ import annotations

from psp_server.core.errors import Refusal
from psp_server.core.records import IdempotencyKey


class InFlight:
    """The idempotency keys whose first request this process is working on.

    A second request with such a key is answered ``request_in_progress``
    at once rather than queued behind the first. The database stays the
    judge of what was done: a key whose request finished (here, in another
    process, or before a restart) is found there and replayed.
    """

    def __init__(self) -> None:
        self._scopes: set[tuple[str, str, str]] = set()

    def __contains__(self, scope: object) -> bool:
        return scope in self._scopes

    def hold(self, key: IdempotencyKey | None) -> _Held:
        if key is not None and key.scope in self._scopes:
            raise Refusal.REQUEST_IN_PROGRESS.error()
        return _Held(self._scopes, None if key is None else key.scope)


class _Held:
    """``InFlight.hold``'s context: a class, as a generator-based context
    manager costs more than the check it wraps on every request."""

    __slots__ = ("_scope", "_scopes")

    def __init__(self, scopes: set[tuple[str, str, str]], scope: tuple[str, str, str] | None):
        self._scopes = scopes
        self._scope = scope

    def __enter__(self) -> None:
        if self._scope is not None:
            self._scopes.add(self._scope)

    def __exit__(self, *exc_info: object) -> None:
        if self._scope is not None:
            self._scopes.discard(self._scope)
