"""A keep-alive JSON client of one node's HTTP API, for integration tests and benchmarks."""

from __future__ import annotations

import http.client
import json
from typing import Any


class Http:
    """One keep-alive connection to ``addr`` (``host:port``); not for concurrent use.

    Args:
        addr: The node's HTTP address.
        timeout_s: Socket timeout of each request.
    """

    def __init__(self, addr: str, timeout_s: float = 30.0) -> None:
        host, _, port = addr.rpartition(":")
        self.addr = addr
        self._conn = http.client.HTTPConnection(host, int(port), timeout=timeout_s)

    def call(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """Send one request; return status, headers (lower-case names) and the parsed JSON
        body (or the text when the answer is not JSON).

        Raises:
            OSError, http.client.HTTPException: the node did not answer; the connection is
                closed and the next call opens a new one.
        """
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        sent = dict(headers or {})
        if data is not None and "Content-Type" not in sent:
            sent["Content-Type"] = "application/json"
        try:
            self._conn.request(method, path, body=data, headers=sent)
            resp = self._conn.getresponse()
        except (OSError, http.client.HTTPException):
            self._conn.close()
            raise
        payload = resp.read()
        got_headers = {k.lower(): v for k, v in resp.getheaders()}
        if resp.getheader("Connection", "").lower() == "close":
            self._conn.close()
        if "json" in got_headers.get("content-type", "") and payload:
            return resp.status, got_headers, json.loads(payload)
        return resp.status, got_headers, payload.decode(errors="replace")

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
