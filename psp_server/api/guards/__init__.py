"""What stands between the network and the handlers: rate limits, slow
bodies and security headers (``abuse``, on ``rate_limiter``'s token
buckets, kept in ``bucket_table``, one table that the workers share), the
deadline for a request's headers (``header_deadline``), and the access log
that records each request by its route, never by what the client sent
(``access_log``)."""
