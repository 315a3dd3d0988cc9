"""The work that follows a commit: the relay publishes the events written
with each change over MQTT, in each merchant's order (``relay``), the
sweeper expires lapsed checkouts and forgets old idempotency keys
(``sweeper``), and the wake signal tells every listener that events
were written (``wake``). Which merchants' outbox work a process does
is the storage backend's to say (``storage.partitions``)."""

from psp_server.outbox.relay import OutboxRelay
from psp_server.outbox.sweeper import sweep_forever
from psp_server.outbox.wake import WakeEvent

__all__ = ["OutboxRelay", "WakeEvent", "sweep_forever"]
