"""The web dashboard: its static files at ``/ui`` and its chart samples at ``/stats/history``.

The files (``dqueue/api/ui/static/``) are read once, at app creation, into a fixed table: a
request names one of them or gets a 404, so no path of the request ever reaches the file
system. They are served by a Falcon sink, which the auth middleware lets through without a
token (they hold no data: the page asks for a token when the API answers 401 and sends it
with every call it makes). Protected mode still refuses non-loopback clients.
``/stats/history`` is an ordinary route with the ``read`` role (``dqueue.api.auth``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import falcon

from dqueue.api.deps import send_json
from dqueue.api.ui_samples import Reader, Sampler

STATIC_DIR = Path(__file__).parent / "ui" / "static"
CONTENT_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
# The sink's paths: "/ui", "/ui/" and "/ui/<one name>" ("/" is the SQS API's).
SINK_PATTERN = r"/ui(?:/[^/]*)?$"
HISTORY_ROUTE = "/stats/history"
# Scripts, styles and API calls from this origin only; no frames, no inline code, no forms.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


@dataclass(frozen=True)
class StaticFile:
    """One file of the dashboard, held in memory."""

    data: bytes
    content_type: str
    etag: str


def load_files(directory: Path = STATIC_DIR) -> dict[str, StaticFile]:
    """Read every file of ``CONTENT_TYPES`` from ``directory``.

    Raises:
        FileNotFoundError: a file is missing (a broken install: the API refuses to start).
    """
    files = {}
    for name, content_type in CONTENT_TYPES.items():
        data = (directory / name).read_bytes()
        files[name] = StaticFile(data, content_type, '"' + hashlib.sha256(data).hexdigest()[:32]
                                 + '"')
    return files


class UiSink:
    """Serves ``GET``/``HEAD`` of the dashboard; ``/ui`` redirects to ``/ui/``.

    Args:
        files: the table of ``load_files``.
        on_view: called when the page itself is served (starts the sampler).
    """

    def __init__(self, files: dict[str, StaticFile], on_view: Callable[[], None]) -> None:
        self._files = files
        self._on_view = on_view

    def __call__(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        if req.method not in ("GET", "HEAD"):
            raise falcon.HTTPMethodNotAllowed(["GET", "HEAD"])
        path = req.path
        if path == "/ui":
            raise falcon.HTTPFound("/ui/")
        name = path.removeprefix("/ui/") or "index.html"
        file = self._files.get(name)
        if file is None:
            raise falcon.HTTPNotFound(description=f"no dashboard file {name!r}")
        if name == "index.html":
            self._on_view()
        resp.set_header("Cache-Control", "no-cache")  # revalidate: an upgrade shows at once
        resp.set_header("ETag", file.etag)
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Referrer-Policy", "no-referrer")
        resp.set_header("Content-Security-Policy", CSP)
        if _not_modified(req.get_header("If-None-Match"), file.etag):
            resp.status = falcon.HTTP_304
            resp.content_type = None  # no body, no type (RFC 9110, 15.4.5)
            return
        resp.status = falcon.HTTP_200
        resp.content_type = file.content_type
        resp.data = file.data


def _not_modified(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak or strong) or is ``*``."""
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in tags or "*" in tags


class History:
    """``GET /stats/history``: the dashboard's samples of the last 15 minutes
    (``dqueue.api.ui_samples``)."""

    def __init__(self, sampler: Sampler) -> None:
        self._sampler = sampler

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._sampler.ensure_started()
        send_json(resp, falcon.HTTP_200, self._sampler.ring.snapshot())


def register(app: falcon.App, read: Reader) -> Sampler:
    """Add the dashboard's sink and history route to ``app``; returns the (idle) sampler."""
    sampler = Sampler(read)
    app.add_sink(UiSink(load_files(), sampler.ensure_started), SINK_PATTERN)
    app.add_route(HISTORY_ROUTE, History(sampler))
    return sampler
