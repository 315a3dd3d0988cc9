"""Pairing a terminal with the code it shows, in the manner of a card
terminal's registration code (docs/pairing.md): the terminal starts a
pairing, the merchant approves its code on the board or with ``psp-server
terminal approve``, and the terminal collects its settings, once, with the
device secret it started with.

- ``store``: the pairings and paired terminals in the PSP's database;
- ``service``: approving and unpairing, with the broker's accounts;
- ``broker``: the broker's side of that (accounts, reload);
- ``api``: the terminal's two endpoints; ``cli``: ``psp-server terminal
  approve|revoke``. The board's pages are in ``psp_server.web``.
"""
