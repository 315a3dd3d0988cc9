"""Printing a till's sticker: the exact ESC/POS bytes a receipt printer
receives on a pseudo-terminal, what a printer makes of them (the QR code
read back from the printer's own command), and the noop and dummy
printers."""

from __future__ import annotations

from typing import Any

import pytest
import segno
from PIL import Image

from hardware.errors import DisplayError, DisplaySpecError
from hardware.escpos import EscPosConfig, EscPosPrinter
from hardware.printer import DummyPrinter, NoopPrinter, StickerSlip
from hardware.registry import open_printer
from tests.support.escpos_paper import Paper, PrintedQr, TextLine
from tests.support.qr_decode import decode_both
from tests.support.serial_pty import Pty

URL = "HTTP://127.0.0.1:8080/S/KZ3Q7DXW2M5RB8YT4NHF6JCVPA"
EMV = (
    "000201010211"
    "26580014BR.GOV.BCB.PIX0136https://pay.example/S/KZ3Q7DXW2M5RB8YT"
    "52045814530397858025DE5913Cafe Lindner6006Berlin"
    "62140510KZ3Q7DXW2M6304B7F1"
)
STICKER = StickerSlip(URL, "Café Lindner", "Till 1", "K7Q2-9M")
GS_K = b"\x1d(k"


def test_a_sticker_slip_byte_for_byte(pty: Pty) -> None:
    printer = EscPosPrinter(EscPosConfig(pty.path))
    printer.print_sticker(STICKER)
    length = len(URL) + 3  # 49 + 3 = 52: pL 0x34, pH 0
    assert pty.received() == (
        b"\x1b@"  # ESC @: initialise
        + b"\x1bt\x00"  # ESC t 0: code page PC437
        + b"\x1ba\x01"  # ESC a 1: centre
        + b"\x1d!\x11" + b"Caf\x82 Lindner\n" + b"\x1d!\x00"  # the name, double size; é in PC437
        + b"Scan to pay\n"
        + GS_K + b"\x04\x00" + b"1A" + b"2\x00"  # fn 165: model 2
        + GS_K + b"\x03\x00" + b"1C" + b"\x06"  # fn 167: modules of 6 dots
        + GS_K + b"\x03\x00" + b"1E" + b"1"  # fn 169: error correction M
        + GS_K + bytes([length, 0]) + b"1P0" + URL.encode()  # fn 180: store
        + GS_K + b"\x03\x00" + b"1Q0"  # fn 181: print
        + b"\n"
        + b"\x1bE\x01" + b"Till 1\n" + b"\x1bE\x00"  # the till's label in bold
        + b"K7Q2-9M\n"
        + b"\x1bd\x04"  # ESC d 4: feed past the cutter
        + b"\x1dV\x01"  # GS V 1: partial cut
    )  # fmt: skip
    printer.close()


def test_an_emv_payload_goes_to_the_printer_as_it_is(pty: Pty) -> None:
    """Not percent-encoded as a URL would be; 172 + 3 bytes in pL, pH."""
    payload = EMV.replace("Cafe", "Café")  # a UTF-8 character, as a payload may hold
    printer = EscPosPrinter(EscPosConfig(pty.path, module=4, ecc="Q", cut="full"))
    printer.print_sticker(StickerSlip(payload, "Café", "Till 1", "K7Q2"))
    data = payload.encode("utf-8")
    length = len(data) + 3
    received = pty.received()
    assert GS_K + bytes([length % 256, length // 256]) + b"1P0" + data + GS_K in received
    assert GS_K + b"\x03\x00" + b"1E2" in received  # Q
    assert received.endswith(b"\x1dV\x00")


def qr_as_printed(qr: PrintedQr) -> Image.Image:
    """The symbol a model 2 printer draws from what it stored: segno at the
    printer's error correction, one dot a pixel, with a quiet zone (the
    paper's white around it)."""
    assert qr.model == 2
    symbol = segno.make_qr(qr.data, error=qr.ecc, boost_error=False)
    image = Image.new("L", (1, 1))
    rows = list(symbol.matrix_iter(scale=qr.module, border=4))
    image = Image.frombytes(
        "L", (len(rows), len(rows)), bytes(0 if d else 255 for r in rows for d in r)
    )
    return image


@pytest.mark.parametrize("data", [URL, EMV])
def test_a_printer_prints_the_words_and_a_qr_that_decodes_to_the_data(pty: Pty, data: str) -> None:
    printer = open_printer(f"escpos:{pty.path},module=5,ecc=Q")
    printer.print_sticker(StickerSlip(data, "Café Lindner", "Till 1", "K7Q2-9M"))
    paper = Paper()
    paper.feed(pty.received())
    (qr,) = paper.qr_codes
    assert qr.data == data.encode()
    assert (qr.module, qr.ecc, qr.centred) == (5, "Q", True)
    assert decode_both(qr_as_printed(qr)) == data
    words = [line for line in paper.printed if isinstance(line, TextLine)]
    assert [(line.text.decode("cp437"), line.double, line.bold) for line in words] == [
        ("Café Lindner", True, False),
        ("Scan to pay", False, False),
        ("", False, False),  # the line the QR code stands on
        ("Till 1", False, True),
        ("K7Q2-9M", False, False),
    ]
    assert all(line.centred for line in words)
    order = [item if isinstance(item, str) else type(item).__name__ for item in paper.printed]
    assert order == [
        "TextLine", "TextLine", "PrintedQr", "TextLine", "TextLine", "TextLine",
        "feed 4", "partial cut",
    ]  # fmt: skip
    printer.close()


def test_the_paper_interpreter_refuses_what_it_does_not_know() -> None:
    with pytest.raises(AssertionError, match="fn=99"):
        Paper().feed(GS_K + b"\x03\x00" + b"1c0")
    with pytest.raises(AssertionError, match="promises 9 bytes"):
        Paper().feed(GS_K + b"\x09\x00" + b"1P0ab")


def test_an_unplugged_printer_is_a_display_error(pty: Pty) -> None:
    printer = EscPosPrinter(EscPosConfig(pty.path))
    pty.unplug()
    with pytest.raises(DisplayError) as caught:
        printer.print_sticker(STICKER)
    assert caught.value.device == f"escpos:{pty.path}"


def test_a_printer_that_is_not_there_is_a_display_error() -> None:
    with pytest.raises(DisplayError, match="cannot open /dev/ttyNONESUCH"):
        open_printer("escpos:/dev/ttyNONESUCH")


def test_the_noop_and_dummy_printers() -> None:
    noop = open_printer("noop")
    assert isinstance(noop, NoopPrinter)
    noop.print_sticker(STICKER)
    dummy = open_printer("dummy")
    assert isinstance(dummy, DummyPrinter)
    dummy.print_sticker(STICKER)
    assert dummy.stickers == [STICKER]
    dummy.close()


@pytest.mark.parametrize("spec", ["console", "png:/tmp/frames", "nextion:/dev/ttyS0"])
def test_a_display_that_does_not_print_is_refused(spec: str) -> None:
    with pytest.raises(DisplaySpecError, match="is a display, not a printer") as caught:
        open_printer(spec)
    assert "escpos:PORT" in str(caught.value)


def test_a_bad_printer_value_says_what_is_wrong() -> None:
    with pytest.raises(DisplaySpecError, match=r"module=40: must be 1\.\.16"):
        open_printer("escpos:/dev/ttyS0,module=40")


def test_a_sticker_slip_needs_every_part() -> None:
    with pytest.raises(ValueError, match="a sticker needs till_label, short_id"):
        StickerSlip(URL, "Café", " ", "")


def test_printing_through_a_loop_url(opened_ports: list[Any]) -> None:
    opened = opened_ports
    printer = open_printer("escpos:loop://,cut=none")
    printer.print_sticker(STICKER)
    opened[0].timeout = 1
    paper = Paper()
    paper.feed(opened[0].read(opened[0].in_waiting))
    assert [qr.data for qr in paper.qr_codes] == [URL.encode()]
    assert paper.printed[-1] == "feed 4"  # no cut
    printer.close()
