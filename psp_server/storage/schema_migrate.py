"""Brings a database's schema up to date with yoyo, on either backend."""

from __future__ import annotations

from importlib import resources


def apply_migrations(yoyo_url: str) -> None:
    """Applies what ``yoyo_url``'s database lacks of ``migrations/``, under
    yoyo's lock, so that processes starting together migrate once."""
    from yoyo import get_backend, read_migrations

    folder = resources.files("psp_server.storage") / "migrations"
    backend = get_backend(yoyo_url)
    try:
        migrations = read_migrations(str(folder))
        # Up to date, the common case: no lock. yoyo polls a taken lock every
        # half second, so workers starting together would queue behind it.
        if not backend.to_apply(migrations):
            return
        with backend.lock():
            backend.apply_migrations(backend.to_apply(migrations))
    finally:
        backend.connection.close()


def known_migrations() -> frozenset[str]:
    """The ids of the migrations this version of the PSP ships: a database
    that has applied them all has the schema it expects."""
    folder = resources.files("psp_server.storage") / "migrations"
    return frozenset(
        entry.name.removesuffix(".py")
        for entry in folder.iterdir()
        if entry.name.endswith(".py") and not entry.name.startswith("_")
    )
