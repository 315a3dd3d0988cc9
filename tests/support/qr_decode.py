"""Reading QR codes back from what we draw or print, with two independent
decoders (zxing-cpp and zbar) that must agree, and rasterizing a PDF with
poppler's ``pdftoppm`` to read it."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from pyzbar import pyzbar

# Text drawn beside a QR code ("A18B", a short id) can read as a 1D code to
# a decoder looking for every format: the tests look for QR codes only.
QR_CODES = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)


def qr_codes(image: Any) -> list[zxingcpp.Barcode]:
    """The QR codes zxing-cpp finds in ``image`` (a PIL image or an array)."""
    return zxingcpp.read_barcodes(image, formats=QR_CODES)


def decode_both(image: Image.Image) -> str:
    """The one QR code in ``image``, as both decoders read it (they must agree)."""
    zxing = [result.text for result in qr_codes(image)]
    zbar = [
        symbol.data.decode("utf-8")
        for symbol in pyzbar.decode(image, symbols=[pyzbar.ZBarSymbol.QRCODE])
    ]
    assert len(zxing) == 1, f"zxing-cpp read {zxing}"
    assert zbar == zxing, f"zbar read {zbar}, zxing-cpp {zxing}"
    return zxing[0]


def pdf_to_image(pdf: bytes, dpi: int) -> Image.Image:
    """The PDF's first page in grey levels at ``dpi``, as poppler draws it."""
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        pytest.fail(
            "pdftoppm not found: install Debian's poppler-utils"
            " ('sudo apt-get install poppler-utils'; scripts/ensure-system-deps does it as root)",
            pytrace=False,
        )
    ran = subprocess.run(
        [pdftoppm, "-r", str(dpi), "-gray", "-singlefile"],
        input=pdf,
        capture_output=True,
        check=True,
        timeout=30,
    )
    return Image.open(io.BytesIO(ran.stdout)).convert("L")


def pdf_page_points(pdf: bytes) -> tuple[float, float]:
    """The first page's size in points, as poppler's ``pdfinfo`` reads it."""
    pdfinfo = shutil.which("pdfinfo")
    if pdfinfo is None:
        pytest.fail("pdfinfo not found: install Debian's poppler-utils", pytrace=False)
    ran = subprocess.run(
        [pdfinfo, "-"], input=pdf, capture_output=True, check=True, timeout=30, text=False
    )
    for line in ran.stdout.decode().splitlines():
        if line.startswith("Page size:"):
            width, _, height = line.split(":", 1)[1].split()[:3]
            return float(width), float(height)
    raise AssertionError(f"pdfinfo gave no page size:\n{ran.stdout.decode()}")


def pdf_images(pdf: bytes) -> tuple[list[str], list[Image.Image]]:
    """Poppler's ``pdfimages``: its listing's rows (page, type, width, height,
    colour, components, bits, encoding, ..., x-ppi, y-ppi, ...) and the
    images themselves, exactly as the PDF holds them."""
    pdfimages = shutil.which("pdfimages")
    if pdfimages is None:
        pytest.fail("pdfimages not found: install Debian's poppler-utils", pytrace=False)
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "in.pdf"
        source.write_bytes(pdf)
        listing = subprocess.run(
            [pdfimages, "-list", str(source)], capture_output=True, check=True, timeout=30
        ).stdout.decode()
        subprocess.run(
            [pdfimages, "-png", str(source), str(Path(folder) / "image")],
            capture_output=True,
            check=True,
            timeout=30,
        )
        images = [Image.open(path).copy() for path in sorted(Path(folder).glob("image-*.png"))]
    rows = listing.splitlines()[2:]  # after the heading and its underline
    return rows, images
