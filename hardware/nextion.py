"""A Nextion HMI display over a serial port, drawing by command.

The Nextion project (made in the Nextion Editor) needs one page with a
``qrcode`` component and text components; their names are configurable
(defaults ``qr0`` and ``t0``..``t3``). Set the QR component's ``txt_maxl``
to at least the longest payment URL (200 is safe): the Nextion silently cuts
a longer text, and a cut URL is a wrong QR code.

Each frame is sent whole, so a display that restarted catches up at once:

* every text component gets its line (``t0.txt="€12.34"``), or "" when the
  frame has fewer lines; if it has more lines than components, the extra
  lines are joined to the last component with " - " (the last line is often
  a banner such as "No connection", too important to drop);
* with a QR: ``qr0.txt="URL"`` then ``vis qr0,1``; without: ``vis qr0,0``.

Each instruction is ASCII text ended by three 0xFF bytes. In text, ``"``
and ``\\`` are escaped as ``\\"`` and ``\\\\``. Text is encoded in the character
set the project's fonts were made for (default ``iso-8859-1``), with
unencodable characters replaced as ``hardware.charset`` describes
(``€12.34`` -> ``EUR 12.34``); characters that would encode to 0xFF (``ÿ`` in
ISO 8859-1) are replaced too, since 0xFF ends instructions. The first frame
after the port (re)opens is preceded by three 0xFF, which ends any half
instruction the Nextion still holds.

The Nextion's replies (error codes) are not read: the display is write-only
here, and a wrong component name shows up on the screen, not in the log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .base import Display, Frame, Geometry
from .charset import ascii_url, encode_text
from .serial_link import SerialLink

END = b"\xff\xff\xff"
DEFAULT_BAUD = 9600  # the Nextion's factory setting
DEFAULT_CHARSET = "iso-8859-1"
DEFAULT_QR = "qr0"
DEFAULT_TEXTS = ("t0", "t1", "t2", "t3")
EXTRA_LINE_SEPARATOR = " - "
# A component, optionally on a named page: t0, page0.t0.
COMPONENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


@dataclass(frozen=True, slots=True)
class NextionConfig:
    port: str
    baud: int = DEFAULT_BAUD
    charset: str = DEFAULT_CHARSET
    qr: str = DEFAULT_QR
    texts: tuple[str, ...] = DEFAULT_TEXTS

    def open(self) -> NextionDisplay:
        return NextionDisplay(self)


def quote(text: str, charset: str) -> bytes:
    """A Nextion string constant: quoted, escaped, encoded."""
    encoded = encode_text(text, charset, avoid=b"\xff")
    return b'"' + encoded.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def instructions(frame: Frame, config: NextionConfig) -> list[bytes]:
    """The instructions for one frame, without their end markers."""
    lines = list(frame.content.lines) if config.texts else []
    if len(lines) > len(config.texts):
        keep = len(config.texts) - 1
        lines = [*lines[:keep], EXTRA_LINE_SEPARATOR.join(lines[keep:])]
    lines += [""] * (len(config.texts) - len(lines))
    out = [
        name.encode("ascii") + b".txt=" + quote(line, config.charset)
        for name, line in zip(config.texts, lines, strict=True)
    ]
    qr = config.qr.encode("ascii")
    url = frame.content.qr_url
    if url:
        # ascii_url leaves only printable ASCII; escape " and \ like any text.
        escaped = ascii_url(url).replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        out.append(qr + b'.txt="' + escaped + b'"')
        out.append(b"vis " + qr + b",1")
    else:
        out.append(b"vis " + qr + b",0")
    return out


def frame_bytes(frame: Frame, config: NextionConfig) -> bytes:
    return b"".join(instruction + END for instruction in instructions(frame, config))


class NextionDisplay(Display):
    """Content-only: ``geometry`` is None and ``frame.image`` is ignored."""

    def __init__(self, config: NextionConfig) -> None:
        self.config = config
        self.name = f"nextion:{config.port}"
        self._link = SerialLink(config.port, baudrate=config.baud, name=self.name)
        self._last_size: int | None = None

    @property
    def geometry(self) -> Geometry | None:
        return None

    def show(self, frame: Frame) -> None:
        data = frame_bytes(frame, self.config)
        if self._link.fresh:
            data = END + data
        self._link.write(data)
        self._last_size = len(data)

    def close(self) -> None:
        self._link.close()

    def bus_seconds_per_frame(self) -> float | None:
        """The wire time of the last frame sent (frames vary with their text)."""
        return None if self._last_size is None else self._link.seconds_for(self._last_size)
