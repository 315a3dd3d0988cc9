"""The serial displays' byte streams, exactly, as a device on the other end
of a pseudo-terminal (or pyserial's loop://) receives them."""

from __future__ import annotations

from typing import Any

import pytest
import serial

from hardware.base import Content, Frame
from hardware.charset import ascii_url, fit_charset
from hardware.errors import DisplayError
from hardware.escpos import EscPosConfig, EscPosDisplay
from hardware.nextion import NextionConfig, NextionDisplay
from hardware.registry import open_display
from tests.support.serial_pty import Pty

END = b"\xff\xff\xff"
URL = "https://pay.example/c/7Hq2Zx"
QR_FRAME = Frame(Content(URL, ("€12.34", "Scan to pay", "4:59")))
PAID_FRAME = Frame(Content(None, ("Paid", "€12.34")))
IDLE_FRAME = Frame(Content(None, ("Café", "Ready"), kind="idle"))


# --- Nextion -----------------------------------------------------------------


def test_nextion_qr_frame(pty: Pty) -> None:
    display = NextionDisplay(NextionConfig(pty.path))
    assert display.geometry is None
    display.show(QR_FRAME)
    assert pty.received() == (
        END  # ends whatever half instruction the display held before we opened the port
        + b't0.txt="EUR 12.34"' + END
        + b't1.txt="Scan to pay"' + END
        + b't2.txt="4:59"' + END
        + b't3.txt=""' + END
        + b'qr0.txt="https://pay.example/c/7Hq2Zx"' + END
        + b"vis qr0,1" + END
    )  # fmt: skip


def test_nextion_outcome_frame_hides_the_qr(pty: Pty) -> None:
    display = NextionDisplay(NextionConfig(pty.path))
    display.show(QR_FRAME)
    pty.received()
    display.show(PAID_FRAME)
    assert pty.received() == (
        b't0.txt="Paid"' + END
        + b't1.txt="EUR 12.34"' + END
        + b't2.txt=""' + END
        + b't3.txt=""' + END
        + b"vis qr0,0" + END
    )  # fmt: skip


def test_nextion_component_names_and_extra_lines(pty: Pty) -> None:
    config = NextionConfig(pty.path, qr="pay.code", texts=("amount", "hint"))
    display = NextionDisplay(config)
    display.show(Frame(Content(URL, ("€1.00", "Scan to pay", "0:30", "No connection"))))
    assert pty.received() == (
        END
        + b'amount.txt="EUR 1.00"' + END
        + b'hint.txt="Scan to pay - 0:30 - No connection"' + END
        + b'pay.code.txt="https://pay.example/c/7Hq2Zx"' + END
        + b"vis pay.code,1" + END
    )  # fmt: skip


def test_nextion_escapes_quotes_and_backslashes(pty: Pty) -> None:
    display = NextionDisplay(NextionConfig(pty.path, texts=("t0",)))
    display.show(Frame(Content(None, ('Say "hi" \\ bye',))))
    assert pty.received() == END + b't0.txt="Say \\"hi\\" \\\\ bye"' + END + b"vis qr0,0" + END


def test_nextion_charset_fallback(pty: Pty) -> None:
    display = NextionDisplay(NextionConfig(pty.path, texts=("t0", "t1")))
    # é and ¥ are in ISO 8859-1; ₹ and … are not; ÿ is, but encodes to 0xFF.
    display.show(Frame(Content(None, ("Café ¥1,200 ₹99…", "Straße ÿ\t“ok”"))))
    assert pty.received() == (
        END
        + b't0.txt="Caf\xe9 \xa51,200 INR 99..."' + END
        + b't1.txt="Stra\xdfe y \\"ok\\""' + END
        + b"vis qr0,0" + END
    )  # fmt: skip


def test_nextion_other_charsets(pty: Pty) -> None:
    ascii_display = NextionDisplay(NextionConfig(pty.path, charset="ascii", texts=("t0",)))
    ascii_display.show(Frame(Content(None, ("Café €5 ¥7 £3 Straße",))))
    assert b't0.txt="Cafe EUR 5 JPY 7 GBP 3 Strasse"' in pty.received()
    utf8_display = NextionDisplay(NextionConfig(pty.path, charset="utf-8", texts=("t0",)))
    utf8_display.show(Frame(Content(None, ("€12.34",))))
    assert b't0.txt="\xe2\x82\xac12.34"' in pty.received()


def test_nextion_url_is_never_transliterated(pty: Pty) -> None:
    display = NextionDisplay(NextionConfig(pty.path, texts=()))
    display.show(Frame(Content("https://pay.example/café?a=€", ())))
    assert pty.received() == (
        END + b'qr0.txt="https://pay.example/caf%C3%A9?a=%E2%82%AC"' + END + b"vis qr0,1" + END
    )


def test_nextion_bus_time_is_the_last_frame_at_the_baud_rate(pty: Pty) -> None:
    display = NextionDisplay(NextionConfig(pty.path, baud=115200))
    assert display.bus_seconds_per_frame() is None
    display.show(QR_FRAME)
    sent = len(pty.received())
    assert display.bus_seconds_per_frame() == pytest.approx(sent * 10 / 115200)


def test_nextion_unplugged_is_a_display_error(pty: Pty) -> None:
    display = NextionDisplay(NextionConfig(pty.path))
    display.show(QR_FRAME)
    pty.unplug()
    with pytest.raises(DisplayError) as caught:
        display.show(PAID_FRAME)
    assert caught.value.device == f"nextion:{pty.path}"
    # The next show tries to reopen; the port is gone, so that fails cleanly too.
    with pytest.raises(DisplayError):
        display.show(PAID_FRAME)


def test_nextion_missing_port_is_a_display_error() -> None:
    with pytest.raises(DisplayError, match="cannot open /dev/ttyNONESUCH"):
        NextionDisplay(NextionConfig("/dev/ttyNONESUCH"))


class FlakyPort:
    """A pyserial port whose writes fail while ``broken``."""

    broken = False

    def __init__(self, opened: list[FlakyPort]) -> None:
        self.written = b""
        self.write_timeout: float | None = None
        opened.append(self)

    def write(self, data: bytes) -> int:
        if FlakyPort.broken:
            raise serial.SerialException("write failed: [Errno 5] Input/output error")
        self.written += data
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_nextion_reopens_after_a_failure_and_resynchronises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[FlakyPort] = []
    monkeypatch.setattr(serial, "serial_for_url", lambda *args, **kwargs: FlakyPort(opened))
    monkeypatch.setattr(FlakyPort, "broken", False)
    display = NextionDisplay(NextionConfig("/dev/ttyUSB0", texts=("t0",)))
    display.show(PAID_FRAME)
    FlakyPort.broken = True
    with pytest.raises(DisplayError, match="Input/output error"):
        display.show(PAID_FRAME)
    FlakyPort.broken = False
    display.show(IDLE_FRAME)
    assert len(opened) == 2
    assert opened[1].written == END + b't0.txt="Caf\xe9 - Ready"' + END + b"vis qr0,0" + END


def test_nextion_through_loop_url(opened_ports: list[Any]) -> None:
    opened = opened_ports
    display = open_display("nextion:loop://,baud=115200,text=t0")
    display.show(PAID_FRAME)
    expected = END + b't0.txt="Paid - EUR 12.34"' + END + b"vis qr0,0" + END
    assert opened[0].baudrate == 115200
    opened[0].timeout = 1
    assert opened[0].read(len(expected)) == expected
    assert opened[0].in_waiting == 0
    display.close()


# --- ESC/POS -----------------------------------------------------------------

GS_K = b"\x1d(k"
QR_MODEL_2 = GS_K + b"\x04\x00" + b"1A" + b"2\x00"  # fn 165: cn 49, fn 65, model 2
QR_PRINT = GS_K + b"\x03\x00" + b"1Q0"  # fn 181


def qr_slip(lines: bytes, url: bytes, *, module: int = 6, ecc: int = 49) -> bytes:
    length = len(url) + 3
    return (
        b"\x1b@"  # ESC @: initialise
        + b"\x1bt\x00"  # ESC t 0: code page PC437
        + b"\x1ba\x01"  # ESC a 1: centre
        + lines
        + QR_MODEL_2
        + GS_K + b"\x03\x00" + b"1C" + bytes([module])  # fn 167: module size
        + GS_K + b"\x03\x00" + b"1E" + bytes([ecc])  # fn 169: error correction
        + GS_K + bytes([length % 256, length // 256]) + b"1P0" + url  # fn 180: store
        + QR_PRINT
        + b"\n"
        + b"\x1bd\x04"  # ESC d 4: feed past the cutter
        + b"\x1dV\x01"  # GS V 1: partial cut
    )  # fmt: skip


def test_escpos_qr_frame(pty: Pty) -> None:
    display = EscPosDisplay(EscPosConfig(pty.path))
    assert display.geometry is None
    display.show(QR_FRAME)
    expected = qr_slip(
        b"\x1d!\x11" + b"EUR 12.34\n" + b"\x1d!\x00"  # amount double size
        + b"Scan to pay\n",  # the countdown is left off paper
        URL.encode(),
    )  # fmt: skip
    assert pty.received() == expected
    # 28 bytes of URL + 3: pL = 31, pH = 0.
    assert GS_K + b"\x1f\x00" + b"1P0" + URL.encode() in expected


def test_escpos_prints_each_qr_once_then_the_outcome_once(pty: Pty) -> None:
    display = EscPosDisplay(EscPosConfig(pty.path))
    display.show(IDLE_FRAME)
    assert pty.received() == b""  # idle: no paper
    display.show(QR_FRAME)
    assert pty.received().startswith(b"\x1b@")
    display.show(Frame(Content(URL, ("€12.34", "Scan to pay", "4:58"))))
    display.show(Frame(Content(URL, ("€12.34", "Scan to pay", "4:57", "No connection"))))
    assert pty.received() == b""  # the same QR, ticking: printed already
    display.show(PAID_FRAME)
    assert pty.received() == (
        b"\x1b@" + b"\x1bt\x00" + b"\x1ba\x01"
        + b"\x1bE\x01" + b"Paid EUR 12.34\n" + b"\x1bE\x00"  # one bold receipt line
        + b"\x1bd\x04" + b"\x1dV\x01"
    )  # fmt: skip
    display.show(Frame(Content(None, ("Paid", "€12.34", "No connection"))))
    display.show(IDLE_FRAME)
    assert pty.received() == b""  # outcome printed; idle again
    display.show(Frame(Content(URL + "2", ("€3.00", "Scan to pay"))))
    assert pty.received().startswith(b"\x1b@")  # a new checkout prints


def test_escpos_prints_no_outcome_when_the_cashier_goes_straight_to_idle(pty: Pty) -> None:
    display = EscPosDisplay(EscPosConfig(pty.path))
    display.show(QR_FRAME)
    assert pty.received().startswith(b"\x1b@")
    display.show(IDLE_FRAME)  # idle straight after the QR: no "Café Ready" slip
    display.show(PAID_FRAME)  # nor a late outcome for a QR no longer shown
    assert pty.received() == b""


def test_escpos_long_url_length_in_two_bytes(pty: Pty) -> None:
    long_url = "https://pay.example/c/" + "x" * 278  # 300 bytes
    display = EscPosDisplay(EscPosConfig(pty.path, cut="full", module=4, ecc="Q"))
    display.show(Frame(Content(long_url, ())))
    received = pty.received()
    # 300 + 3 = 303 = 0x012F: pL = 0x2F, pH = 0x01.
    assert GS_K + b"\x2f\x01" + b"1P0" + long_url.encode() + QR_PRINT in received
    assert received == qr_slip(b"", long_url.encode(), module=4, ecc=50)[:-3] + b"\x1dV\x00"


def test_escpos_code_page_and_fallback(pty: Pty) -> None:
    display = EscPosDisplay(EscPosConfig(pty.path, charset="cp858"))
    display.show(Frame(Content(URL, ("€12.34", "Café ₹"))))
    received = pty.received()
    assert received.startswith(b"\x1b@\x1bt\x13")  # ESC t 19: PC858
    assert b"\x1d!\x11\xd512.34\n\x1d!\x00" in received  # € is 0xD5 in PC858
    assert b"Caf\x82 INR\n" in received
    cp437 = EscPosDisplay(EscPosConfig(pty.path))  # the default, without €
    cp437.show(Frame(Content(URL, ("£1 ¥2 €3",))))
    assert b"\x9c1 \x9d2 EUR 3\n" in pty.received()


def test_escpos_unplugged_is_a_display_error(pty: Pty) -> None:
    display = EscPosDisplay(EscPosConfig(pty.path))
    pty.unplug()
    with pytest.raises(DisplayError) as caught:
        display.show(QR_FRAME)
    assert caught.value.device == f"escpos:{pty.path}"
    # Not printed, so the next attempt (after a reconnect) prints it again.
    with pytest.raises(DisplayError):
        display.show(QR_FRAME)


def test_escpos_through_loop_url(opened_ports: list[Any]) -> None:
    opened = opened_ports
    display = open_display("escpos:loop://,cut=none,ecc=L")
    display.show(Frame(Content(URL, ("Scan to pay",))))
    expected = qr_slip(b"\x1d!\x11Scan to pay\n\x1d!\x00", URL.encode(), ecc=48)[:-3]
    opened[0].timeout = 1
    assert opened[0].read(len(expected)) == expected
    assert opened[0].in_waiting == 0
    display.close()


# --- character set helpers -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "expected"),
    [
        ("€12.34", "iso-8859-1", "EUR 12.34"),
        ("-€12.34", "ascii", "-EUR 12.34"),
        ("12,34 €", "iso-8859-1", "12,34 EUR"),
        ("12,34€", "iso-8859-1", "12,34 EUR"),
        ("¥1,200", "iso-8859-1", "¥1,200"),
        ("¥1,200", "ascii", "JPY 1,200"),
        ("KWD 1.500", "ascii", "KWD 1.500"),
        ("₩5,000 ₪3", "cp437", "KRW 5,000 ILS 3"),
        ("Crème brûlée", "ascii", "Creme brulee"),
        ("Ærø \u2013 \u201cfine\u201d\u2026", "ascii", 'AEro - "fine"...'),
        ("日本", "iso-8859-1", "??"),
        ("a\nb\tc", "ascii", "a b c"),
    ],
)
def test_fit_charset(text: str, encoding: str, expected: str) -> None:
    assert fit_charset(text, encoding) == expected


def test_ascii_url_keeps_ascii_and_percent_encodes_the_rest() -> None:
    assert ascii_url("https://x.example/a?b=c&d=%20#e") == b"https://x.example/a?b=c&d=%20#e"
    assert ascii_url("https://x.example/ü") == b"https://x.example/%C3%BC"
