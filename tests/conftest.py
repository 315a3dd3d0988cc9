from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.support.broker import Mosquitto
from tests.support.mqtt import Subscriber
from tests.support.psp import Psp, start_psp, stop_psp


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    mosquitto = Mosquitto(tmp_path / "mosquitto")
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
async def psp(tmp_path: Path) -> AsyncIterator[Psp]:
    """A PSP with no broker: for API tests that do not look at events."""
    server = await start_psp(str(tmp_path / "psp.db"), sweep_interval=0.05)
    yield server
    await stop_psp(server)


@pytest.fixture
async def psp_with_broker(tmp_path: Path, broker: Mosquitto) -> AsyncIterator[Psp]:
    server = await start_psp(str(tmp_path / "psp.db"), mqtt_url=broker.url, sweep_interval=0.05)
    yield server
    await stop_psp(server)


@pytest.fixture
def subscribe(broker: Mosquitto) -> Iterator[Callable[..., Subscriber]]:
    """Makes plain paho subscribers on the test's broker, closed at teardown."""
    made: list[Subscriber] = []

    def make(topic: str, **options: object) -> Subscriber:
        subscriber = Subscriber(broker.port, topic, **options)  # type: ignore[arg-type]
        made.append(subscriber)
        return subscriber

    yield make
    for subscriber in made:
        subscriber.close()
