"""The checkout terminal daemon: shows what the cashier sends over MQTT."""
