"""luma panels driven for real: luma's own ssd1306 and sh1106 drivers write to
a recording interface, and the recorded command stream is played into a
model of the controller's display RAM, which must then hold the frame
pixel for pixel."""

from __future__ import annotations

import errno
import sys
from typing import Any, ClassVar

import pytest
import segno
from luma.core.interface.serial import i2c
from PIL import Image, ImageDraw

from hardware.base import Content, Frame, Geometry
from hardware.errors import DisplayError, DisplaySpecError
from hardware.luma_panel import LumaConfig, LumaPanel, find_driver

QR_URL = "https://pay.example/c/7Hq2Zx"

# luma 3.16 calls Image.getdata, which Pillow 13 deprecates (removed in Pillow
# 14, due 2027-10): luma's to fix, noted for the lead; not ours to hide elsewhere.
pytestmark = pytest.mark.filterwarnings("ignore:Image.Image.getdata:DeprecationWarning")


class RecordingInterface:
    """Stands in for luma's i2c/spi: keeps every command and data write."""

    def __init__(self, fail_with: OSError | None = None) -> None:
        self.stream: list[tuple[str, bytes]] = []
        self.fail_with: OSError | None = fail_with
        self.cleaned_up = False

    def command(self, *cmd: int) -> None:
        self.stream.append(("command", bytes(cmd)))

    def data(self, data: Any) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.stream.append(("data", bytes(data)))

    def cleanup(self) -> None:
        self.cleaned_up = True


class Ssd1306Ram:
    """SSD1306 display RAM: 8 pages of 128 columns, each byte 8 rows (LSB on
    top). Addressing as in the datasheet: page mode by default, horizontal
    mode after 0x20 0x00 with the window set by 0x21 (columns) and 0x22
    (pages); data fills the window column by column, then page by page.
    (The init's segment remap and COM scan direction only mirror how RAM
    reaches the glass; the module is built so that RAM reads upright.)"""

    # Commands that take argument bytes; every other command is one byte.
    ARGUMENTS: ClassVar[dict[int, int]] = {
        **dict.fromkeys([0x20, 0x81, 0x8D, 0xA8, 0xAD, 0xD3, 0xD5, 0xD9, 0xDA, 0xDB], 1),
        **dict.fromkeys([0x21, 0x22], 2),
    }
    COLUMNS = 128
    VISIBLE_OFFSET = 0

    def __init__(self) -> None:
        self.ram = bytearray(self.COLUMNS * 8)
        self.horizontal = False
        self.column = self.page = 0
        self.columns = (0, self.COLUMNS - 1)
        self.pages = (0, 7)

    def play(self, stream: list[tuple[str, bytes]]) -> None:
        for kind, payload in stream:
            if kind == "command":
                self._commands(payload)
            else:
                for byte in payload:
                    self._write(byte)

    def _commands(self, payload: bytes) -> None:
        i = 0
        while i < len(payload):
            op = payload[i]
            count = self.ARGUMENTS.get(op, 0)
            args = payload[i + 1 : i + 1 + count]
            assert len(args) == count, f"command 0x{op:02X} is missing arguments"
            self._command(op, args)
            i += 1 + count

    def _command(self, op: int, args: bytes) -> None:
        if op == 0x20:
            self.horizontal = args[0] & 0x03 == 0x00
        elif op == 0x21:
            self.columns = (args[0], args[1])
            self.column = args[0]
        elif op == 0x22:
            self.pages = (args[0], args[1])
            self.page = args[0]
        elif 0xB0 <= op <= 0xB7:
            self.page = op & 0x07
        elif op <= 0x0F:
            self.column = (self.column & 0xF0) | op
        elif op <= 0x1F:
            self.column = (self.column & 0x0F) | ((op & 0x0F) << 4)

    def _write(self, byte: int) -> None:
        self.ram[self.page * self.COLUMNS + self.column] = byte
        self.column += 1
        if self.horizontal and self.column > self.columns[1]:
            self.column = self.columns[0]
            self.page = self.pages[0] if self.page >= self.pages[1] else self.page + 1
        elif not self.horizontal and self.column >= self.COLUMNS:
            self.column = 0  # page mode wraps within the page

    def image(self, width: int = 128, height: int = 64) -> Image.Image:
        image = Image.new("1", (width, height))
        for y in range(height):
            for x in range(width):
                byte = self.ram[(y // 8) * self.COLUMNS + x + self.VISIBLE_OFFSET]
                image.putpixel((x, y), (byte >> (y % 8)) & 1)
        return image


class Sh1106Ram(Ssd1306Ram):
    """SH1106 display RAM: 132 columns, of which the 128 on the glass start
    at column 2; page addressing only (0xB0+page, then the column's low
    and high nibble), the column advancing after each data byte. It has no
    0x20/0x21/0x22 addressing commands: they are single-byte no-ops."""

    ARGUMENTS: ClassVar[dict[int, int]] = dict.fromkeys(
        [0x81, 0x8D, 0xA8, 0xAD, 0xD3, 0xD5, 0xD9, 0xDA, 0xDB], 1
    )
    COLUMNS = 132
    VISIBLE_OFFSET = 2

    def _command(self, op: int, args: bytes) -> None:
        if 0x20 <= op <= 0x22:
            return
        super()._command(op, args)


def qr_frame_image(size: tuple[int, int] = (128, 64)) -> Image.Image:
    """A payment screen as the renderer would draw it: lit background, dark
    QR modules with their quiet zone, the amount beside (or below) it."""
    image = Image.new("1", size, 1)
    qr = segno.make_qr(QR_URL, error="m")
    border = 2
    scale = min(size) // qr.symbol_size(scale=1, border=border)[0]
    rows = list(qr.matrix_iter(scale=scale, border=border))
    for y, row in enumerate(rows):
        for x, dark in enumerate(row):
            image.putpixel((x, y), 0 if dark else 1)
    draw = ImageDraw.Draw(image)
    landscape = size[0] > size[1]
    text_at = (len(rows) + 4, 12) if landscape else (4, len(rows) + 4)
    draw.text(text_at, "EUR 12.34", fill=0)
    draw.text((text_at[0], text_at[1] + 16), "4:59", fill=0)
    return image


def checkerboard(size: tuple[int, int] = (128, 64)) -> Image.Image:
    image = Image.new("1", size)
    for y in range(size[1]):
        for x in range(size[0]):
            image.putpixel((x, y), (x + y) % 2)
    return image


def frame(image: Image.Image) -> Frame:
    return Frame(Content(QR_URL, ("€12.34", "Scan to pay")), image)


def assert_same_pixels(actual: Image.Image, expected: Image.Image) -> None:
    assert actual.size == expected.size
    assert actual.convert("1").tobytes() == expected.convert("1").tobytes()


def open_panel(driver: str, **options: Any) -> tuple[LumaPanel, RecordingInterface]:
    recorder = RecordingInterface()
    panel = LumaPanel(LumaConfig(driver, **options), serial_interface=recorder)
    return panel, recorder


@pytest.mark.parametrize("make_image", [qr_frame_image, checkerboard])
def test_ssd1306_memory_holds_the_frame(make_image: Any) -> None:
    panel, recorder = open_panel("ssd1306")
    image = make_image()
    panel.show(frame(image))
    ram = Ssd1306Ram()
    ram.play(recorder.stream)  # the whole stream: init, clear, frame
    assert_same_pixels(ram.image(), image)


@pytest.mark.parametrize("make_image", [qr_frame_image, checkerboard])
def test_sh1106_memory_holds_the_frame(make_image: Any) -> None:
    panel, recorder = open_panel("sh1106")
    image = make_image()
    panel.show(frame(image))
    ram = Sh1106Ram()
    ram.play(recorder.stream)  # the whole stream: init, clear, frame
    assert_same_pixels(ram.image(), image)


def test_ssd1306_whole_stream_from_power_on_ends_with_the_last_frame() -> None:
    panel, recorder = open_panel("ssd1306")
    panel.show(frame(checkerboard()))
    panel.show(frame(qr_frame_image()))
    ram = Ssd1306Ram()
    ram.play(recorder.stream)
    assert_same_pixels(ram.image(), qr_frame_image())


def test_ssd1306_init_sets_horizontal_addressing_and_turns_the_display_on() -> None:
    _, recorder = open_panel("ssd1306")
    kinds = [kind for kind, _ in recorder.stream]
    assert kinds == ["command", "command", "command", "data", "command"]
    init = recorder.stream[0][1]
    assert init[0] == 0xAE  # display off while configuring
    assert init[init.index(0x20) : init.index(0x20) + 2] == bytes([0x20, 0x00])  # horizontal
    assert init[init.index(0xA8) : init.index(0xA8) + 2] == bytes([0xA8, 0x3F])  # 64 rows
    assert recorder.stream[-1] == ("command", bytes([0xAF]))  # display on


def test_ssd1306_frame_is_one_window_command_and_1024_data_bytes() -> None:
    panel, recorder = open_panel("ssd1306")
    recorder.stream.clear()
    panel.show(frame(checkerboard()))
    assert recorder.stream[0] == ("command", bytes([0x21, 0x00, 0x7F, 0x22, 0x00, 0x07]))
    assert recorder.stream[1][0] == "data"
    assert len(recorder.stream[1][1]) == 1024
    # Column 0, rows 0-7 of a checkerboard unlit at (0, 0): bits 1, 3, 5, 7.
    assert recorder.stream[1][1][:2] == bytes([0xAA, 0x55])
    assert len(recorder.stream) == 2


def test_sh1106_frame_is_eight_pages_at_column_two() -> None:
    panel, recorder = open_panel("sh1106")
    recorder.stream.clear()
    panel.show(frame(checkerboard()))
    assert len(recorder.stream) == 16
    for page in range(8):
        assert recorder.stream[2 * page] == ("command", bytes([0xB0 + page, 0x02, 0x10]))
        kind, data = recorder.stream[2 * page + 1]
        assert kind == "data"
        assert len(data) == 128


def test_luma_i2c_interface_with_control_bytes_rebuilds_the_frame() -> None:
    """One level lower: luma's real i2c class over a fake SMBus. Each block
    starts with the SSD1306's control byte, 0x00 for commands, 0x40 for data."""

    class FakeSMBus:
        def __init__(self) -> None:
            self.writes: list[tuple[int, int, list[int]]] = []

        def write_i2c_block_data(self, address: int, control: int, data: list[int]) -> None:
            assert len(data) <= 32
            self.writes.append((address, control, data))

    bus = FakeSMBus()
    interface = i2c(bus=bus, address=0x3D)
    panel = LumaPanel(LumaConfig("ssd1306", address=0x3D), serial_interface=interface)
    image = qr_frame_image()
    panel.show(frame(image))
    assert {address for address, _, _ in bus.writes} == {0x3D}
    assert {control for _, control, _ in bus.writes} == {0x00, 0x40}
    kinds = {0x00: "command", 0x40: "data"}
    ram = Ssd1306Ram()
    ram.play([(kinds[control], bytes(data)) for _, control, data in bus.writes])
    assert_same_pixels(ram.image(), image)


def test_rotation_turns_the_geometry_and_the_memory() -> None:
    panel, recorder = open_panel("ssd1306", rotate=1)
    assert panel.geometry == Geometry(64, 128, "1")
    upright = qr_frame_image((64, 128))
    panel.show(frame(upright))
    ram = Ssd1306Ram()
    ram.play(recorder.stream)
    # rotate=1 is a quarter turn clockwise from the frame to the glass.
    assert_same_pixels(ram.image(), upright.rotate(-90, expand=True))


def test_grey_and_wrong_size_images_are_fitted_by_threshold() -> None:
    panel, recorder = open_panel("ssd1306")
    grey = Image.new("L", (64, 32), 0)
    ImageDraw.Draw(grey).rectangle((0, 0, 31, 31), fill=200)  # lit
    ImageDraw.Draw(grey).rectangle((32, 0, 63, 31), fill=100)  # below half: unlit
    panel.show(Frame(Content(), grey))
    ram = Ssd1306Ram()
    ram.play(recorder.stream)
    expected = Image.new("1", (128, 64), 0)
    ImageDraw.Draw(expected).rectangle((0, 0, 63, 63), fill=1)  # scaled twice, nearest
    assert_same_pixels(ram.image(), expected)


def test_a_frame_without_an_image_is_a_programming_error() -> None:
    panel, _ = open_panel("ssd1306")
    with pytest.raises(ValueError, match="needs an image"):
        panel.show(Frame(Content(None, ("Ready",))))


@pytest.mark.parametrize(
    ("driver", "options", "geometry"),
    [
        ("ssd1306", {}, Geometry(128, 64, "1")),
        ("ssd1306", {"width": 128, "height": 32}, Geometry(128, 32, "1")),
        ("sh1106", {}, Geometry(128, 64, "1")),
        ("ssd1309", {}, Geometry(128, 64, "1")),
        ("sh1107", {}, Geometry(64, 128, "1")),
        ("ssd1327", {}, Geometry(128, 128, "L")),
        ("ssd1322", {}, Geometry(256, 64, "L")),
        ("ssd1351", {}, Geometry(128, 128, "RGB")),
        ("ssd1331", {}, Geometry(96, 64, "RGB")),
        ("st7789", {"bus": "spi", "light_gpio": None}, Geometry(240, 240, "RGB")),
        ("st7735", {"bus": "spi", "light_gpio": None, "rotate": 1}, Geometry(128, 160, "RGB")),
    ],
)
def test_geometry_comes_from_the_device(
    driver: str, options: dict[str, Any], geometry: Geometry
) -> None:
    panel, _ = open_panel(driver, **options)
    assert panel.geometry == geometry


def test_greyscale_panel_takes_a_grey_frame() -> None:
    panel, recorder = open_panel("ssd1327")
    recorder.stream.clear()
    grey = Image.new("L", (128, 128), 0)
    ImageDraw.Draw(grey).rectangle((0, 0, 3, 0), fill=255)
    panel.show(Frame(Content(), grey))
    data = b"".join(payload for kind, payload in recorder.stream if kind == "data")
    assert data[:2] == b"\xff\xff"  # four white pixels, 4 bits each
    assert not any(data[2:])


def test_bus_time_for_a_frame() -> None:
    i2c_panel, _ = open_panel("ssd1306")
    assert i2c_panel.bus_seconds_per_frame() == pytest.approx(1024 * 9 / 400_000)
    assert i2c_panel.bus_seconds_per_frame() == pytest.approx(0.023, abs=0.0005)
    spi_panel, _ = open_panel("ssd1306", bus="spi", address=0)
    assert spi_panel.bus_seconds_per_frame() == pytest.approx(1024 * 8 / 8_000_000)
    assert spi_panel.bus_seconds_per_frame() == pytest.approx(0.001, abs=0.00005)
    slow, _ = open_panel("ssd1306", speed_hz=100_000)
    assert slow.bus_seconds_per_frame() == pytest.approx(1024 * 9 / 100_000)
    grey, _ = open_panel("ssd1327", bus="spi", address=0)  # 128x128 at 4 bits
    assert grey.bus_seconds_per_frame() == pytest.approx(8192 * 8 / 8_000_000)
    colour, _ = open_panel("ssd1351", bus="spi", address=0)  # 128x128 at 16 bits
    assert colour.bus_seconds_per_frame() == pytest.approx(32768 * 8 / 8_000_000)
    lcd, _ = open_panel("st7789", bus="spi", address=0, light_gpio=None)  # 3 bytes a pixel
    assert lcd.bus_seconds_per_frame() == pytest.approx(240 * 240 * 3 * 8 / 8_000_000)


def test_oserror_during_show_is_a_display_error() -> None:
    panel, recorder = open_panel("ssd1306")
    recorder.fail_with = OSError(errno.EIO, "Input/output error")
    with pytest.raises(DisplayError) as caught:
        panel.show(frame(checkerboard()))
    assert caught.value.device == "ssd1306:i2c:1:0x3C"
    assert "Input/output error" in str(caught.value)


def test_i2c_eio_reported_by_luma_is_a_display_error_with_a_hint() -> None:
    class DeadSMBus:
        def write_i2c_block_data(self, address: int, control: int, data: list[int]) -> None:
            raise OSError(errno.EIO, "Input/output error")

    class FlakySMBus(DeadSMBus):
        dead = False

        def write_i2c_block_data(self, address: int, control: int, data: list[int]) -> None:
            if self.dead:
                super().write_i2c_block_data(address, control, data)

    bus = FlakySMBus()
    panel = LumaPanel(LumaConfig("ssd1306"), serial_interface=i2c(bus=bus))
    bus.dead = True  # the panel's connector came loose
    with pytest.raises(DisplayError, match=r"0x3C.*check the wiring"):
        panel.show(frame(checkerboard()))
    # No panel at the address from the start: the same hint, at start-up.
    with pytest.raises(DisplayError, match=r"0x3C.*i2cdetect -y 1"):
        LumaPanel(LumaConfig("ssd1306"), serial_interface=i2c(bus=DeadSMBus()))


def test_missing_i2c_bus_is_a_display_error_with_a_hint() -> None:
    with pytest.raises(DisplayError, match=r"I2C device not found.*enable I2C with raspi-config"):
        LumaPanel(LumaConfig("ssd1306", port=250))


def test_i2c_permission_denied_is_a_display_error_with_a_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import smbus2

    def refuse(port: int) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", f"/dev/i2c-{port}")

    monkeypatch.setattr(smbus2, "SMBus", refuse)
    with pytest.raises(DisplayError, match=r"permission denied.*add the user to the i2c group"):
        LumaPanel(LumaConfig("ssd1306"))


def test_spi_without_gpio_library_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "RPi", None)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", None)
    with pytest.raises(DisplaySpecError, match=r"pip install RPi\.GPIO.*rpi-lgpio"):
        LumaPanel(LumaConfig("ssd1306", bus="spi", address=0))


def test_failure_in_the_driver_releases_the_interface() -> None:
    recorder = RecordingInterface(fail_with=OSError(errno.EIO, "Input/output error"))
    with pytest.raises(DisplayError):
        LumaPanel(LumaConfig("ssd1306"), serial_interface=recorder)
    assert recorder.cleaned_up


def test_close_blanks_and_releases_once() -> None:
    panel, recorder = open_panel("ssd1306")
    recorder.stream.clear()
    panel.close()
    panel.close()
    assert recorder.stream[0] == ("command", bytes([0xAE]))  # display off
    assert recorder.cleaned_up
    assert [kind for kind, _ in recorder.stream].count("data") == 1  # cleared once


def test_unknown_and_unsupported_drivers_are_spec_errors() -> None:
    with pytest.raises(DisplaySpecError, match=r"unknown luma driver 'ssd9999'.*ssd1306.*st7789"):
        find_driver("ssd9999")
    with pytest.raises(DisplaySpecError, match="character display"):
        find_driver("hd44780")
    with pytest.raises(DisplaySpecError, match="fixed size"):
        LumaPanel(LumaConfig("pcd8544", bus="spi", width=84, height=48, light_gpio=None))
    with pytest.raises(DisplaySpecError, match="100 x 64"):
        open_panel("ssd1306", width=100)


def test_without_luma_lcd_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "luma.lcd.device", None)
    with pytest.raises(
        DisplaySpecError, match=r"st7789 is a luma\.lcd panel.*pip install luma\.lcd"
    ):
        find_driver("st7789")
    with pytest.raises(DisplaySpecError, match=r"more with pip install luma\.lcd"):
        find_driver("nonesuch")
    assert find_driver("ssd1306").__name__ == "ssd1306"
