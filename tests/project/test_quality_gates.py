"""The lint and type gates are configured as agreed, and CI runs them.

Pure file reading (pyproject.toml, the Makefile, .ci/run and the Python
sources), so that it costs nothing in ``make test``; running ruff and mypy
is ``make check``'s job. Each test fails if its part of the configuration
is reverted: the rule sets, the reasons beside every ignore, mypy's
targets, and CI running the gates before the tests.
"""

from __future__ import annotations

import io
import re
import shlex
import tokenize
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT_TEXT = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
PYPROJECT: dict[str, Any] = tomllib.loads(PYPROJECT_TEXT)

RULE_CODE = re.compile(r"[A-Z]+[0-9]*")
# A type-checker pragma: its error codes in brackets, then a comment of its own.
TYPE_IGNORE = re.compile(r"type:\s*ignore(?P<rest>.*)")
TYPE_IGNORE_RIGHT = re.compile(r"\[[a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*\]\s*#\s*\S")
# A ruff pragma: its rule codes, then " - why" (or a comment of its own).
NOQA = re.compile(r"noqa", re.IGNORECASE)
NOQA_RIGHT = re.compile(r"noqa:\s*[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*\s*(?:-|#)\s*\S")
# Directories that hold no project source: the virtualenv, caches, output.
NOT_SOURCE = {"__pycache__", "build", "dist", "node_modules", "test-results"}


def _ruff_lint() -> dict[str, Any]:
    lint: dict[str, Any] = PYPROJECT["tool"]["ruff"]["lint"]
    return lint


def _python_sources() -> Iterator[Path]:
    """Every .py file of the project: hidden folders (.venv, .git, caches)
    and build output left out."""

    def walk(folder: Path) -> Iterator[Path]:
        for path in sorted(folder.iterdir()):
            if path.is_dir():
                if not path.name.startswith(".") and path.name not in NOT_SOURCE:
                    yield from walk(path)
            elif path.suffix == ".py":
                yield path

    yield from walk(ROOT)


def _comments(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of each comment: strings that merely mention a pragma
    are not comments, and are left alone."""
    source = path.read_text(encoding="utf-8")
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string


def _section(text: str, header: str) -> list[str]:
    """The raw lines of one TOML table, up to the next table header."""
    lines = text.splitlines()
    start = lines.index(header) + 1
    end = next(
        (n for n in range(start, len(lines)) if lines[n].startswith("[")),
        len(lines),
    )
    return lines[start:end]


def _without_strings(line: str) -> str:
    return re.sub(r'"[^"]*"', '""', line)


# --- ruff ------------------------------------------------------------------


def test_ruff_selects_security_blind_except_and_pytest_rules() -> None:
    lint = _ruff_lint()
    selected = set(lint["select"])
    assert {"S", "BLE", "PT"} <= selected, selected
    # Not taken back by a global ignore: a file or a line that needs one says why.
    for key in ("ignore", "extend-ignore"):
        for code in lint.get(key, []):
            assert not code.startswith(("S", "BLE", "PT")), (key, code)


def test_every_per_file_ignore_says_why() -> None:
    """Each ignored rule sits on a line with a comment after it, and the
    raw text read here is the whole table that ruff reads."""
    table: dict[str, list[str]] = _ruff_lint()["per-file-ignores"]
    found: dict[str, list[str]] = {}
    key: str | None = None
    for line in _section(PYPROJECT_TEXT, "[tool.ruff.lint.per-file-ignores]"):
        if line.lstrip().startswith("#") or not line.strip():
            continue
        opened = re.match(r'\s*"([^"]+)"\s*=', line)
        if opened:
            key = opened.group(1)
            found[key] = []
            values = line[opened.end() :]
        else:
            values = line
        codes = [c for c in re.findall(r'"([^"]*)"', values) if RULE_CODE.fullmatch(c)]
        if not codes:
            continue
        assert key is not None, line
        found[key] += codes
        _, hash_mark, reason = _without_strings(line).partition("#")
        assert hash_mark, f"no reason given for {codes} of {key}: {line.strip()!r}"
        assert len(reason.strip()) >= 10, f"say why {codes} of {key} are ignored: {line!r}"
    assert found == table


# --- mypy ------------------------------------------------------------------


def test_mypy_is_strict_and_checks_tests_and_bench() -> None:
    mypy: dict[str, Any] = PYPROJECT["tool"]["mypy"]
    assert mypy["strict"] is True
    targets = set(mypy.get("packages", [])) | set(mypy.get("files", []))
    assert {"tests", "bench"} <= targets, targets


def test_mypy_checks_every_package_of_the_repository() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    targets = set(PYPROJECT["tool"]["mypy"].get("packages", []))
    assert packages <= targets, packages - targets


# --- pragmas in the sources ----------------------------------------------------


def test_every_type_ignore_names_its_codes_and_says_why() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {comment}"
        for path in _python_sources()
        for line, comment in _comments(path)
        for found in [TYPE_IGNORE.search(comment)]
        if found and not TYPE_IGNORE_RIGHT.match(found.group("rest"))
    ]
    assert not bad, "type: ignore[code]  # why, each:\n" + "\n".join(bad)


def test_every_noqa_names_its_codes_and_says_why() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {comment}"
        for path in _python_sources()
        for line, comment in _comments(path)
        if NOQA.search(comment) and not NOQA_RIGHT.search(comment)
    ]
    assert not bad, "noqa: CODE - why, each:\n" + "\n".join(bad)


def test_the_pragma_checks_see_the_sources() -> None:
    """The walk finds the packages, the tests and the benchmarks, and the
    patterns tell a right pragma from a wrong one."""
    found = {path.relative_to(ROOT).parts[0] for path in _python_sources()}
    assert {"psp_server", "terminal", "tests", "bench"} <= found, found
    ignore = TYPE_IGNORE.search("# type: ignore[arg-type]  # checked below")
    assert ignore is not None
    assert TYPE_IGNORE_RIGHT.match(ignore.group("rest"))
    for wrong in ("# type: ignore", "# type: ignore[misc]", "# type: ignore  # why"):
        ignore = TYPE_IGNORE.search(wrong)
        assert ignore is not None
        assert not TYPE_IGNORE_RIGHT.match(ignore.group("rest")), wrong
    assert NOQA_RIGHT.search("# noqa: S311 - retry jitter")
    for wrong in ("# noqa", "# noqa: S311", "# NOQA: E501", "# ruff: noqa"):
        assert NOQA.search(wrong)
        assert not NOQA_RIGHT.search(wrong), wrong


# --- make check and CI -------------------------------------------------------


def _commands(path: Path) -> list[list[str]]:
    """The shell script's commands, one per line, comments left out."""
    commands = []
    for line in path.read_text(encoding="utf-8").splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(words)
    return commands


def test_make_check_runs_ruff_format_and_mypy_on_the_configured_targets() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^check:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe, "no check target in the Makefile"
    lines = [line.strip() for line in recipe.group(1).splitlines()]
    assert "$(VENV)/bin/ruff check ." in lines
    assert "$(VENV)/bin/ruff format --check ." in lines
    # No arguments: mypy checks what pyproject.toml lists (tests and bench too).
    assert "$(VENV)/bin/mypy" in lines


def test_ci_runs_make_check_before_make_test() -> None:
    commands = _commands(ROOT / ".ci" / "run")
    assert ["set", "-euo", "pipefail"] in commands  # a failed gate stops the run
    makes = [words[:2] for words in commands if words[0] == "make"]
    assert ["make", "check"] in makes, makes
    assert ["make", "test"] in makes, makes
    assert makes.index(["make", "check"]) < makes.index(["make", "test"]), makes
