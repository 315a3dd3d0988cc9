"""The broker's side of pairing: a paired terminal's account in mosquitto's
files (``mqtt_accounts``), and the command that makes mosquitto reread them.

The account changes are file writes and a ``mosquitto_passwd`` run, so they
go to a worker thread, never the event loop. A reload that fails does not
undo the account: the operator reloads by hand, and the terminal, which
retries its broker with backoff, gets in then.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from psp_server.mqtt import accounts as mqtt_accounts
from psp_server.runtime.config import Settings
from scan2pay_common.logtext import loggable
from scan2pay_common.mqtt_url import MqttTarget

log = logging.getLogger(__name__)

RELOAD_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class Broker:
    """Where paired terminals connect, and how their accounts are made."""

    target: MqttTarget
    directory: Path
    ca_pem: str | None = field(default=None, repr=False)
    reload_command: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> Broker | None:
        """None when the settings pair no terminals."""
        if settings.terminal_mqtt is None or settings.mosquitto_dir is None:
            return None
        ca = settings.terminal_mqtt_ca
        return cls(
            settings.terminal_mqtt,
            settings.mosquitto_dir,
            None if ca is None else ca.read_text(encoding="ascii"),
            settings.mosquitto_reload,
        )

    def url(self, username: str, password: str) -> str:
        """The terminal's ``mqtt(s)://user:password@host:port``."""
        scheme = "mqtts" if self.target.tls else "mqtt"
        host = f"[{self.target.host}]" if ":" in self.target.host else self.target.host
        return f"{scheme}://{mqtt_accounts.userinfo(username, password)}@{host}:{self.target.port}"

    def has_account(self, username: str) -> bool:
        return mqtt_accounts.account_exists(self.directory, username)

    async def create_terminal(self, merchant_id: str, terminal_id: str) -> str:
        """The new account's password; AccountError if it was not made."""
        account = mqtt_accounts.terminal_account(merchant_id, terminal_id)
        return await asyncio.to_thread(mqtt_accounts.create_account, self.directory, account)

    async def drop_terminal(self, merchant_id: str, terminal_id: str) -> bool:
        username = mqtt_accounts.terminal_username(merchant_id, terminal_id)
        return await asyncio.to_thread(mqtt_accounts.drop_account, self.directory, username)

    async def reload(self) -> str | None:
        """Runs the reload command; None once it succeeded, else what to tell
        the operator."""
        if not self.reload_command:
            return (
                "no mosquitto_reload command is set: reload the broker yourself"
                " (systemctl reload mosquitto) to let the change in"
            )
        return await asyncio.to_thread(run_reload, self.reload_command)


def run_reload(command: tuple[str, ...]) -> str | None:
    try:
        result = subprocess.run(  # noqa: S603 - the operator's own command from the PSP's settings, no shell
            command, capture_output=True, text=True, timeout=RELOAD_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = f"the broker's reload command failed: {exc}"
    else:
        if result.returncode == 0:
            return None
        detail = (result.stderr or result.stdout).strip()[:300]
        problem = f"the broker's reload command exited with {result.returncode}: {detail}"
    log.warning("%s", loggable(problem))
    return problem
