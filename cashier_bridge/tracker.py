"""The local API's checkouts: each flow running in the background, what it
has done so far, and how it ended. No HTTP here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, Literal

from scan2pay_common.statuses import FINAL_STATUSES

from .errors import BridgeError
from .flow import checkout_in
from .model import BridgeConfig, CheckoutOrder, CheckoutResult, Step
from .output import error_json, step_json
from .session import BridgeSession

log = logging.getLogger(__name__)

Status = Literal["starting", "on_screen", "paid", "cancelled", "expired", "failed"]

# Finished checkouts kept for GET; the oldest go first.
KEEP_FINISHED = 1000


def new_local_id() -> str:
    return f"lc_{secrets.token_hex(10)}"


class LocalCheckout:
    def __init__(self, order: CheckoutOrder) -> None:
        self.id = new_local_id()
        self.order = order
        self.started = time.monotonic()
        self.status: Status = "starting"
        self.checkout: dict[str, Any] | None = None  # the PSP's, once created
        self.steps: list[dict[str, Any]] = []
        self.error: dict[str, Any] | None = None
        self.task: asyncio.Task[CheckoutResult] | None = None
        # Set by on_done, not read off the task: the stream must not end
        # between the task's end and the "failed" step on_done adds.
        self.finished = False
        self._changed = asyncio.Event()

    @property
    def checkout_id(self) -> str | None:
        return None if self.checkout is None else str(self.checkout["id"])

    def on_step(self, step: Step) -> None:
        self.steps.append(step_json(step, self.started))
        if step.name == "created":
            self.checkout = {k: step.data.get(k) for k in ("qr_url", "expires_at", "status")}
            self.checkout["id"] = step.data["checkout_id"]
        elif step.name == "shown":
            self.status = "on_screen"
        self._pulse()

    def on_done(self, task: asyncio.Task[CheckoutResult]) -> None:
        if task.cancelled():
            # The flow cancelled the checkout at the PSP, unless it was too
            # late (paid, expired) or the PSP could not be reached.
            last = self.steps[-1] if self.steps else {"step": None, "data": {}}
            status = last["data"].get("status")
            if last["data"].get("checkout_id") and status is None:
                self.status = "failed"
                self.error = {"code": "interrupted", "message": last["message"], "exit_code": 130}
            else:
                self.status = status if status in ("paid", "expired") else "cancelled"
        elif (exc := task.exception()) is not None:
            if isinstance(exc, BridgeError):
                self.error = error_json(exc)
            else:
                log.error("checkout %s failed", self.id, exc_info=exc)
                self.error = {"code": "internal_error", "message": str(exc), "exit_code": 1}
            self.status = "failed"
            self.steps.append(
                {
                    "step": "failed",
                    "message": self.error["message"],
                    "data": self.error,
                    "elapsed_ms": round((time.monotonic() - self.started) * 1000, 1),
                }
            )
        else:
            result = task.result()
            self.status = result.outcome
            if self.checkout is not None:
                self.checkout["status"] = result.outcome
        self.finished = True
        self._pulse()

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, deadline: float) -> None:
        """Returns when a step is added or the flow ends, or once
        time.monotonic() reaches ``deadline``."""
        event = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await event.wait()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "order_id": self.order.order_id,
            "amount": self.order.amount,
            "currency": self.order.currency,
            "terminal_id": self.order.terminal_id,
            "expires_in": self.order.expires_in,
            "description": self.order.description,
            "checkout_id": self.checkout_id,
            "qr_url": None if self.checkout is None else self.checkout["qr_url"],
            "expires_at": None if self.checkout is None else self.checkout["expires_at"],
            "steps": self.steps,
            "error": self.error,
        }


class Registry:
    """The checkouts of one local API, all run on its one session."""

    def __init__(self, session: BridgeSession) -> None:
        self.session = session
        self._items: OrderedDict[str, LocalCheckout] = OrderedDict()

    @property
    def config(self) -> BridgeConfig:
        return self.session.config

    def __iter__(self) -> Iterator[LocalCheckout]:
        return iter(list(self._items.values()))

    def get(self, local_id: str) -> LocalCheckout | None:
        return self._items.get(local_id)

    def by_order(self, order_id: str) -> LocalCheckout | None:
        """The latest checkout of this order here."""
        return next((c for c in reversed(list(self)) if c.order.order_id == order_id), None)

    def running_on(self, terminal_id: str) -> LocalCheckout | None:
        return next(
            (c for c in self if not c.finished and c.order.terminal_id == terminal_id), None
        )

    def start(self, order: CheckoutOrder) -> LocalCheckout:
        tracked = LocalCheckout(order)
        tracked.task = asyncio.create_task(
            checkout_in(self.session, order, tracked.on_step), name=f"checkout-{tracked.id}"
        )
        tracked.task.add_done_callback(tracked.on_done)
        self._items[tracked.id] = tracked
        self._forget_old()
        return tracked

    def _forget_old(self) -> None:
        finished = [c.id for c in self if c.finished]
        for local_id in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._items[local_id]

    async def cancel_all(self) -> None:
        """Cancels every running flow and waits for each to clean up (cancel
        at the PSP, clear its terminal)."""
        tasks = [c.task for c in self if c.task is not None and not c.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES or status == "failed"
