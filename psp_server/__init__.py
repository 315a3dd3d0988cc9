"""The payment service provider: checkouts, one-time QR codes, wallet payments, events."""
