"""The bridge's keys of the PSP: fetched again for an event that does not
verify, at most once per ``REFETCH_INTERVAL_MS`` of the clock it is given."""

from __future__ import annotations

import json

from cashier_bridge.psp_keys import REFETCH_INTERVAL_MS, PspKeys
from scan2pay_common.clock import MovableClock
from scan2pay_common.signing import PublicKey, SigningKey

EVENT = {"event_id": "evt_1", "type": "checkout.paid"}


async def test_a_forged_event_refetches_the_keys_once_per_interval() -> None:
    psp = SigningKey.generate()
    forged = json.dumps(SigningKey.generate().sign(EVENT)).encode()
    fetched: list[int] = []

    async def fetch() -> tuple[PublicKey, ...]:
        fetched.append(1)
        return (psp.public,)

    clock = MovableClock()
    keys = PspKeys((psp.public,), fetch, clock=clock)
    assert keys.verdict(json.dumps(psp.sign(EVENT)).encode()) == "verified"
    assert keys.verdict(forged) == "refetch"
    assert await keys.verified_after_refetch(forged) is False
    assert keys.verdict(forged) == "refused"  # no second fetch within the interval
    clock.advance(REFETCH_INTERVAL_MS - 1_000)
    assert keys.verdict(forged) == "refused"
    clock.advance(1_000)
    assert keys.verdict(forged) == "refetch"
    assert await keys.verified_after_refetch(forged) is False
    assert len(fetched) == keys.refetches == 2
    await keys.close()
