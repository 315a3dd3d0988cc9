"""Checking a webhook's signature never raises: ``signing.verify`` and the
``verify`` that docs/webhooks.md gives merchants, both run here against
hostile ``Scan2pay-Signature`` headers (huge, negative and non-ASCII
numbers, empty, repeated and missing parts, an enormous header). The
docs' code is read out of the markdown, so that it cannot drift from what
is tested; its sample receiver is run too, on loopback, and must answer 400
to each hostile header and go on serving."""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from psp_server.webhooks import signing

DOCS = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"
SECRET = "whsec_Jq3hostile-header-test-secret-000000000000"  # noqa: S105 - a test's own
BODY = b'{"checkout":{"order_id":"A-1001"},"event_id":"evt_1","seq":1,"type":"checkout.paid"}'

Verify = Callable[[str, str | None, bytes], bool]


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOCS.read_text(encoding="utf-8"), re.M | re.S)


def docs_block(marker: str) -> str:
    (block,) = [b for b in python_blocks() if marker in b]
    return block


def docs_code() -> dict[str, Any]:
    """The namespace of the docs' verify block, executed as a merchant would."""
    namespace: dict[str, Any] = {"__name__": "docs_webhooks_md"}
    exec(compile(docs_block("def verify("), f"{DOCS}:verify", "exec"), namespace)  # noqa: S102 - our own docs' sample, run as a merchant would
    return namespace


def library_verify(secret: str, header: str | None, body: bytes) -> bool:
    return signing.verify(secret, header, body)


def docs_verify(secret: str, header: str | None, body: bytes) -> bool:
    result = docs_code()["verify"](secret, header, body)
    assert isinstance(result, bool)
    return result


VERIFIERS = {"signing.verify": library_verify, "docs/webhooks.md": docs_verify}

# Digits that str.isdigit() and int() take: U+0660... and U+FF10...
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))
FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))


def hostile(now: int) -> dict[str, str]:
    """Headers that must be refused, each with a signature that is right for
    the body and for ``now`` wherever the attack needs one."""
    good = signing.signature(SECRET, now, BODY)
    valid = f"t={now},v1={good}"
    return {
        "t of 310 digits": f"t={'9' * 310},v1={good}",
        "t of 400 digits": f"t={'1' * 400},v1={good}",
        "t of 5000 digits": f"t={'1' * 5000},v1={good}",
        "t of 13 digits, leading zeros": f"t={now:013d},v1={good}",
        "negative t": f"t=-{now},v1={good}",
        "t with a plus sign": f"t=+{now},v1={good}",
        "t with underscores": f"t={now // 1000}_{now % 1000:03d},v1={good}",
        "t in hex": f"t={hex(now)},v1={good}",
        "t as a float": f"t={now}.0,v1={good}",
        "t in exponent form": f"t={now / 1e9:g}e9,v1={good}",
        "t in Arabic-Indic digits": f"t={str(now).translate(ARABIC_INDIC)},v1={good}",
        "t in full-width digits": f"t={str(now).translate(FULLWIDTH)},v1={good}",
        "t of superscript digits": f"t=\u00b2\u00b3,v1={good}",
        "t with a space inside": f"t= {now},v1={good}",
        "t with a NUL": f"t={now}\x00,v1={good}",
        "empty t": f"t=,v1={good}",
        "t without =": f"t,v1={good}",
        "t twice": f"t={now},t={now},v1={good}",
        "t twice, differing": f"t={now},t={now + 1},v1={good}",
        "no t": f"v1={good}",
        "no v1": f"t={now}",
        "empty v1": f"t={now},v1=",
        "v1 of another scheme only": f"t={now},v0={good}",
        "a lone surrogate in v1": f"t={now},v1={good[:-1]}\ud800",
        "non-ASCII v1": f"t={now},v1={'é' * 64}",
        "empty": "",
        "blank": "   ",
        "commas": ",,,",
        "only =": "=",
        "a valid header over the size limit": valid + ",x=y" * 300_000,
        "an enormous t": "t=" + "9" * 1_000_000,
        "an enormous v1": f"t={now},v1=" + "a" * 1_000_000,
        "far in the future": f"t=999999999999,v1={signing.signature(SECRET, 999999999999, BODY)}",
    }


@pytest.mark.parametrize("verifier", VERIFIERS.values(), ids=list(VERIFIERS))
@pytest.mark.parametrize("case", sorted(hostile(0)))
def test_a_hostile_header_is_refused_without_raising(verifier: Verify, case: str) -> None:
    header = hostile(int(time.time()))[case]
    started = time.perf_counter()
    assert verifier(SECRET, header, BODY) is False
    assert time.perf_counter() - started < 0.5, "a header must not cost the receiver much"


@pytest.mark.parametrize("verifier", VERIFIERS.values(), ids=list(VERIFIERS))
def test_a_header_within_the_documented_size_is_checked_and_a_longer_one_refused(
    verifier: Verify,
) -> None:
    now = int(time.time())
    mine = signing.signature(SECRET, now, BODY)
    other = signing.signature("whsec_another", now, BODY)
    assert verifier(SECRET, signing.sign(SECRET, now, BODY), BODY) is True
    assert verifier(SECRET, f"t={now},v1={other},v1={mine}", BODY) is True  # a secret rolled
    assert verifier(SECRET, f"t={now}, v1={mine}, v2=x", BODY) is True  # a future scheme
    assert verifier(SECRET, signing.sign(SECRET, now, BODY), BODY + b" ") is False
    assert verifier(SECRET, signing.sign(SECRET, now - 3600, BODY), BODY) is False
    assert verifier(SECRET, None, BODY) is False
    header = signing.sign(SECRET, now, BODY)
    padded = header + ",x" + "x" * (signing.MAX_HEADER - len(header) - 4) + "=y"
    assert len(padded) == signing.MAX_HEADER
    assert verifier(SECRET, padded, BODY) is True
    assert verifier(SECRET, padded + "y", BODY) is False
    assert docs_code()["MAX_HEADER"] == signing.MAX_HEADER
    assert f"longer than {signing.MAX_HEADER} characters" in DOCS.read_text(encoding="utf-8")


# The docs' sample receiver, run as a merchant would run it, on loopback.


@dataclass
class SampleReceiver:
    port: int
    printed: list[str]

    def post(self, signature: str | None, body: bytes = BODY) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            headers = {"Content-Type": "application/json"}
            if signature is not None:
                headers["Scan2pay-Signature"] = signature
            connection.request("POST", "/scan2pay/events", body=body, headers=headers)
            return connection.getresponse().status
        finally:
            connection.close()


@pytest.fixture
def sample_receiver() -> Iterator[SampleReceiver]:
    source = docs_block("class Events(")
    last = source.rstrip().splitlines()[-1]
    assert last == 'HTTPServer(("0.0.0.0", 8000), Events).serve_forever()', last
    namespace = docs_code()
    printed: list[str] = []
    namespace["print"] = lambda *args: printed.append(" ".join(map(str, args)))
    exec(compile(source.rstrip()[: -len(last)], f"{DOCS}:receiver", "exec"), namespace)  # noqa: S102 - our own docs' sample
    namespace["SECRET"] = SECRET
    namespace["Events"].log_message = lambda *args: None  # quiet, as tests are
    server = namespace["HTTPServer"](("127.0.0.1", 0), namespace["Events"])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SampleReceiver(server.server_address[1], printed)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_the_docs_receiver_answers_400_to_hostile_headers_and_goes_on(
    sample_receiver: SampleReceiver,
) -> None:
    now = int(time.time())
    assert sample_receiver.post(signing.sign(SECRET, now, BODY)) == 204
    assert sample_receiver.printed == ["checkout.paid A-1001"]
    sendable = {
        case: header
        for case, header in hostile(now).items()
        # What http.client can put in a header line, and http.server read back.
        if header.isascii() and "\x00" not in header and len(header) < 60_000
    }
    assert "t of 310 digits" in sendable
    assert "t of 5000 digits" in sendable
    wrong = {}
    for case, header in sendable.items():
        try:
            status = sample_receiver.post(header)
        except (http.client.HTTPException, OSError) as exc:
            wrong[case] = f"{type(exc).__name__}: {exc}"
            continue
        if status != 400:
            wrong[case] = str(status)
    assert not wrong, wrong
    assert sample_receiver.post(None) == 400
    # Still serving, and each event handled once.
    assert sample_receiver.post(signing.sign(SECRET, now, BODY)) == 204
    assert sample_receiver.printed == ["checkout.paid A-1001"]
