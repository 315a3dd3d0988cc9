"""MQTT accounts for a mosquitto broker: the PSP's, a merchant's cashier's and
a terminal's (examples/mosquitto/README.md).

Each account gets a random password, hashed into the broker's password file
by ``mosquitto_passwd``, and a ``user`` block of its own in the ACL file.
The ACL has no ``pattern`` lines on purpose: mosquitto applies a pattern to
every account (the PSP and terminals too), so each account's rights are
exactly its block, which a reviewer can read and an operator can delete.

Usernames:

- ``psp``: the PSP's outbox relay; writes every merchant's events, and
  every terminal's copy of those of its checkouts. Only the PSP writes
  events: a cashier or terminal that could would forge "paid". It reads
  every terminal's state, for the merchant's live board (``presence.py``
  subscribes to a merchant's only while one of its boards is open).
- ``{merchant_id}``: the merchant's cashier PCs (cashier-bridge).
- ``{merchant_id}/{terminal_id}``: one terminal. Terminal IDs are unique
  only within a merchant, and ``/`` can be in neither ID, so the name is
  unambiguous. In an ``mqtt(s)://`` URL write the ``/`` as ``%2F``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, TypeAlias
from urllib.parse import quote

from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_merchant_id, check_terminal_id
from scan2pay_common.topics import (
    PREFIX,
    all_state_topics,
    display_topic,
    events_topic,
    terminal_events_topic,
)
from scan2pay_common.topics import state_topic as terminal_state_topic

PSP_USERNAME = "psp"
PASSWORD_FILE = "passwd"  # noqa: S105 - the file's name, not a password
ACL_FILE = "acl"
LOCK_FILE = ".scan2pay-accounts.lock"
# secrets.token_urlsafe(32): 256 random bits in 43 URL-safe characters, so
# the password goes into an mqtts:// URL as it is.
PASSWORD_BYTES = 32
# The broker reads both files as its own user: root:mosquitto 0640 (README).
NEW_FILE_MODE = 0o640


class AccountError(Exception):
    """The account was not made; the message says why."""


@dataclass(frozen=True, slots=True)
class Account:
    role: str
    username: str
    # (access, topic) as mosquitto's ACL spells them: read, write.
    rules: tuple[tuple[str, str], ...]
    merchant_id: str | None = None
    terminal_id: str | None = None


def psp_account() -> Account:
    return Account(
        "psp",
        PSP_USERNAME,
        (
            ("write", f"{PREFIX}/m/+/events"),
            ("write", f"{PREFIX}/m/+/t/+/events"),
            ("read", f"{PREFIX}/m/+/t/+/state"),
        ),
    )


def cashier_account(merchant_id: str) -> Account:
    merchant_id = check_merchant_id(merchant_id)
    if merchant_id == PSP_USERNAME:
        raise AccountError(f"merchant id {PSP_USERNAME!r} is the PSP's username")
    return Account(
        "cashier",
        merchant_id,
        (
            ("write", f"{PREFIX}/m/{merchant_id}/t/+/display"),
            ("read", all_state_topics(merchant_id)),
            ("read", events_topic(merchant_id)),
        ),
        merchant_id=merchant_id,
    )


def terminal_username(merchant_id: str, terminal_id: str) -> str:
    return f"{check_merchant_id(merchant_id)}/{check_terminal_id(terminal_id)}"


def terminal_account(merchant_id: str, terminal_id: str) -> Account:
    return Account(
        "terminal",
        terminal_username(merchant_id, terminal_id),
        (
            ("read", display_topic(merchant_id, terminal_id)),
            ("read", terminal_events_topic(merchant_id, terminal_id)),
            # While its screen shows a checkout it cannot tie to itself.
            ("read", events_topic(merchant_id)),
            ("write", terminal_state_topic(merchant_id, terminal_id)),
        ),
        merchant_id=merchant_id,
        terminal_id=terminal_id,
    )


def acl_block(account: Account) -> str:
    lines = [f"# {account.role}", f"user {account.username}"]
    lines += [f"topic {access} {topic}" for access, topic in account.rules]
    return "\n".join(lines) + "\n"


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def userinfo(username: str, password: str) -> str:
    """``user:password`` as it goes before the ``@`` of an mqtt(s):// URL."""
    return f"{quote(username, safe='')}:{quote(password, safe='')}"


def mosquitto_passwd_binary() -> str:
    found = shutil.which("mosquitto_passwd") or (
        "/usr/bin/mosquitto_passwd" if Path("/usr/bin/mosquitto_passwd").exists() else None
    )
    if found is None:
        raise AccountError("mosquitto_passwd not found; install the mosquitto package")
    return found


def password_usernames(path: Path) -> set[str]:
    if not path.exists():
        return set()
    names = set()
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#") and ":" in line:
            names.add(line.split(":", 1)[0])
    return names


def acl_usernames(path: Path) -> set[str]:
    if not path.exists():
        return set()
    names = set()
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("user "):
            names.add(stripped[len("user ") :].strip())
    return names


def create_account(directory: Path, account: Account, *, binary: str | None = None) -> str:
    """Adds ``account`` to ``directory``'s password and ACL files and returns
    its password, which is stored nowhere in clear. Refuses a username that
    either file already has. The broker sees it after a reload (SIGHUP)."""
    if not directory.is_dir():
        raise AccountError(f"{directory} is not a directory")
    binary = binary or mosquitto_passwd_binary()
    passwd = directory / PASSWORD_FILE
    acl = directory / ACL_FILE
    with _locked(directory):
        if account.username in password_usernames(passwd) | acl_usernames(acl):
            raise AccountError(f"an MQTT account {account.username!r} already exists")
        for path in (passwd, acl):
            _create_empty(path)
        password = new_password()
        _hash_into(binary, passwd, account.username, password)
        # The password file first: an account without an ACL block can do
        # nothing (mosquitto denies what no rule allows).
        with acl.open("a") as out:
            if acl.stat().st_size and not acl.read_text().endswith("\n\n"):
                out.write("\n")
            out.write(acl_block(account))
    return password


def account_exists(directory: Path, username: str) -> bool:
    """Whether either of the broker's files names ``username``."""
    return username in password_usernames(directory / PASSWORD_FILE) | acl_usernames(
        directory / ACL_FILE
    )


def drop_account(directory: Path, username: str, *, binary: str | None = None) -> bool:
    """Takes ``username`` out of the password file (``mosquitto_passwd -D``)
    and its block out of the ACL; True if either file had it. The broker
    refuses the account after a reload (SIGHUP), and mosquitto then also
    disconnects a client logged in with it."""
    if not directory.is_dir():
        raise AccountError(f"{directory} is not a directory")
    passwd = directory / PASSWORD_FILE
    acl = directory / ACL_FILE
    with _locked(directory):
        had_password = username in password_usernames(passwd)
        if had_password:
            _delete_from(binary or mosquitto_passwd_binary(), passwd, username)
        had_block = _drop_acl_block(acl, username)
    return had_password or had_block


def _delete_from(binary: str, passwd: Path, username: str) -> None:
    try:
        result = subprocess.run(  # noqa: S603 - mosquitto_passwd, its file and a checked username; no shell
            [binary, "-D", str(passwd), username],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AccountError(f"mosquitto_passwd -D failed: {exc}") from exc
    if result.returncode != 0 or username in password_usernames(passwd):
        detail = (result.stderr or result.stdout).strip()
        raise AccountError(f"mosquitto_passwd -D failed ({result.returncode}): {detail}")


def _drop_acl_block(acl: Path, username: str) -> bool:
    """Removes the ``user`` line of ``username``, the one-word comment
    ``acl_block`` wrote above it, its ``topic`` lines and the blank line
    after them. The file is rewritten in place, as mosquitto_passwd does its
    own, so that it keeps the owner, group and mode the broker reads it with."""
    if not acl.exists():
        return False
    lines = acl.read_text().splitlines(keepends=True)
    at = next((i for i, line in enumerate(lines) if line.strip() == f"user {username}"), None)
    if at is None:
        return False
    start = at - 1 if at and re.fullmatch(r"# \w+\n?", lines[at - 1]) else at
    end = at + 1
    while end < len(lines) and lines[end].strip().startswith("topic "):
        end += 1
    if end < len(lines) and not lines[end].strip():
        end += 1
    kept = "".join(lines[:start] + lines[end:])
    with acl.open("r+") as out:
        out.write(kept)
        out.truncate()
        out.flush()
        os.fsync(out.fileno())
    return True


def _hash_into(binary: str, passwd: Path, username: str, password: str) -> None:
    # Without -b, mosquitto_passwd reads the password (twice) from stdin, so
    # it never shows in the process list (`ps`, /proc/PID/cmdline) nor on disk.
    try:
        result = subprocess.run(  # noqa: S603 - mosquitto_passwd, its file and a checked username; no shell
            [binary, str(passwd), username],
            input=f"{password}\n{password}\n",
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AccountError(f"mosquitto_passwd failed: {exc}") from exc
    if result.returncode != 0 or username not in password_usernames(passwd):
        detail = (result.stderr or result.stdout).strip()
        raise AccountError(f"mosquitto_passwd failed ({result.returncode}): {detail}")


def _create_empty(path: Path) -> None:
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, NEW_FILE_MODE))


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One account change at a time: two concurrent runs would otherwise both
    pass the duplicate check, or lose each other's mosquitto_passwd rewrite."""
    fd = os.open(directory / LOCK_FILE, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# The command line: psp-server terminal|cashier|relay create (psp_server.runtime.cli).

COMMANDS = ("terminal", "cashier", "relay")


# A subparsers object, as argparse makes it; subscripted only for the type checker.
Actions: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> dict[str, Actions]:
    """Each command's subparsers, for other actions to join (``terminal
    approve|revoke``: psp_server.pairing.cli)."""
    helps = {
        "terminal": "manage a terminal's MQTT account",
        "cashier": "manage a merchant's cashier MQTT account",
        "relay": "manage the PSP's MQTT account (its outbox relay and terminal presence)",
    }
    made: dict[str, Actions] = {}
    for command in COMMANDS:
        parser = sub.add_parser(command, help=helps[command])
        actions = parser.add_subparsers(dest="action", required=True)
        made[command] = actions
        create = actions.add_parser(
            "create", help="add the account to the broker's files and print its password once"
        )
        if command in ("terminal", "cashier"):
            create.add_argument("--merchant", required=True, help="the merchant id, mer_...")
        if command == "terminal":
            create.add_argument("--terminal", required=True, help="the terminal id, like till-1")
        create.add_argument(
            "--mosquitto-dir",
            required=True,
            type=Path,
            help=f"the folder of the broker's {PASSWORD_FILE} and {ACL_FILE} files",
        )
        create.add_argument("--json", action="store_true", help="print JSON")
    return made


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Returns the exit code: 0, or 2 when the account was not made."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        if args.command == "terminal":
            account = terminal_account(args.merchant, args.terminal)
        elif args.command == "cashier":
            account = cashier_account(args.merchant)
        else:
            account = psp_account()
        password = create_account(args.mosquitto_dir, account)
    except InvalidValue as exc:
        print(f"psp-server: {exc.message}", file=err)
        return 2
    except AccountError as exc:
        print(f"psp-server: {exc}", file=err)
        return 2
    if args.json:
        shown = {
            "role": account.role,
            "username": account.username,
            "password": password,
            "userinfo": userinfo(account.username, password),
            "merchant_id": account.merchant_id,
            "terminal_id": account.terminal_id,
        }
        print(json.dumps(shown), file=out)
    else:
        print(f"username: {account.username}\npassword: {password}", file=out)
        print(f"in an mqtts:// URL: mqtts://{userinfo(account.username, password)}@HOST", file=out)
        print(
            f"(the password is shown once; {args.mosquitto_dir / PASSWORD_FILE} holds its hash)\n"
            "reload the broker to let it in: systemctl reload mosquitto (or kill -HUP its pid)",
            file=out,
        )
    return 0
