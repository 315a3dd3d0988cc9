"""The PSP's side of the broker: which terminals are online, from their
retained states, for the merchant's board (``presence``), and the
mosquitto accounts and ACL blocks of the PSP, the cashiers and the
terminals (``accounts``)."""

from psp_server.mqtt.accounts import AccountError, terminal_username
from psp_server.mqtt.presence import Presence, TerminalSeen

__all__ = ["AccountError", "Presence", "TerminalSeen", "terminal_username"]
