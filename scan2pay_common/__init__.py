"""What every part of scan2pay shares: money, identifiers, MQTT topics and
payloads, and the log's format.

The PSP server, the terminal daemon and the cashier bridge all import this
package, and nothing in it imports them. It does no I/O (``logformat``
only points the log at stderr).
"""
