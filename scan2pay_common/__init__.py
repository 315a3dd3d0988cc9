"""What every part of scan2pay shares: money, identifiers, MQTT topics and payloads.

The PSP server, the terminal daemon and the cashier bridge all import this
package, and nothing in it imports them. It does no I/O.
"""
