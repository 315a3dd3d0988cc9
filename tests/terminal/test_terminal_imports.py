"""The terminal role's code reaches nothing of the PSP's.

In a fresh interpreter, ``terminal``, its CLI and its daemon, then every
module of ``terminal/``, ``hardware/`` and ``scan2pay_common/``, are
imported, and signatures are checked as the daemon checks each display
ticket and as ``scan2pay_common.signing`` checks them for every role: no
``psp_server`` module may load, nor any package that only the other roles
install (``pip install '.[terminal]'`` leaves them out, so on a Pi such an
import would fail). tests/terminal/test_terminal_install.py checks the install
itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Our other roles' packages, and the top-level modules of the packages that
# only they install: the PSP's (aiohttp, yoyo, psycopg, uvloop, greenlet),
# the demo's (amqtt, zxingcpp) and the tests' (playwright). cryptography is
# in no role: PyNaCl is the one Ed25519 library.
NOT_THE_TERMINALS = (
    "psp_server",
    "cashier_bridge",
    "scan2pay",
    "aiohttp",
    "yoyo",
    "psycopg",
    "psycopg_binary",
    "uvloop",
    "greenlet",
    "amqtt",
    "zxingcpp",
    "playwright",
    "cryptography",
)

# Run in the child. A finder first on sys.meta_path finds nothing itself:
# it notes each forbidden import and the project line that made it, and
# lets the import go on.
CHILD = r"""
import importlib, json, pkgutil, sys, traceback

FORBIDDEN = set(json.loads(sys.argv[1]))
ROOT = sys.argv[2]
seen = {}

class Watch:
    @staticmethod
    def find_spec(name, path=None, target=None):
        top = name.partition(".")[0]
        if top in FORBIDDEN and top not in seen:
            ours = [
                f"{frame.filename[len(ROOT) + 1:]}:{frame.lineno}"
                for frame in traceback.extract_stack()
                if frame.filename.startswith(ROOT + "/")
            ]
            seen[top] = ours[-1] if ours else "?"
        return None

sys.meta_path.insert(0, Watch)

import terminal, terminal.cli, terminal.daemon

for package in ("terminal", "hardware", "scan2pay_common"):
    for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
        importlib.import_module(info.name)

from scan2pay_common.messages import DisplayTicket, ShowQr
from scan2pay_common.signing import SigningKey
from terminal.trust import ticket_problem

key = SigningKey(bytes(range(32)))
URL = "HTTP://127.0.0.1:8080/Q/MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"
ticket = DisplayTicket(
    checkout_id="co_1", merchant_id="mer_1", qr_url=URL, amount=1250,
    currency="EUR", terminal_id="till-1", expires_at="2099-01-01T00:00:00.000Z",
).to_dict()
command = ShowQr(
    "co_1", URL, 1250, "EUR", "2099-01-01T00:00:00.000Z",
    display_ticket=key.sign(ticket),
)
assert ticket_problem(command, [key.public], "mer_1", "till-1", 0) is None
forged = ShowQr(
    "co_1", URL, 1250, "EUR", "2099-01-01T00:00:00.000Z",
    display_ticket={**key.sign(ticket), "amount": 1},
)
assert ticket_problem(forged, [key.public], "mer_1", "till-1", 0) is not None

from scan2pay_common.signing import PublicKey, verify

signed = key.sign({"event_id": "evt_1"})
assert verify(signed, [PublicKey(key.public.raw)])
assert not verify({**signed, "event_id": "evt_2"}, [PublicKey(key.public.raw)])

loaded = sorted(m for m in sys.modules if m.partition(".")[0] in FORBIDDEN)
print(json.dumps({"imported_by": seen, "loaded": loaded}))
"""


def test_the_terminals_code_imports_nothing_of_the_psp() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(NOT_THE_TERMINALS), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert found == {"imported_by": {}, "loaded": []}, (
        "the terminal role imported what it does not install (module: the line "
        f"that imported it): {found['imported_by']}"
    )
