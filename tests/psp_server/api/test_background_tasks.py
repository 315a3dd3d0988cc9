"""The PSP's background loops run as named tasks of one TaskGroup that
lives as long as the app; one that fails is logged and ends alone."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from psp_server.api import app as psp_app
from tests.support.psp import start_psp, stop_psp

LOOPS = {"expiry-sweeper", "webhook-dispatcher"}


def _running() -> set[str]:
    return {task.get_name() for task in asyncio.all_tasks() if not task.done()}


async def test_the_loops_run_named_while_the_app_lives(tmp_path: Path) -> None:
    psp = await start_psp(str(tmp_path / "psp.db"))
    try:
        assert _running() >= LOOPS
    finally:
        await stop_psp(psp)
    assert not LOOPS & _running()


async def test_a_loop_that_fails_is_logged_and_the_others_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken_sweeper(*_: object) -> None:
        raise RuntimeError("a bug in the sweeper")

    monkeypatch.setattr(psp_app, "sweep_forever", broken_sweeper)
    caplog.set_level(logging.ERROR, logger=psp_app.__name__)
    psp = await start_psp(str(tmp_path / "psp.db"))
    try:
        for task in asyncio.all_tasks():
            if task.get_name() == "expiry-sweeper":  # not ended yet: it will, without an error
                await asyncio.wait_for(task, 5.0)
        [record] = [r for r in caplog.records if r.name == psp_app.__name__]
        assert record.getMessage() == "background task expiry-sweeper stopped; the others go on"
        assert record.exc_info is not None
        assert "webhook-dispatcher" in _running()
        status, _ = await psp.call("GET", "/healthz")
        assert status == 200
    finally:
        await stop_psp(psp)
