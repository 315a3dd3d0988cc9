"""The soundbox's figures: from the PSP's answer to the wallet to the first
audio sample handed to the output, with the ``wav`` output, the spoken
parts uncached (each rendered by espeak-ng) and cached; and the cache's
size on disk per language.

Run from the repository root: ``.venv/bin/python bench/sound_bench.py``
(``--quick`` for fewer payments). A real mosquitto and ``psp-server
serve``; the terminal daemon in this process (in a thread of its own with
its own event loop, as it runs in its own process), so that the moment its
soundbox hands a clip to the output and the moment the wallet has the
PSP's answer are read off one clock. Each payment is a checkout made for
the terminal, paid by a wallet over HTTP; the PSP's relay publishes its
signed ``checkout.paid`` on the terminal's events topic.

"Uncached": the cache folder is emptied before each payment, so every
part of the announcement ("Received", "forty-two", "euros", ...) is
rendered by espeak-ng then. "Cached": the warm-up (the phrases, the
numbers below a hundred, the currencies' names) has run and the amounts
are below a hundred euros, as a terminal that has been on a while finds
them.
"""

from __future__ import annotations

import asyncio
import queue
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import run_alone, summary
from hardware.audio import Clip
from hardware.base import NoopDisplay
from psp_server.storage.sqlite import SqliteStorage
from scan2pay_common.mqtt_url import MqttTarget
from scan2pay_common.signing import parse_public_keys
from terminal.announce_text import LANGUAGES
from terminal.clock import Clock
from terminal.config import TerminalConfig
from terminal.daemon import TerminalDaemon
from terminal.soundbox import Soundbox, warm_texts
from terminal.speech import Espeak, PhraseCache
from terminal.trust import Identity
from tests.support.broker import Mosquitto
from tests.support.plain_http import http
from tests.support.process import NO_RATE_LIMITS, PspProcess

LANE = "lane-1"
TARGET_P99_MS = 150.0


class Till:
    """The daemon in a thread; ``handed`` gets the time each clip is handed over."""

    def __init__(self, config: TerminalConfig) -> None:
        self.handed: queue.Queue[tuple[float, str]] = queue.Queue()
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.soundbox: Soundbox | None = None
        self.ready = threading.Event()
        self.config = config
        self.thread = threading.Thread(target=self._run, name="terminal", daemon=True)
        self.thread.start()

    def _clip(self, clip: Clip) -> None:
        self.handed.put((time.perf_counter(), clip.text))

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            config, clock = self.config, Clock()
            me = Identity(config.merchant_id, config.terminal_id, config.psp_public_keys)
            self.soundbox = Soundbox(config, me, clock, on_clip=self._clip)
            daemon = TerminalDaemon(config, NoopDisplay(), clock=clock, soundbox=self.soundbox)
            self.ready.set()
            await daemon.run(self.stop)

        self.loop.run_until_complete(main())
        # What the MQTT client leaves behind ends here, not at exit.
        left = asyncio.all_tasks(self.loop)
        for task in left:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        self.loop.close()

    def warm(self) -> None:
        assert self.ready.wait(30)
        assert self.soundbox is not None
        asyncio.run_coroutine_threadsafe(self.soundbox.warm(), self.loop).result(120)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(20)


def sale(psp_url: str, key: str, wallet: str, amount: int) -> float:
    """A paid checkout for the till; the time the wallet had the PSP's answer."""
    body = {"order_id": f"B-{time.monotonic_ns()}", "amount": amount, "currency": "EUR"}
    status, created = http("POST", f"{psp_url}/v1/checkouts", {**body, "terminal_id": LANE}, key)
    assert status == 201, created
    code = created["qr_url"].rsplit("/Q/", 1)[1]
    status, paid = http("POST", f"{psp_url}/v1/payments", {"code": code}, wallet)
    answered = time.perf_counter()
    assert status == 201, paid
    return answered


def latencies(
    till: Till, psp_url: str, key: str, wallet: str, amounts: list[int], *, empty: Path | None
) -> list[float]:
    found = []
    for amount in amounts:
        if empty is not None:
            shutil.rmtree(empty, ignore_errors=True)
        answered = sale(psp_url, key, wallet, amount)
        handed, _ = till.handed.get(timeout=30)
        found.append((handed - answered) * 1000)
    return found


def cache_sizes(folder: Path) -> dict[str, int]:
    """Bytes on disk of the warm-up's parts, per language."""
    sizes = {}
    for language in LANGUAGES:
        cache = PhraseCache(folder / language, Espeak(language))
        for text in warm_texts(language):
            cache.get(text)
        sizes[language] = cache.size_on_disk()
    return sizes


def measure(quick: bool) -> dict[str, Any]:
    payments = 10 if quick else 40
    rng = random.Random(21)  # noqa: S311 - the same amounts every run, no secret
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        db = root / "sound.db"

        async def setup() -> tuple[str, str, str, str]:
            storage = await asyncio.to_thread(SqliteStorage, str(db))
            merchant, key = await storage.create_merchant("Bench Shop")
            _, wallet = await storage.create_wallet("w", "EUR", 10**9)
            public = storage.signing_key.public.text
            await storage.close()
            return merchant.id, key, public, wallet

        merchant_id, key, public_key, wallet = asyncio.run(setup())
        broker = Mosquitto(root / "broker")
        broker.start()
        psp = PspProcess(db, mqtt=broker.url, extra=NO_RATE_LIMITS)
        config = TerminalConfig(
            mqtt=MqttTarget.parse(broker.url),
            merchant_id=merchant_id,
            terminal_id=LANE,
            display="noop",
            psp_public_keys=parse_public_keys(public_key),
            audio=f"wav:{root / 'sounds'}",
            sound_dir=str(root / "sound"),
        )
        till = Till(config)
        try:
            till.warm()
            sale(psp.url, key, wallet, 100)  # the connection is up and the path taken once
            till.handed.get(timeout=30)
            cache = root / "sound" / "cache"
            uncached = latencies(
                till,
                psp.url,
                key,
                wallet,
                [rng.randrange(100, 100_000) for _ in range(payments)],
                empty=cache,
            )
            till.warm()
            cached = latencies(
                till,
                psp.url,
                key,
                wallet,
                [rng.randrange(100, 10_000) for _ in range(payments)],
                empty=None,
            )
            warmed = PhraseCache(cache, Espeak("en")).size_on_disk()
        finally:
            till.close()
            psp.stop()
            broker.stop()
        sizes = cache_sizes(root / "sizes")
    return {
        "payments": payments,
        "uncached": summary(uncached),
        "cached": summary(cached),
        "cache_bytes_after_run_en": warmed,
        "warm_cache_bytes": sizes,
    }


def report(figures: dict[str, Any]) -> None:
    print(
        f"soundbox, wav output, {figures['payments']} payments each:"
        " the wallet has the PSP's answer -> first audio sample handed to the output"
    )
    for name in ("uncached", "cached"):
        f = figures[name]
        print(
            f"  {name:<9} p50 {f['p50_ms']:7.1f} ms  p99 {f['p99_ms']:7.1f} ms"
            f"  max {f['max_ms']:7.1f} ms   target p99 <= {TARGET_P99_MS:g}"
        )
    sizes = figures["warm_cache_bytes"]
    listed = ", ".join(f"{lang} {size / 1024:.0f} KiB" for lang, size in sizes.items())
    print(f"  warmed cache on disk per language (phrases, 0-99, currency names): {listed}")
    print(f"  en cache after the run: {figures['cache_bytes_after_run_en'] / 1024:.0f} KiB")


def main() -> int:
    return run_alone("sound", measure, report, "10 payments each instead of 40")


if __name__ == "__main__":
    raise SystemExit(main())
