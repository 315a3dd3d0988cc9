"""``BridgeSession``: what every checkout of one bridge process shares.

    one PSP client (one aiohttp session: its connections are kept alive)
    one MQTT connection, made at the first checkout and kept up
    the merchant (GET /v1/merchant) and the PSP's keys (GET /v1/keys)

The local API keeps one for its life; ``run_checkout`` makes one for its
single checkout. Nothing is contacted before the first checkout asks, so a
PSP or broker that is down at start-up costs that checkout, not the process,
and what failed is tried again by the next checkout.

Nothing cached is trusted past the PSP's word against it:
* a 401 from the PSP (the key was revoked or replaced) forgets the merchant,
  so the next checkout asks ``GET /v1/merchant`` again, and a key that was
  reinstated for another merchant gets that merchant's topics, not the old
  one's;
* an event that does not verify with the keys held fetches them once more
  (psp_keys.py): the PSP may have rotated its key since.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import TracebackType

from .errors import BrokerUnreachable
from .model import BridgeConfig
from .psp_client import Merchant, PspClient
from .psp_keys import PspKeys
from .terminal_link import BrokerLink

log = logging.getLogger(__name__)


class BridgeSession:
    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self.psp = PspClient(
            config.psp_url,
            config.merchant_key,
            timeout=config.psp_timeout,
            attempts=config.psp_retries,
        )
        self.merchant: Merchant | None = None
        self.keys: PspKeys | None = None
        self.broker: BrokerLink | None = None
        # One checkout at a time fetches and connects; the others wait and
        # find it done.
        self._connecting = asyncio.Lock()

    async def __aenter__(self) -> BridgeSession:
        await self.psp.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        broker, self.broker = self.broker, None
        keys, self.keys = self.keys, None
        try:
            if broker is not None:
                await broker.close()
            if keys is not None:
                await keys.close()
        finally:
            await self.psp.__aexit__(None, None, None)

    async def connected(self, psp: PspClient) -> tuple[Merchant, BrokerLink]:
        """The merchant and the broker link, fetched and made by the first
        checkout that needs them; ``psp`` is that checkout's view of the
        client, which tells it of retries. BrokerUnreachable if the broker
        cannot be reached (first) or does not come back in time (later):
        either way before a checkout is created."""
        config = self.config
        async with self._connecting:
            if self.merchant is None:
                self.merchant = await psp.merchant()
            merchant = self.merchant
            if self.keys is None:
                public_keys = await psp.public_keys()
                if public_keys is None:
                    log.warning(
                        "the PSP at %s lists no signing keys (GET /v1/keys)", config.psp_url
                    )
                self.keys = PspKeys(public_keys, self.psp.public_keys)
            broker = self.broker
            if broker is not None and (broker.merchant_id != merchant.id or not broker.alive):
                self.broker = None
                await broker.close()
                broker = None
            if broker is None:
                broker = BrokerLink(
                    config.mqtt, merchant.id, timeout=config.mqtt_timeout, keys=self.keys
                )
                await broker.__aenter__()
                self.broker = broker
            elif not await broker.wait_up(time.monotonic() + config.mqtt_timeout):
                raise BrokerUnreachable(
                    f"the broker at {config.mqtt} has been away for over "
                    f"{config.mqtt_timeout:g} s; the bridge is reconnecting"
                )
            return merchant, broker

    def forget_merchant(self) -> None:
        """After a 401: the next checkout asks who the key is again."""
        self.merchant = None
