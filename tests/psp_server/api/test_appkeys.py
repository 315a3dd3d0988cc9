"""Every AppKey of the PSP is declared in psp_server/api/appkeys.py, and that
module imports first, before anything else of the PSP: the classes it
names live in modules that do not import it back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PSP_SERVER = ROOT / "psp_server"


def _app_keys_made(path: Path) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "AppKey"
    ]


def test_no_module_but_appkeys_declares_an_app_key() -> None:
    elsewhere = {
        f"{path.relative_to(PSP_SERVER)}:{line}"
        for path in PSP_SERVER.rglob("*.py")
        if path.name != "appkeys.py"
        for line in _app_keys_made(path)
    }
    assert elsewhere == set()
    assert _app_keys_made(PSP_SERVER / "api" / "appkeys.py"), "the gate sees no keys"


def test_appkeys_imports_first() -> None:
    """A module that both imports appkeys and is imported by it would find
    appkeys half made and fail; imported first, appkeys meets every such
    cycle. In a process of its own: here the PSP is imported already."""
    done = subprocess.run(
        [sys.executable, "-c", "import psp_server.api.appkeys"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
