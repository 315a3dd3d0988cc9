"""Merchant webhooks: every event of a merchant POSTed, signed, to the
merchant's endpoints, retried with backoff for at least a day
(docs/webhooks.md)."""

from psp_server.webhooks.signing import HEADER, sign, verify

__all__ = ["HEADER", "sign", "verify"]
