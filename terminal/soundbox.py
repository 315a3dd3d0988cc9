"""The soundbox: the terminal says each real payment at its till aloud, once.

- Only an event the PSP signed, checked with its key, of this merchant's
  checkout made for this terminal is said (``trust.announce_problem``). A
  ``checkout.paid`` or ``checkout.refunded`` that fails the check, on any
  topic, is never said: it is logged (escaped, bounded) and counted
  (``refused``). A static QR's payment at this till is such an event too.
- Each event is said at most once, whichever topic, redelivery, retained
  message or catch-up brings it, across restarts too (``SpokenRecord``).
- After every connection to the broker the terminal asks the PSP for the
  events it may have missed (``catch_up``). A payment made before the
  terminal was listening, or heard more than ``late_after`` seconds after
  it was made, is said as "Received earlier: …"; a payment older than
  ``speak_within`` is never said (a shop does not want last night's sales
  read out at opening) but handed, once, to whoever ``shows_earlier_with``
  named (the daemon: the idle screen's "Received earlier"); a refund that
  old is only logged.
- Everything that blocks (the record's fsync, espeak-ng, the WAV writer,
  aplay) runs in the soundbox's one thread, one announcement after the
  other, never in the event loop nor in the painter's thread: the display
  never waits for speech.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from hardware.audio import AudioOutput, Clip, parse_audio_spec
from hardware.errors import HardwareError
from scan2pay_common.errors import InvalidValue
from scan2pay_common.jsonfields import load_object
from scan2pay_common.logtext import loggable
from scan2pay_common.messages import CheckoutEvent
from scan2pay_common.timefmt import from_rfc3339

from .announce_text import CURRENCIES, WORDINGS, Kind, announcement, number_words
from .catch_up import credential, fetch_page
from .clock import Clock
from .config import TerminalConfig
from .screens import EarlierPayment
from .speech import Engine, Espeak, PhraseCache, Piper, Speaker, SpeechError
from .spoken import RecordError, SpokenRecord
from .trust import Identity, SignedEvent, announce_problem

log = logging.getLogger(__name__)

SAID = ("checkout.paid", "checkout.refunded")
MAX_PAGES = 20  # a catch-up reads at most this many pages; the next goes on
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Heard:
    """A verified event of this terminal, and how it came."""

    event: CheckoutEvent
    via: str
    at_ms: int  # when it was heard: its age is taken then, not when its turn comes
    # Made before the terminal was listening, and found by the catch-up.
    missed: bool = False


class Soundbox:
    """``on_clip``: called in the sound thread with each clip just before it
    is handed to the output (the benchmark's stopwatch)."""

    def __init__(
        self,
        config: TerminalConfig,
        identity: Identity,
        clock: Clock,
        *,
        on_clip: Callable[[Clip], None] | None = None,
    ) -> None:
        self.config = config
        self.identity = identity
        self.clock = clock
        self.on = parse_audio_spec(config.audio).kind != "null"
        self.refused = 0  # forged or unsigned events not said
        self.spoken = 0
        self._on_clip = on_clip
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sound")
        self._output: AudioOutput | None = None
        self._record: SpokenRecord | None = None
        self._speaker: Speaker | None = None
        self._pending: set[asyncio.Future[EarlierPayment | None]] = set()
        self._show_earlier: Callable[[EarlierPayment], None] | None = None
        self._catching_up = asyncio.Lock()
        sound_dir = Path(config.sound_dir)
        self.cache_dir = sound_dir / "cache"
        self.record_path = sound_dir / "spoken.sqlite3"

    # On the event loop.

    def consider(self, payload: bytes, event: CheckoutEvent, *, via: str) -> None:
        """An event of this terminal's, as received: said if real and new."""
        if not self.on:
            return
        problem = announce_problem(SignedEvent(payload, event), self.identity)
        if problem is not None:
            if event.type in SAID:
                self.refuse(f"a {event.type} event on {via}", problem)
            return
        self._submit(self._heard, Heard(event, via, self.clock.now_ms()))

    def shows_earlier_with(self, show: Callable[[EarlierPayment], None]) -> None:
        """``show`` is called on the event loop with each payment too old to
        say, once (its event claimed in the record, like one said)."""
        self._show_earlier = show

    def refuse(self, what: str, why: str) -> None:
        self.refused += 1
        log.warning(
            "not announced: %s: %s (%d refused so far)",
            loggable(what, 200),
            loggable(why, 200),
            self.refused,
        )

    async def catch_up(self, listening_since: int) -> None:
        """Asks the PSP for this terminal's events after the last one seen.
        ``listening_since``: when the broker had this session's
        subscriptions; an event made after that comes over MQTT too, and is
        not one the terminal missed."""
        psp_url, pairing_id, secret = (
            self.config.psp_url,
            self.config.pairing_id,
            self.config.device_secret,
        )
        if not self.on or psp_url is None or pairing_id is None or secret is None:
            return
        token = credential(pairing_id, secret)
        async with self._catching_up:
            try:
                after = await self._in_thread(lambda: self._open()[1].seq)
            except (HardwareError, SpeechError, RecordError, OSError) as exc:
                log.error("not catching up: %s", loggable(exc, 300))
                return
            for _ in range(MAX_PAGES):
                page = await asyncio.to_thread(fetch_page, psp_url, token, after)
                if page is None:
                    return
                for raw in page.events:
                    self._caught_up(raw, listening_since)
                if not page.events or page.next_after <= after:
                    return
                after = page.next_after

    def _caught_up(self, raw: bytes, listening_since: int) -> None:
        try:
            event = CheckoutEvent.from_dict(load_object(raw, what="event"))
        except InvalidValue as exc:
            log.warning("catching up: ignored an event: %s", loggable(exc.message))
            return
        problem = announce_problem(SignedEvent(raw, event), self.identity)
        if problem is not None:
            if event.type in SAID:
                self.refuse(f"a {event.type} event from the PSP's catch-up", problem)
            return
        missed = from_rfc3339(event.created_at) < listening_since
        heard = Heard(event, "the PSP's catch-up", self.clock.now_ms(), missed=missed)
        self._submit(self._heard, heard)

    async def idle(self) -> None:
        """Waits until everything submitted so far is done (for tests and the bench)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def warm(self) -> None:
        """Renders what is said often (the phrases, the numbers below a
        hundred, the currencies' names) in the sound thread, so that the
        first payments find them cached: one part at a time, so that an
        announcement waits for one part at most, never for the lot."""
        if not self.on:
            return
        for text in warm_texts(self.config.language):
            if not await self._in_thread(functools.partial(self._warm, text)):
                return

    async def close(self) -> None:
        await self.idle()
        await self._in_thread(self._close)
        self._thread.shutdown(wait=False)

    def _submit(self, work: Callable[[Heard], EarlierPayment | None], heard: Heard) -> None:
        future = asyncio.get_running_loop().run_in_executor(self._thread, work, heard)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        future.add_done_callback(self._shown)

    def _shown(self, done: asyncio.Future[EarlierPayment | None]) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        payment = done.result()
        if payment is not None and self._show_earlier is not None:
            self._show_earlier(payment)

    async def _in_thread(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    # In the sound thread.

    def _open(self) -> tuple[AudioOutput, SpokenRecord, Speaker]:
        if self._output is None:
            self._output = parse_audio_spec(self.config.audio).open()
        if self._record is None:
            self._record = SpokenRecord(self.record_path)
        if self._speaker is None:
            cache = PhraseCache(self.cache_dir, engine_of(self.config))
            self._speaker = Speaker(cache, volume=self.config.volume, chime=self.config.chime)
        return self._output, self._record, self._speaker

    def _heard(self, heard: Heard) -> EarlierPayment | None:
        try:
            return self._say(heard)
        # Not only the sound's own errors: nothing that goes wrong in saying
        # one payment may go unlogged, or keep the next from being said.
        except Exception as exc:  # noqa: BLE001 - logged; the next announcement goes on
            log.error("announcement of %s failed: %s", heard.event.event_id, loggable(exc, 300))
            return None

    def _say(self, heard: Heard) -> EarlierPayment | None:
        """Says the payment or refund; a payment too old to say is returned,
        to be shown instead."""
        output, record, speaker = self._open()
        event = heard.event
        record.advance(event.seq)
        if event.type not in SAID:
            return None
        checkout = event.checkout
        now = self.clock.now_ms()
        made_at = from_rfc3339(event.created_at)
        age_ms = heard.at_ms - made_at
        amount = checkout.amount
        if event.type == "checkout.refunded":
            amount = checkout.refunded_amount - record.refunded_before(checkout.id, event.event_id)
        if not record.claim(event.event_id, checkout.id, checkout.refunded_amount, now):
            log.debug("%s was announced already (again via %s)", event.event_id, heard.via)
            return None
        if age_ms > self.config.speak_within * 1000:
            paid = event.type == "checkout.paid"
            log.info(
                "%s of %s, %d s ago, is too old to announce: %s",
                event.type,
                checkout.id,
                age_ms // 1000,
                "shown, not said" if paid else "not said",
            )
            if not paid:
                return None
            return EarlierPayment(checkout.id, amount, checkout.currency, max(0, made_at))
        if amount <= 0:
            return None  # a refund event that adds nothing to what was said
        late = heard.missed or age_ms > self.config.late_after * 1000
        kind: Kind = "refunded" if event.type == "checkout.refunded" else "received"
        if kind == "received" and late:
            kind = "received_late"
        said = announcement(kind, amount, checkout.currency, self.config.language)
        clip = speaker.clip(said)
        if self._on_clip is not None:
            self._on_clip(clip)
        output.play(clip)
        self.spoken += 1
        log.info("announced %s of %s via %s: %s", event.type, checkout.id, heard.via, said.text)
        return None

    def _warm(self, text: str) -> bool:
        try:
            self._open()[2].cache.get(text)
        except (HardwareError, SpeechError, RecordError, OSError) as exc:
            log.error("the sound is not ready: %s", loggable(exc, 300))
            return False
        return True

    def _close(self) -> None:
        if self._output is not None:
            self._output.close()
        if self._record is not None:
            self._record.close()


def warm_texts(language: str) -> list[str]:
    wording = WORDINGS[language]
    texts = [*wording.before.values(), *wording.after.values()]
    for units in CURRENCIES.values():
        major, minor = units[language]
        texts += [major.one, major.many] + ([minor.one, minor.many] if minor else [])
    return texts + [number_words(n, language) for n in range(100)]


def engine_of(config: TerminalConfig) -> Engine:
    """``speech``: ``espeak-ng`` (the default) or ``piper:MODEL``."""
    kind, _, model = config.speech.partition(":")
    if kind == "piper":
        return Piper(model)
    return Espeak(config.language, volume=config.volume)
