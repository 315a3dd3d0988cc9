"""The PSP as a running process: the ``psp-server`` command (``cli``), its
settings from flags, environment and defaults (``config``), the HTTP
server on its socket (``server``), ``--workers N`` under a supervisor
(``workers``) and the log handler (``logs``)."""

from psp_server.runtime.config import Rate, Settings, with_default_public_url

__all__ = ["Rate", "Settings", "with_default_public_url"]
