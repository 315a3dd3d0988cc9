"""Writing the terminal's TOML config file: what pairing hands over, and
unpairing takes out again (docs/pairing.md).

The file holds the terminal's broker password, so it is written with mode
0600, owned by the user that runs the terminal, and atomically: a temporary
file in the same folder, written and fsynced, renamed over the old one,
and the folder fsynced. A terminal that loses power mid-write keeps either
the old file or the new, never half of one.

TOML is written here rather than with a library: the file holds strings,
numbers, booleans and lists of those, a dozen lines cover them, and every
write is read back with ``tomllib`` and must give exactly what was meant,
so a mistake here can only refuse to write, never write something else.
A dependency for it would grow the terminal's install on every Pi.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from scan2pay_common.errors import InvalidValue
from scan2pay_common.timefmt import now_ms, to_rfc3339

PRIVATE = 0o600
# Not secret, but the terminal's user writes it, and nobody else needs to.
PUBLIC = 0o644


def read(path: Path) -> dict[str, Any]:
    """The file's keys; none if it does not exist yet."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidValue("invalid_config", f"config file {path}: {exc}") from exc


def dumps(values: Mapping[str, Any], *, header: Iterable[str] = ()) -> str:
    """``values`` as TOML, keys in their order; checked by reading it back."""
    lines = [f"# {line}" if line else "#" for line in header]
    for key, value in values.items():
        if not _bare_key(key):
            raise InvalidValue("invalid_config", f"cannot write the key {key!r}")
        lines.append(f"{key} = {_value(value, key)}")
    text = "\n".join(lines) + "\n"
    if tomllib.loads(text) != dict(values):
        raise InvalidValue("invalid_config", "the config would not read back as written")
    return text


def _bare_key(key: str) -> bool:
    return bool(key) and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)


def _value(value: object, key: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and not (isinstance(value, float) and value != value):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item, key) for item in value) + "]"
    raise InvalidValue(
        "invalid_config", f"{key}: a {type(value).__name__} cannot be written back to the file"
    )


def _string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def write_atomically(path: Path, text: str, *, mode: int = PRIVATE) -> None:
    """Replaces ``path`` with ``text``: a temporary file beside it (made with
    ``mode`` from the start, so the secret is never readable by others even
    for a moment), fsynced, renamed over it, and the folder fsynced."""
    folder = path.parent
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def rewrite(path: Path, changes: Mapping[str, Any], *, drop: Iterable[str], why: str) -> None:
    """Keeps the file's other keys (not its comments), takes out ``drop``,
    sets ``changes`` and writes it atomically with mode 0600."""
    kept = {key: value for key, value in read(path).items() if key not in set(drop)}
    kept.update(changes)
    header = (
        f"{why} by scan2pay-terminal on {to_rfc3339(now_ms())}.",
        "Other settings were kept; comments were not. It holds the broker password: mode 0600.",
    )
    write_atomically(path, dumps(kept, header=header))
