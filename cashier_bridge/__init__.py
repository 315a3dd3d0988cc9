"""The cashier PC's side: a CLI and a local HTTP API that start a checkout at
the PSP, put its QR on a terminal over MQTT, and report how it ended."""
