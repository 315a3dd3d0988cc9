"""The pages people open in a browser: the QR landing page with its demo
wallet, the page that takes a payment code as text (``/pay``), and the
merchant's live board. They are served by the PSP itself,
with their scripts and styles from ``static/`` (no CDN, no web font: the
pages work offline), under a Content-Security-Policy that allows nothing
from elsewhere (``abuse.CONTENT_SECURITY_POLICY``)."""
