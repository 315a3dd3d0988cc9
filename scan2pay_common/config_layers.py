"""Settings gathered in layers, a TOML file under the environment under the
command line, with every problem collected (not just the first) and each
reported with its flag, its environment variable and a hint, in the manner
of Mopidy's config schemas. The terminal and the cashier bridge use it."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidValue

# key -> (flag, environment variable, hint)
Fields = Mapping[str, tuple[str, str, str]]


def read_toml(path: str) -> dict[str, Any]:
    try:
        with Path(path).open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise InvalidValue("invalid_config", f"config file {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidValue("invalid_config", f"config file {path}: not TOML: {exc}") from exc


@dataclass
class Layers:
    fields: Fields
    raw: dict[str, Any] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)  # key -> "file", "env" or "flag"
    values: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def gather(
        cls,
        fields: Fields,
        flags: Mapping[str, Any],
        *,
        env: Mapping[str, str],
        from_file: Mapping[str, Any] | None = None,
        file_name: str | None = None,
        not_in_file: Mapping[str, str] | None = None,
    ) -> Layers:
        """``flags`` maps keys to what the command line gave (None: not given).
        ``not_in_file`` maps keys a file must not hold to the reason why."""
        layers = cls(fields)
        refused = not_in_file or {}
        if from_file is not None:
            for key in sorted(set(from_file) & set(refused)):
                layers.problems.append(f"{file_name}: {key!r} {refused[key]}")
            for key in sorted(set(from_file) - set(fields) - set(refused)):
                layers.problems.append(
                    f"{file_name}: unknown key {key!r}; known: {', '.join(fields)}"
                )
            layers._put({k: v for k, v in from_file.items() if k in fields}, "file")
        layers._put({key: env[var] for key, (_, var, _) in fields.items() if var in env}, "env")
        layers._put({k: v for k, v in flags.items() if k in fields and v is not None}, "flag")
        return layers

    def _put(self, found: Mapping[str, Any], source: str) -> None:
        for key, value in found.items():
            self.raw[key] = value
            self.source[key] = source

    def problem(self, key: str, message: str) -> None:
        flag, var, hint = self.fields[key]
        self.problems.append(f"{key} ({flag}, {var}): {message}; expected {hint}")

    def take(self, key: str, parse: Callable[[Any], object], *, to: str | None = None) -> None:
        """Parses ``key`` if given, into ``values[to or key]``, or notes why not."""
        if key in self.raw:
            try:
                self.values[to or key] = parse(self.raw[key])
            except InvalidValue as exc:
                self.problem(key, exc.message)
