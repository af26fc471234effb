"""https:// through a TLS terminator whose certificate a private CA signed (docs/security.md).

The CA and the server certificate (for 127.0.0.1) are made by ``openssl`` in the test's folder;
the fake API server is wrapped in TLS on loopback.
"""

from __future__ import annotations

import io
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dqueue import cli
from dqueue.client import Client, RetryPolicy, Unavailable
from tests.unit.client.fakes import FakeHttpServer


def openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[FakeHttpServer, Path]]:
    if shutil.which("openssl") is None:
        pytest.fail("the TLS test needs the openssl command")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
            "/CN=dqueue test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=tmp_path)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
            "node.key", "-out", "node.csr", cwd=tmp_path)
    (tmp_path / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "1", "-extfile", "san.cnf", "-out", "node.pem",
            cwd=tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "node.pem", tmp_path / "node.key")
    server = FakeHttpServer()
    server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
    with server:
        yield server, tmp_path / "ca.pem"


def test_https_with_the_private_ca_and_refused_without_it(tls_server):
    server, ca = tls_server
    url = server.url.replace("http://", "https://")
    with Client(url, ca_file=str(ca)) as client:
        assert "tasks" in client.stats()
    with Client(url, retry=RetryPolicy(deadline_s=0.2)) as client, pytest.raises(Unavailable,
                                                                                match="SSL"):
        client.stats()  # the system's CAs do not know the private one
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["--server", url, "--ca-file", str(ca), "stats"], out=out, err=err) == 0, (
        err.getvalue())
