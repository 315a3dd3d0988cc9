"""``scan2pay-terminal doctor``: what an installer runs to see whether this
terminal is ready, before a shop opens or after something changed.

One line a check (``ok``, ``FAIL`` or ``skip``, what, and a hint on a
failure), or one JSON object with ``--json``; the exit status is 1 when a
check failed. The checks run side by side, each with its own timeout, so
that the doctor answers in a few seconds whatever is down:

- config: the settings load (every problem at once);
- clock: the system says its clock is synchronised (``clock.py``);
- display: the panel is there (``hardware/probe.py``); fonts: they load;
- broker: it takes these credentials; acl: it lets them read the
  terminal's topics (``broker.py``);
- psp: it answers; psp key: it signs with a key the terminal holds;
  clock skew: this clock is near the PSP's (``psp.py``).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from ..cli import add_settings, settings_given
from ..config import ConfigError, TerminalConfig, load, load_display
from . import broker, clock, local, psp
from .report import Check, as_json, as_text

EXIT_FAILED = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scan2pay-terminal doctor",
        description="Checks this terminal's settings, clock, display, fonts, broker and PSP.",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    add_settings(parser)
    return parser


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    checks = asyncio.run(run(settings_given(args), config_file=args.config))
    print(as_json(checks) if args.json else as_text(checks))
    return EXIT_FAILED if any(check.failed for check in checks) else 0


async def run(
    flags: Mapping[str, Any],
    *,
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
) -> list[Check]:
    from hardware.registry import parse_spec

    config: TerminalConfig | None = None
    display: str | None = None
    try:
        config = load(flags, config_file=config_file, env=env, check_display=parse_spec)
    except ConfigError as error:
        config_check = Check.fail(
            "config",
            f"{len(error.problems)} problem(s): {'; '.join(error.problems)}",
            "correct each setting named; docs/terminal.md lists them",
        )
        try:  # the display can still be checked when its own settings are right
            display = load_display(
                flags, config_file=config_file, env=env, check_display=parse_spec
            ).display
        except ConfigError:
            display = None
    else:
        display = config.display
        source = f" (from {config_file})" if config_file else ""
        config_check = Check.ok(
            "config",
            f"terminal {config.terminal_id} of {config.merchant_id}, display {config.display},"
            f" broker {config.mqtt}{source}",
        )
    clock_task = asyncio.to_thread(clock.sync_check)
    display_task = asyncio.to_thread(_display, display)
    network = _network(config)
    synced, shown, (on_broker, on_psp) = await asyncio.gather(clock_task, display_task, network)
    psp_check, key_check, skew = on_psp
    return [
        config_check,
        synced,
        skew,
        shown,
        local.fonts_check(),
        *on_broker,
        psp_check,
        key_check,
    ]


def _display(spec: str | None) -> Check:
    if spec is None:
        return Check.skip("display", "its setting did not load (see config)")
    return local.display_check(spec)


async def _network(config: TerminalConfig | None) -> tuple[list[Check], list[Check]]:
    if config is None:
        why = "the config did not load"
        return (
            [Check.skip("broker", why), Check.skip("acl", why)],
            [Check.skip("psp", why), Check.skip("psp key", why), Check.skip("clock skew", why)],
        )
    on_broker, on_psp = await asyncio.gather(
        broker.checks(config),
        asyncio.to_thread(psp.checks, config.psp_url, config.psp_public_keys),
    )
    return on_broker, on_psp
