"""The storefront page: three static files served by the BentoML service at ``/ui``.

``ui_app`` is mounted on :class:`shoprec.serving.service.Shoprec` with
``@bentoml.asgi_app(ui_app, path="/ui")``, so the page and the API share one origin and
the page calls ``/search``, ``/recommend``... with plain ``fetch`` (no CORS, no proxy).
There is no front-end build and nothing is fetched from the internet: ``index.html``,
``app.js`` and ``style.css`` sit next to this module and ship in the wheel as package data.

Only those three names are served (not the folder: it also holds this module and its
bytecode). The page loads its script and style by relative URL, so it must be opened as
``/ui/``; the service's router already redirects ``/ui`` there (Starlette's
``redirect_slashes``).
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

HERE = Path(__file__).resolve().parent
FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
         "style.css": "text/css; charset=utf-8"}
# The files change with the package version, not per request; revalidate so an upgrade shows at once.
HEADERS = {"Cache-Control": "no-cache"}


async def _serve(request: Request) -> Response:
    """``index.html`` at the mount's root, the named file otherwise (404 unless one of FILES)."""
    name = request.path_params.get("name", "index.html")
    if name not in FILES:
        return Response(f"not found: {name}; the storefront serves {', '.join(FILES)}", status_code=404)
    return FileResponse(HERE / name, media_type=FILES[name], headers=HEADERS)


ui_app = Starlette(routes=[Route("/", _serve), Route("/{name}", _serve)])

__all__ = ["ui_app"]
