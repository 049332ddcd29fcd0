"""One request to an app a test started on 127.0.0.1, as the integration tests make it."""

from __future__ import annotations

import http.client


def get_ok(port: int, path: str, timeout_s: float = 10) -> bytes:
    """GET path on 127.0.0.1:port; the body, after asserting a 200."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200, (path, response.status, body)
        return body
    finally:
        connection.close()
