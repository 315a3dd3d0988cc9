"""The webhook API against psp_server/openapi.json, once
psp_server/openapi_webhooks.fragment.json is merged into it: every response
the fragment documents, produced by a live server and checked by
tests/psp_server/api/test_openapi.py's ``conforms``. Wire it in there with::

    async def test_webhooks(psp: Psp) -> None:
        from tests.support.openapi_webhooks import exercise

        await exercise(psp, call, conforms)
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

from tests.support.polling import until
from tests.support.psp import Psp, code_of

Call = Callable[..., Awaitable[Any]]
Conforms = Callable[..., Any]


def _closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/hook"


async def exercise(psp: Psp, call: Call, conforms: Conforms) -> None:
    shop, other = await psp.merchant(), await psp.merchant("Other Shop")
    auth = shop.auth

    # POST /v1/webhooks
    created = conforms(
        await call(psp, "POST", "/v1/webhooks", json={"url": _closed_port_url()}, headers=auth),
        201,
    )
    assert created["secret"].startswith("whsec_")
    for body, code in (
        ({"url": "ftp://example.com"}, "invalid_url"),
        ({"url": "https://u:p@example.com"}, "invalid_url"),
        ({}, "missing_field"),
        ({"url": "https://example.com", "x": 1}, "unknown_field"),
    ):
        reply = await call(psp, "POST", "/v1/webhooks", json=body, headers=auth)
        conforms(reply, 422, code)
    conforms(await call(psp, "POST", "/v1/webhooks", data=b"{", headers=auth), 400, "invalid_json")
    huge = {"url": "https://example.com/" + "a" * 20_000}
    conforms(await call(psp, "POST", "/v1/webhooks", json=huge, headers=auth), 413)
    conforms(await call(psp, "POST", "/v1/webhooks", json={"url": "https://a.example"}), 401)
    for n in range(15):
        more = {"url": f"https://example.com/{n}"}
        conforms(await call(psp, "POST", "/v1/webhooks", json=more, headers=other.auth), 201)
    reply = await call(
        psp, "POST", "/v1/webhooks", json={"url": "https://example.com/x"}, headers=other.auth
    )
    conforms(reply, 201)
    reply = await call(
        psp, "POST", "/v1/webhooks", json={"url": "https://example.com/y"}, headers=other.auth
    )
    conforms(reply, 409, "too_many_webhooks")

    # GET /v1/webhooks
    listed = conforms(await call(psp, "GET", "/v1/webhooks", headers=auth), 200)
    assert [w["id"] for w in listed["webhooks"]] == [created["id"]]
    conforms(await call(psp, "GET", "/v1/webhooks"), 401, "unauthorized")

    # GET /v1/webhooks/{webhook_id}/deliveries: an event, which the closed
    # port refuses, so that the log has an entry to redeliver.
    checkout = await psp.checkout(shop)
    status, _ = await psp.pay(await psp.wallet(), code_of(checkout))
    assert status == 201
    base = f"/v1/webhooks/{created['id']}"

    async def attempted() -> Any:
        log = conforms(await call(psp, "GET", f"{base}/deliveries?limit=5", headers=auth), 200)
        return log if log["deliveries"] and log["deliveries"][0]["attempts"] else None

    log = await until(attempted, what="a delivery attempted", timeout=5)
    (delivery,) = log["deliveries"]
    assert delivery["last_error"]
    assert delivery["status"] == "pending"
    conforms(await call(psp, "GET", f"{base}/deliveries"), 401, "unauthorized")
    conforms(await call(psp, "GET", f"{base}/deliveries", headers=other.auth), 404, "not_found")
    reply = await call(psp, "GET", f"{base}/deliveries?limit=0", headers=auth)
    conforms(reply, 422, "invalid_limit")

    # POST .../deliveries/{event_id}/redeliver
    redeliver = f"{base}/deliveries/{delivery['event_id']}/redeliver"
    queued = conforms(await call(psp, "POST", redeliver, headers=auth), 202)
    assert queued["next_attempt_at"] is not None
    conforms(await call(psp, "POST", redeliver), 401, "unauthorized")
    conforms(await call(psp, "POST", redeliver, headers=other.auth), 404, "not_found")
    reply = await call(
        psp, "POST", f"{base}/deliveries/evt_00000000000000000000/redeliver", headers=auth
    )
    conforms(reply, 404, "not_found")

    # DELETE /v1/webhooks/{webhook_id}
    disabled = conforms(await call(psp, "DELETE", base, headers=auth), 200)
    assert disabled["enabled"] is False
    conforms(await call(psp, "DELETE", base), 401, "unauthorized")
    conforms(await call(psp, "DELETE", base, headers=other.auth), 404, "not_found")
    conforms(await call(psp, "POST", redeliver, headers=auth), 409, "webhook_disabled")
