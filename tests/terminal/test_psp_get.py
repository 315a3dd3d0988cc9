"""terminal.psp_get: one GET of a JSON object from a real HTTP server on a
loopback port, and each way of getting none, said once and escaped."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from terminal.psp_get import NoAnswer, get_json_object

ANSWERS = {
    "/object": (200, b'{"seen": "AUTH"}'),
    "/list": (200, b"[1, 2]"),
    "/missing": (404, b'{"error": {"code": "not_found"}}'),
    "/hostile": (200, b"\x1b[31m not json"),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = ANSWERS[self.path]
        body = body.replace(b"AUTH", (self.headers.get("Authorization") or "").encode())
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def psp() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _get(url: str, headers: dict[str, str] | None = None) -> dict[str, object]:
    return get_json_object(url, what="answer", timeout=5, max_bytes=1024, headers=headers)


def test_the_object_comes_back_with_the_headers_sent(psp: str) -> None:
    assert _get(f"{psp}/object", {"Authorization": "Bearer a:b"}) == {"seen": "Bearer a:b"}


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("/list", "the PSP's answer is not JSON: answer must be a JSON object"),
        ("/missing", "the PSP answered 404"),
        ("/hostile", "the PSP's answer is not JSON: "),
    ],
)
def test_an_answer_that_is_no_object_is_no_answer(psp: str, path: str, said: str) -> None:
    with pytest.raises(NoAnswer) as caught:
        _get(f"{psp}{path}")
    assert str(caught.value).startswith(said)
    assert str(caught.value).isprintable()


def test_only_http_is_asked_and_a_url_urllib_refuses_is_no_answer(psp: str) -> None:
    with pytest.raises(NoAnswer, match=r"^the URL is not http\(s\)$"):
        _get("file:///etc/passwd")
    with pytest.raises(NoAnswer, match=r"^the URL cannot be asked: "):
        _get(f"{psp}/object\x00\x1b[31m")


def test_a_psp_not_listening_is_unreachable() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    port = server.server_address[1]
    server.server_close()
    with pytest.raises(NoAnswer, match=r"^the PSP is unreachable: "):
        _get(f"http://127.0.0.1:{port}/object")
