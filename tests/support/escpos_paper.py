"""A receipt printer's paper, from the ESC/POS bytes it is sent: a small
interpreter of the commands scan2pay uses, written from Epson's command
reference rather than from ``hardware.escpos``, so that a test reads what a
printer would print and not what our writer meant.

``GS ( k`` (cn 49, the QR code) keeps the printer's state as a printer
does: function 165 the model, 167 the module size, 169 the error
correction, 180 stores data in the symbol buffer, 181 prints what is
stored. Any byte sequence it does not know fails loudly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ESC, GS, LF = 0x1B, 0x1D, 0x0A
ERROR_CORRECTION = {48: "L", 49: "M", 50: "Q", 51: "H"}
MODELS: dict[int, int | str] = {49: 1, 50: 2, 51: "micro"}


@dataclass(frozen=True)
class TextLine:
    text: bytes
    centred: bool
    double: bool
    bold: bool
    code_page: int


@dataclass(frozen=True)
class PrintedQr:
    data: bytes
    model: int | str
    module: int
    ecc: str
    centred: bool


@dataclass
class Paper:
    """What came out, in order: text lines, QR codes, feeds and cuts."""

    printed: list[TextLine | PrintedQr | str] = field(default_factory=list)
    # The printer's state.
    centred: bool = False
    double: bool = False
    bold: bool = False
    code_page: int = 0
    qr_model: int | str = 2
    qr_module: int = 3
    qr_ecc: str = "L"
    qr_stored: bytes | None = None
    _line: bytearray = field(default_factory=bytearray)

    @property
    def qr_codes(self) -> list[PrintedQr]:
        return [item for item in self.printed if isinstance(item, PrintedQr)]

    @property
    def lines(self) -> list[TextLine]:
        return [item for item in self.printed if isinstance(item, TextLine)]

    def feed(self, data: bytes) -> None:
        at = 0
        while at < len(data):
            byte = data[at]
            if byte == LF:
                self._end_line()
                at += 1
            elif byte == ESC:
                at = self._esc(data, at)
            elif byte == GS:
                at = self._gs(data, at)
            elif byte < 0x20:
                raise AssertionError(f"control byte 0x{byte:02X} at {at} is no command we know")
            else:
                self._line.append(byte)
                at += 1

    def _end_line(self) -> None:
        self.printed.append(
            TextLine(bytes(self._line), self.centred, self.double, self.bold, self.code_page)
        )
        self._line.clear()

    def _esc(self, data: bytes, at: int) -> int:
        command = data[at + 1 : at + 2]
        if command == b"@":  # initialise: the state to its defaults
            self.centred = self.double = self.bold = False
            self.code_page = 0
            return at + 2
        argument = data[at + 2]
        if command == b"a":
            self.centred = argument in (1, 49)
        elif command == b"E":
            self.bold = bool(argument & 1)
        elif command == b"t":
            self.code_page = argument
        elif command == b"d":
            self.printed.append(f"feed {argument}")
        else:
            raise AssertionError(f"ESC {command!r} at {at} is no command we know")
        return at + 3

    def _gs(self, data: bytes, at: int) -> int:
        command = data[at + 1 : at + 2]
        if command == b"!":
            self.double = data[at + 2] != 0
            return at + 3
        if command == b"V":
            self.printed.append({0: "full cut", 1: "partial cut"}[data[at + 2] % 48])
            return at + 3
        if command == b"(" and data[at + 2 : at + 3] == b"k":
            length = data[at + 3] + 256 * data[at + 4]
            body = data[at + 5 : at + 5 + length]
            assert len(body) == length, f"GS ( k at {at} promises {length} bytes, has {len(body)}"
            self._qr(body)
            return at + 5 + length
        raise AssertionError(f"GS {command!r} at {at} is no command we know")

    def _qr(self, body: bytes) -> None:
        cn, fn, parameters = body[0], body[1], body[2:]
        assert cn == 49, f"GS ( k cn={cn} is not the QR code"
        if fn == 65:  # 165: the model
            self.qr_model = MODELS[parameters[0]]
            assert parameters[1] == 0
        elif fn == 67:  # 167: the module size in dots
            assert 1 <= parameters[0] <= 16
            self.qr_module = parameters[0]
        elif fn == 69:  # 169: the error correction level
            self.qr_ecc = ERROR_CORRECTION[parameters[0]]
        elif fn == 80:  # 180: store, after m = 48
            assert parameters[0] == 48
            self.qr_stored = parameters[1:]
        elif fn == 81:  # 181: print the stored symbol
            assert parameters == b"0"
            assert self.qr_stored is not None, "GS ( k 181 with nothing stored"
            self.printed.append(
                PrintedQr(self.qr_stored, self.qr_model, self.qr_module, self.qr_ecc, self.centred)
            )
        else:
            raise AssertionError(f"GS ( k fn={fn} is no function we know")
