"""Is the PSP reachable, and does the terminal hold the key it signs with?
``GET {psp_url}/v1/keys`` lists the PSP's public keys, the active one (the
one it signs with now) marked; its ``Date`` header also tells how far this
clock is from the PSP's (``terminal.doctor.clock``).

With the standard library's urllib, as ``terminal.psp_lookup`` asks the PSP
about QR codes, and with its timeout, so that an unreachable PSP costs the
doctor a few seconds at most.
"""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

from scan2pay_common import jsonfields as jf
from scan2pay_common.errors import InvalidValue
from scan2pay_common.signing import PublicKey

from ..psp_lookup import MAX_ANSWER, TIMEOUT_SECONDS
from .clock import skew_check
from .report import Check

REACH_HINT = "check psp_url, this terminal's network, and that the PSP runs"
KEY_HINT = (
    "set psp_public_key to what `psp-server keys show` prints on its last line, on the PSP host"
)


@dataclass(frozen=True, slots=True)
class Keys:
    """The PSP's answer: its keys (active first where it says so) and its Date."""

    listed: tuple[tuple[PublicKey, bool], ...]  # (key, active)
    date: str | None
    sent: float
    received: float

    @property
    def active(self) -> PublicKey | None:
        signing = [key for key, active in self.listed if active]
        return signing[0] if signing else None


class Unreachable(Exception):
    def __init__(self, what: str, hint: str) -> None:
        super().__init__(what)
        self.what = what
        self.hint = hint


def checks(psp_url: str | None, configured: Sequence[PublicKey]) -> list[Check]:
    """The ``psp``, ``psp key`` and ``clock skew`` checks. Blocking."""
    if psp_url is None:
        why = "no psp_url is set"
        hint = "set psp_url to the PSP's URL to check its key and its clock"
        return [
            Check.skip("psp", why, hint),
            Check.skip("psp key", why),
            Check.skip("clock skew", why),
        ]
    url = psp_url.rstrip("/") + "/v1/keys"
    try:
        keys = fetch(url)
    except Unreachable as error:
        return [
            Check.fail("psp", error.what, error.hint),
            Check.skip("psp key", "the PSP did not answer"),
            Check.skip("clock skew", "the PSP did not answer"),
        ]
    listed = ", ".join(key.kid for key, _ in keys.listed)
    return [
        Check.ok("psp", f"{url} answers; it lists {listed}"),
        key_check(keys, configured),
        skew_check(keys.date, keys.sent, keys.received),
    ]


def fetch(url: str) -> Keys:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - psp_url is http(s), checked by the config
    sent = time.time()
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - psp_url is http(s), checked by the config
            body = response.read(MAX_ANSWER)
            date = response.headers.get("Date")
    except urllib.error.HTTPError as error:
        hint = (
            "psp_url must be the PSP's own URL, which answers GET /v1/keys"
            if error.code == 404
            else "see the PSP's log"
        )
        raise Unreachable(f"{url} answered HTTP {error.code}", hint) from error
    except urllib.error.URLError as error:
        if isinstance(error.reason, ssl.SSLCertVerificationError):
            raise Unreachable(
                f"{url}: the PSP's certificate is not trusted: {error.reason.verify_message}",
                "the PSP needs a certificate this system trusts (its CA in the system store)",
            ) from error
        raise Unreachable(f"cannot reach {url}: {error.reason}", REACH_HINT) from error
    except (OSError, TimeoutError) as error:
        raise Unreachable(f"cannot reach {url}: {error}", REACH_HINT) from error
    received = time.time()
    try:
        listed = tuple(
            (PublicKey.parse(jf.string(entry, "public_key")), jf.boolean(entry, "active"))
            for entry in jf.load_object(body, what="key list")["keys"]
        )
    except (InvalidValue, KeyError, TypeError) as error:
        raise Unreachable(
            f"{url} answered, but not with the PSP's key list ({error})",
            "psp_url must be the PSP's own URL, which answers GET /v1/keys",
        ) from error
    return Keys(listed, date, sent, received)


def key_check(keys: Keys, configured: Sequence[PublicKey]) -> Check:
    active = keys.active
    if active is None:
        return Check.fail("psp key", "the PSP lists no key it signs with", "see the PSP's log")
    if not configured:
        return Check.fail(
            "psp key",
            f"no psp_public_key is set; the PSP signs with {active.text}",
            f"{KEY_HINT}: without it the terminal believes its display topic unchecked",
        )
    if active not in configured:
        held = ", ".join(key.kid for key in configured)
        return Check.fail(
            "psp key",
            f"the PSP signs with {active.kid} ({active.text}); psp_public_key holds {held}",
            KEY_HINT,
        )
    listed = {key for key, _ in keys.listed}
    gone = [key.kid for key in configured if key not in listed]
    extra = f"; {', '.join(gone)} no longer listed by the PSP" if gone else ""
    return Check.ok("psp key", f"the PSP signs with {active.kid}, which is configured{extra}")
