"""The bridge's exceptions, each with the exit code the CLI ends with and the
code the local API reports."""

from __future__ import annotations

# Exit codes of ``cashier-bridge checkout``; docs/cashier.md lists them.
EXIT_PAID = 0
EXIT_BAD_INPUT = 2
EXIT_PSP_UNREACHABLE = 3
EXIT_BROKER_UNREACHABLE = 4
EXIT_TERMINAL_OFFLINE = 5
EXIT_CANCELLED = 6
EXIT_EXPIRED = 7
EXIT_PSP_REFUSED = 8
EXIT_INTERRUPTED = 130


class BridgeError(Exception):
    exit_code = 1
    code = "internal_error"  # the local API's error code

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(BridgeError):
    exit_code = EXIT_BAD_INPUT
    code = "bad_input"


class KeyRejected(BadInput):
    """The PSP answered 401: the merchant key is unknown, revoked or replaced."""


class PspUnreachable(BridgeError):
    exit_code = EXIT_PSP_UNREACHABLE
    code = "psp_unreachable"


class PspRefused(BridgeError):
    """The PSP answered with an error (a 4xx other than auth, or a 5xx)."""

    exit_code = EXIT_PSP_REFUSED
    code = "psp_refused"

    def __init__(self, message: str, *, psp_code: str | None = None, status: int = 0) -> None:
        super().__init__(message)
        self.psp_code = psp_code  # the PSP's own error code, like order_conflict
        self.status = status  # the HTTP status it answered with


class BrokerUnreachable(BridgeError):
    exit_code = EXIT_BROKER_UNREACHABLE
    code = "broker_unreachable"


class TerminalOffline(BridgeError):
    exit_code = EXIT_TERMINAL_OFFLINE
    code = "terminal_offline"
