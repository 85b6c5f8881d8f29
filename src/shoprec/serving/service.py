"""The BentoML service: ``/recommend``, ``/search``, ``/assist``, ``/similar``, ``/feedback`` (+ ``/user``, ``/users``).

Started by ``shoprec serve`` (or ``bentoml serve shoprec.serving.service:Shoprec``). The
model is a BentoML model-store entry written by the package stage (a serving bundle,
see :mod:`shoprec.serving.bundle`), declared at class level so that ``bentoml build``
packages it. Which one: ``$SHOPREC_MODEL`` (default ``shoprec:latest``).

Refusing to start half-broken: the bundle is verified (every file present, sha256 as
its manifest says) when this module is imported, which ``bentoml serve`` does before it
starts any worker, so a missing or corrupted model ends the command with a message
instead of a server that restarts failing workers forever.

Bad input never gets a 500: request bodies are validated by pydantic (400 with the field
and the rule), oversize bodies are cut off by :class:`BodyLimit` (413), an unknown item
is a 404, and an unknown user is a cold-start answer. Every 4xx is one JSON object
``{"error"[, "detail"]}`` (:class:`OneErrorShape`).

Experiments: with ``$SHOPREC_EXPERIMENT`` set (``shoprec serve`` sets it from
``serving.experiment``), the challenger's bundle is verified at import beside the champion's,
each worker loads both, and each /recommend, /search and /similar is answered by the model of
the shopper's arm (:mod:`shoprec.serving.experiment`).

Real-time: /recommend computes the list from the shopper's history as of now (training events,
the store's events since the cut-off, the request's ``recent_items``) on the worker's event loop,
the lists waiting computed together in one pass (:mod:`shoprec.serving.realtime`), after a read of
the store and of the list cache the workers share (a list nothing has changed since is answered
from there); when the scoring queue cannot meet
``serving.realtime.deadline_ms``, past it, or on any error, it answers the precomputed list and
counts it in ``/metrics`` (``shoprec_recommend_fallback_total{reason}``; cache hits and misses:
``shoprec_recommend_list_cache_total{result}``). ``shoprec serve`` reads ``serving.realtime`` from
the working ``params.yaml`` (``$SHOPREC_REALTIME``), like the experiment.

Impressions: every /recommend, /search and /similar answer carries a ``request_id`` and a
``variant`` (its arm) and is logged as an impression by the worker's
:class:`~shoprec.serving.impressions.ImpressionLog` (queued on the request's path, committed
in groups by a background thread; ``serving.impressions``, or ``$SHOPREC_IMPRESSIONS`` 0/1 set by
``shoprec serve --[no-]impressions``, turns the logging off). ``/metrics`` counts answers sent,
impressions stored and unattributed feedback events.

Speed (figures from ``bench/bench_load.py`` in the README): /similar, /user, /users and a
precomputed /recommend do microseconds of work, so they are coroutines (no thread hop) and answer
pydantic models (:mod:`shoprec.serving.schemas`), and uvicorn runs on uvloop + httptools;
what is left per request is BentoML's own path. /search runs on the event loop too,
after a query that is not in the encoding cache has been encoded by the worker's encoder
thread; /feedback runs in BentoML's thread pool (``serving.threads``). Concurrent calls
share one MiniLM batch, or one validation + commit (:mod:`shoprec.serving.batching`). Each worker
warms up (the query encoder, Great Expectations) before it reports ready, then freezes its
loaded objects out of the garbage collector, whose full passes over them were the p99.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import logging
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import bentoml
import bentoml._internal.server.http.instruments as bentoml_metrics
from bentoml._internal.server.http.instruments import RunnerTrafficMetricsMiddleware
from bentoml.exceptions import BentoMLException, InvalidArgument, NotFound, ServiceUnavailable
from pydantic import Field, ValidationError

from shoprec.serving.batching import BackgroundBatcher, Coalescer
from shoprec.config import load_params
from shoprec.serving.feedback import MAX_ID_CHARS
from shoprec.experiments.assignment import CHALLENGER, CHAMPION
from shoprec.serving.experiment import Arm, Arms, from_env
from shoprec.serving.impressions import ImpressionLog, new_request_id
from shoprec.serving.model import BundleError, ServingModel, UnknownItem, verify
from shoprec.serving.process import die_with_parent
from shoprec.serving.cores import share_cores
from shoprec.serving.realtime import BadRecentItems, ScoringQueue, settings
from shoprec.serving.schemas import (
    Assistance,
    FeedbackReceipt,
    Recommendations,
    SearchResults,
    Shopper,
    Shoppers,
    SimilarItems,
)
from shoprec.serving.store import Impression, StoreError
from shoprec.serving.ui import ui_app

MAX_ENCODE_BATCH = 64  # queries per MiniLM call: larger batches gain little and pad to the longest query
MODEL_TAG = os.environ.get("SHOPREC_MODEL", "shoprec:latest")
FEEDBACK_DB = os.environ.get("SHOPREC_FEEDBACK_DB")  # a file or URL; default: params serving.feedback_db
API_DESCRIPTION = ("shoprec: recommendations (/recommend, /similar), hybrid search (/search, with a help card for "
                   "customer-service questions), a help desk (/assist) and shopper feedback "
                   "(/feedback) from one packaged model. Every POST body is JSON; every 4xx is one object "
                   "{\"error\"[, \"detail\"]}. The storefront is at /ui/.")
LOG = logging.getLogger("bentoml.shoprec")  # under BentoML's logger: its handler and level apply in the workers


def _stored(tag: str, what: str = "model", fix: str = "run `dvc repro` (package stage) first"):
    """The model-store entry of ``tag``, its bundle verified; exits the process with the reason otherwise."""
    try:
        stored = bentoml.models.BentoModel(tag).stored
    except (ValueError, BentoMLException) as exc:  # not a tag at all ("a b", "x:y:z")
        raise SystemExit(f"shoprec: refusing to start: {what} {tag!r} is not a model tag ({exc}); {fix}") from None
    if stored is None:
        raise SystemExit(f"shoprec: refusing to start: {what} {tag!r} is not in the BentoML model store "
                         f"({os.environ.get('BENTOML_HOME', '~/bentoml')}); {fix}")
    try:
        verify(Path(stored.path))
    except BundleError as exc:
        raise SystemExit(f"shoprec: refusing to start: {what} {stored.tag}: {exc}") from exc
    return stored


BUNDLE_PARAMS = load_params(Path(_stored(MODEL_TAG).path) / "params.yaml")
SETTINGS = BUNDLE_PARAMS.serving
REALTIME = settings(BUNDLE_PARAMS)
EXPERIMENT = from_env()
CHALLENGER_MODEL = _stored(
    EXPERIMENT.challenger, "serving.experiment.challenger",
    "name a tag `shoprec package` printed, e.g. `shoprec package --system popularity`, or "
    "`bentoml models list shoprec`") if EXPERIMENT.name else None
WORKERS = int(os.environ.get("SHOPREC_WORKERS", SETTINGS.workers))
LOG_IMPRESSIONS = os.environ.get("SHOPREC_IMPRESSIONS", str(int(SETTINGS.impressions))) == "1"


def _load_model(stored) -> ServingModel:
    """A model-store entry's bundle, its ``auto`` serving clock placed by when it entered the store."""
    return ServingModel.load(Path(stored.path), version=str(stored.tag), packaged_at=stored.creation_time,
                             realtime=REALTIME)


class BoundedBody:
    """ASGI middleware: a POST body is read whole, within a size and a time bound, before any handler runs.

    The size is taken from ``Content-Length``: over ``max_bytes`` gets 413 before a byte
    is read, and a POST without one (a chunked body, whose size is only known after
    reading it all) gets 411, so no body is ever read unbounded. A body that has not
    arrived whole ``timeout`` seconds after the headers (fewer bytes than announced, the
    connection left open) gets 400 instead of holding a worker slot until the request timeout; a
    client that hangs up mid-body is logged as one line, not as a server error.
    """

    def __init__(self, app, max_bytes: int, timeout: float) -> None:
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is None:
            return await _reject(send, 411, "send the body with a Content-Length header")
        if not length.isdigit() or int(length) > self.max_bytes:
            return await _reject(send, 413, f"request body of {length.decode(errors='replace')} bytes is over "
                                            f"the limit of {self.max_bytes} (serving.max_body_bytes); "
                                            "send fewer events per request")
        body, expected = bytearray(), int(length)
        try:
            async with asyncio.timeout(self.timeout):  # one deadline for the whole body; no task per read
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        LOG.info("Client gone on %s [POST]: disconnected after %d of %d body bytes",
                                 scope["path"], len(body), expected)
                        return None
                    body += message.get("body", b"")
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            return await _reject(send, 400, f"request body truncated: {len(body)} of the {expected} bytes "
                                            f"announced by Content-Length arrived within {self.timeout:g} s")
        return await self.app(scope, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive):
    """An ASGI ``receive`` that hands over ``body`` in one message, then listens to the connection."""
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class JsonBodiesOnly:
    """ASGI middleware: a POST must say its body is JSON, or it gets 415 before anything reads it.

    A ``text/plain`` (or form) POST is a "simple" request that browsers send cross-site
    without a CORS preflight, so without this check any web page a shopper visits could
    write events into /feedback, and so into the training data. A JSON POST from another
    origin needs a preflight, which this service does not answer (no CORS headers): only
    pages served from the service's own origin (the storefront at /ui) can call it.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            kind = dict(scope.get("headers") or []).get(b"content-type", b"").split(b";")[0].strip().lower()
            if kind != b"application/json":
                return await _reject(send, 415, f"send the body as JSON with Content-Type: application/json "
                                                f"(got {kind.decode(errors='replace') or 'none'})")
        return await self.app(scope, receive, send)


class LocalDocsPage:
    """ASGI middleware: the API docs at ``/`` from this server's own files only.

    BentoML's Swagger page embeds a Google Tag Manager script, Swagger UI sends the spec
    to validator.swagger.io for its badge, and the spec's description (BentoML's default
    README, outside a built bento) shows badges from img.shields.io: opening the docs of
    a shop's internal service would call three third parties. This page loads the same
    Swagger UI from BentoML's bundled ``/static_content`` with the validator off, and
    ``/docs.json`` describes the service in words only.
    """

    def __init__(self, app) -> None:
        self.app = app
        self.page = (Path(__file__).parent / "ui" / "docs.html").read_bytes()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        if scope["path"] == "/":
            return await _answer(send, 200, self.page, b"text/html; charset=utf-8", scope["method"] == "HEAD")
        if scope["path"] != "/docs.json":
            return await self.app(scope, receive, send)
        spec: dict = {}

        async def describe(message) -> None:
            if message["type"] == "http.response.start":
                spec.update(start=message, body=b"")
                return
            spec["body"] += message.get("body", b"")
            if message.get("more_body"):
                return
            if spec["start"]["status"] != 200:
                await send(spec["start"])
                return await send({"type": "http.response.body", "body": spec["body"]})
            document = json.loads(spec["body"])
            document.setdefault("info", {})["description"] = API_DESCRIPTION
            await _answer(send, 200, json.dumps(document).encode(), b"application/json", scope["method"] == "HEAD")

        return await self.app(scope, receive, describe)


async def _answer(send, status: int, body: bytes, kind: bytes, head: bool = False) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": b"" if head else body})


class OneErrorShape:
    """ASGI middleware: every 4xx answer is one JSON object, ``{"error": message}`` plus
    ``"detail"`` (pydantic's list of field errors) where the request failed validation.

    BentoML writes an exception raised in an API (our 400s with a rule and an example,
    the 404 of an unknown item) as a one-element list ``[{"error": ...}]``, and a request
    that fails validation as an object; a client should have to parse one shape. Only
    4xx bodies are held back and rewritten; every other answer streams through untouched.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        held: dict = {}

        async def rewrite(message) -> None:
            if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
                held.update(start=message, body=b"")
                return
            if "start" not in held:
                return await send(message)
            held["body"] += message.get("body", b"")
            if message.get("more_body"):
                return
            body = _one_error(held["body"])
            headers = [(k, v) for k, v in held["start"].get("headers", []) if k.lower() != b"content-length"]
            await send({**held["start"], "headers": headers + [(b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        return await self.app(scope, receive, rewrite)


def _one_error(body: bytes) -> bytes:
    """``[{"error": m}]`` -> ``{"error": m}``; any other body as it was."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict) and "error" in data[0]:
        return json.dumps(data[0]).encode()
    return body


async def _reject(send, status: int, message: str) -> None:
    await _answer(send, status, json.dumps({"error": message}).encode(), b"application/json")


class RouteLabelledMetrics(RunnerTrafficMetricsMiddleware):
    """BentoML's request metrics, labelled by route rather than by the raw URL path.

    BentoML labels its request counters and latency histograms with ``scope["path"]``,
    so every distinct unknown URL a scanner tries adds a score of series, kept on disk
    (multiprocess mode) and sent in every scrape. Here the label is the route that
    answered: an API route, a fixed page, a mounted app's prefix (``/ui``,
    ``/static_content``), or ``"(unknown)"`` for everything else. The real path is put
    back for the app inside; only the metrics see the label.
    """

    def __init__(self, app, *args, **kwargs) -> None:
        super().__init__(_RealPath(app), *args, **kwargs)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or (label := route_label(scope["path"])) == scope["path"]:
            return await super().__call__(scope, receive, send)  # an exact route (every API call): as it came
        return await super().__call__({**scope, "path": label, REAL_PATH: scope["path"]}, receive, send)


class _RealPath:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if REAL_PATH in scope:
            scope = {**scope, "path": scope[REAL_PATH]}
        return await self.app(scope, receive, send)


def route_label(path: str) -> str:
    """The metrics label of a request path: its route, or ``(unknown)``."""
    if path in ROUTES:
        return path
    prefix = next((p for p in MOUNTS if path == p or path.startswith(p + "/")), None)
    return prefix or UNKNOWN_ROUTE


def _stop_server(reason: str) -> None:
    """Stop the whole server: a worker whose model does not load would otherwise be
    restarted by BentoML's process manager (the parent of every worker) forever, and the
    other workers would keep answering from a server that cannot recover."""
    import psutil

    from shoprec.serving.process import REFUSAL_ENV

    LOG.critical(reason)
    try:
        if os.environ.get(REFUSAL_ENV):  # `shoprec serve` exits with 1 and this reason
            Path(os.environ[REFUSAL_ENV]).write_text(reason + "\n")
    finally:
        parent = psutil.Process(os.getppid())
        if any("bentoml" in part or "circus" in part for part in parent.cmdline()):  # not a test runner's shell
            parent.send_signal(signal.SIGTERM)


class ClientErrorsAreNotServerErrors(logging.Filter):
    """BentoML logs every exception of an endpoint at ERROR with its traceback, a 404 for an
    unknown item and a body that fails pydantic's validation included; a client's mistake
    is one INFO line (the status and what was wrong, without the client's input)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, BentoMLException) and error.error_code < 500:
            said = f"{int(error.error_code)} {error}"
        elif isinstance(error, ValidationError):
            said = "400 " + "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()[:3])
        else:
            return True
        record.levelno, record.levelname = logging.INFO, "INFO"
        message = record.getMessage().replace("Exception on", "Client error on")
        record.msg, record.args = f"{message}: {said}", ()  # no %-formatting of user text
        record.exc_info = None
        return True


logging.getLogger("bentoml._internal.server.http_app").addFilter(ClientErrorsAreNotServerErrors())

# BentoML opens an OpenTelemetry span per request even when nothing exports it (a large share of
# /recommend's CPU, docs/serving.md); unless serving.tracing is on (and an exporter is set in
# BentoML's configuration), the API routes skip it. Its access log (a formatted line per request on
# stderr, a tenth of the event loop's CPU under load) is off unless serving.access_log is on: every
# answer is already an impression with its request id, and /metrics counts requests by status.
API_ROUTES = ("/recommend", "/search", "/assist", "/similar", "/feedback", "/user", "/users")
UNTRACED = [rf"{route}(\?|$)" for route in API_ROUTES]  # OpenTelemetry searches these in the whole URL

# The metrics label of every request (RouteLabelledMetrics): BentoML's own pages and probes, ours, mounted apps.
ROUTES = frozenset((*API_ROUTES, "/", "/docs.json", "/schema.json", "/metrics", "/livez", "/readyz", "/healthz"))
MOUNTS = ("/ui", "/static_content")
UNKNOWN_ROUTE = "(unknown)"
REAL_PATH = "shoprec.real_path"
bentoml_metrics.RunnerTrafficMetricsMiddleware = RouteLabelledMetrics  # what BentoML's app factory instantiates

K = Annotated[int, Field(ge=1, le=100, description="number of items, 1..100")]
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS, description=f"1..{MAX_ID_CHARS} characters")]
Query = Annotated[str, Field(max_length=SETTINGS.max_query_chars,
                             description=f"what the shopper typed, at most {SETTINGS.max_query_chars} characters")]
RecentItems = Annotated[tuple[Id, ...], Field(max_length=REALTIME.max_recent_items, description=(
    "item ids the shopper is looking at now (an anonymous session, the page they are on), most recent last; "
    f"at most serving.realtime.max_recent_items ({REALTIME.max_recent_items})"))]
Weight = Annotated[float, Field(ge=0.0, le=1.0, description="MMR diversity weight, 0..1")]


@bentoml.asgi_app(ui_app, path="/ui")
@bentoml.service(name="shoprec", workers=WORKERS, threads=SETTINGS.threads, traffic={"timeout": 30},
                 tracing={} if SETTINGS.tracing else {"excluded_urls": UNTRACED},
                 logging={"access": {"enabled": SETTINGS.access_log}})
class Shoprec:
    bundle = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        die_with_parent()
        try:
            self._load()
        except StoreError as exc:
            _stop_server(f"shoprec: refusing to serve: {exc}")
            raise
        except Exception as exc:
            _stop_server(f"shoprec: refusing to serve: model {self.bundle.tag} does not load in a worker: {exc}")
            raise

    def _load(self) -> None:
        import prometheus_client  # here, in the worker: BentoML sets up its multiprocess mode before this runs

        from shoprec.serving.feedback import warm_up as warm_up_feedback
        from shoprec.serving.store import open_store

        store = self.store = open_store(FEEDBACK_DB or SETTINGS.feedback_db)
        store.check()  # thorough: a corrupt, unwritable or unreachable store stops the server now, not at an event
        self.unattributed = prometheus_client.Counter(
            "shoprec_feedback_unattributed", "feedback events stored whose request_id names no logged answer")
        self.impressions = ImpressionLog(
            store, prometheus_client.Counter("shoprec_answers_sent", "answers whose impression was logged"),
            prometheus_client.Counter("shoprec_impressions_stored", "impressions committed to the store"),
        ) if LOG_IMPRESSIONS else None
        share_cores(WORKERS)
        self.model = _load_model(self.bundle)
        self.scoring = ScoringQueue()
        self.lookups = ThreadPoolExecutor(1, thread_name_prefix="realtime-lookup")  # a remote store's reads
        self.fallbacks = prometheus_client.Counter(
            "shoprec_recommend_fallback", "/recommend answers from the precomputed list instead of the real-time "
            "one, by reason: busy (the scoring queue could not meet the deadline), deadline "
            "(serving.realtime.deadline_ms) or error", ["reason"])
        self.list_cache = prometheus_client.Counter(
            "shoprec_recommend_list_cache", "real-time /recommend answers by list cache result: hit (a list computed "
            "before, which nothing since has changed) or miss (computed for this request)", ["result"])
        self.arms = self._arms()
        serving = self.model.params.serving
        known_items = set().union(*(model.item_index for model in self.arms.models()))
        # Concurrent /feedback calls share one validation and one durable commit.
        self.store_feedback = Coalescer(lambda requests: store.append_events(requests, known_items),
                                        max_batch=serving.max_feedback_events, size=len)
        for model in self.arms.models():
            model.warm_up()
        warm_up_feedback(known_items)
        # The loaded model is ~10^6 long-lived objects; without this every full collection
        # walks them all (a 250-300 ms pause every ~1.5 s under load: the p99).
        gc.collect()
        gc.freeze()

    def _arms(self) -> Arms:
        """The champion (this bundle) and, in an experiment, the challenger: the same loaded model
        when both name it (an A/A test), each with its own query encoder thread otherwise."""
        def arm(variant: str, model: ServingModel) -> Arm:
            engine = model.engine
            return Arm(variant, model, BackgroundBatcher(lambda texts: list(engine.embed(texts)), MAX_ENCODE_BATCH,
                                                         f"encoder-{variant}"))

        champion = arm(CHAMPION, self.model)
        if CHALLENGER_MODEL is None:
            return Arms(EXPERIMENT, champion)
        if str(CHALLENGER_MODEL.tag) == str(self.bundle.tag):
            return Arms(EXPERIMENT, champion, Arm(CHALLENGER, self.model, champion.encode_ahead))
        challenger = _load_model(CHALLENGER_MODEL)
        return Arms(EXPERIMENT, champion, arm(CHALLENGER, challenger))

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        """On a graceful stop: commit the impressions still queued, release the store and the list cache."""
        if self.impressions is not None:
            self.impressions.close()
        self.lookups.shutdown(cancel_futures=True)
        self.store.close()
        for model in self.arms.models():
            if model.realtime is not None:
                model.realtime.close()

    def _served(self, surface: str, answer: dict, arm: Arm, user_id: str | None, session_id: str | None,
                query: str = "") -> dict:
        """``arm``'s ``answer`` with its request id and variant; its impression queued for the next group commit."""
        request_id, version = new_request_id(), arm.model.version
        if self.impressions is not None:
            self.impressions.log(Impression(request_id, surface, user_id or "", session_id or "", version,
                                            arm.variant, tuple(item["item_id"] for item in answer["items"]), query,
                                            time.time()))
        return {**answer, "model_version": version, "request_id": request_id, "variant": arm.variant}

    def __is_ready__(self) -> bool:
        """/readyz: 503 while the feedback store is failing (a load balancer sends traffic elsewhere)."""
        return self.store.healthy()

    # Microsecond handlers are coroutines: run on the event loop, not handed to a thread
    # (a thread hop costs more than the work). /feedback (a durable commit) stays a plain
    # function, which BentoML runs in its thread pool; /search awaits its encoder thread.
    @bentoml.api(route="/recommend")
    async def recommend(self, user_id: Id, k: K = 10, exclude_purchased: bool = False,
                        diversity: Weight | None = None, session_id: Id | None = None,
                        recent_items: RecentItems = ()) -> Recommendations:
        """Top-k for a shopper with a reason per item, computed from their history as of now (the
        precomputed list past ``serving.realtime.deadline_ms``, or with ``serving.realtime.enabled`` off)."""
        arm = self.arms.of(user_id, session_id)
        model = arm.model
        if model.realtime is None:
            answer = model.recommend(user_id, k, exclude_purchased, diversity)
        else:
            try:
                model.realtime.check(recent_items)
            except BadRecentItems as exc:
                raise InvalidArgument(str(exc)) from None
            answer = await self._recommend_now(model, user_id, recent_items, k, exclude_purchased, diversity)
        return Recommendations(**self._served("recommend", answer, arm, user_id, session_id))

    async def _recommend_now(self, model: ServingModel, user_id: str, recent_items: tuple[str, ...], k: int,
                             exclude_purchased: bool, diversity: float | None) -> dict:
        """The real-time list, or the precomputed one when the scoring queue cannot meet the deadline, past
        it, or on any error (counted by reason). The store read and the list cache come first: on the loop
        for a store on this machine (tens of microseconds), on the look-up thread for a database server,
        whose round trip, or hang, must not hold the loop (the deadline then bounds it); a cached list is
        answered at once, without queueing for a pass."""
        look_up = functools.partial(model.look_up_now, self.store, user_id, recent_items, time.time(), k,
                                    exclude_purchased, diversity)
        deadline, started = REALTIME.deadline_ms / 1000, time.perf_counter()
        try:
            async with asyncio.timeout(deadline):
                asked = await asyncio.wrap_future(self.lookups.submit(look_up)) if self.store.remote else look_up()
                if asked.cached is not None:
                    self.list_cache.labels(result="hit").inc()
                    return model.answer_now(asked)
                if self.scoring.admits(deadline - (time.perf_counter() - started)):
                    answer = await self.scoring(model.compute_now, asked)
                    if isinstance(answer, Exception):  # this list failed, alone
                        raise answer
                    self.list_cache.labels(result="miss").inc()
                    return answer
                reason = "busy"
        except TimeoutError:
            reason = "deadline"
        except Exception:
            LOG.exception("real-time /recommend failed for a shopper; serving the precomputed list")
            reason = "error"
        self.fallbacks.labels(reason=reason).inc()
        return model.recommend(user_id, k, exclude_purchased, diversity)

    @bentoml.api(route="/search")
    async def search(self, query: Query, user_id: Id | None = None, k: K = 10,
                     filters: dict[str, Any] | None = None, session_id: Id | None = None) -> SearchResults:
        """Hybrid search: items, scores and the parsed query (what was understood).

        The search itself runs here on the event loop (~0.4 ms with the query's MiniLM
        vector cached). A query not in the cache is first encoded by the worker's encoder
        thread, which batches the queries waiting at that moment; running whole searches
        in a thread pool instead cost ~2 ms more CPU per request in thread hand-offs and
        GIL waits than the search itself.
        """
        if not query.strip():
            raise InvalidArgument("query is empty; send the words the shopper typed, e.g. {\"query\": \"red candle\"}")
        arm = self.arms.of(user_id, session_id)
        if (text := arm.model.text_to_encode(query)) is not None:  # MiniLM off the loop, into the cache
            await arm.encode_ahead(text)
        try:
            answer = arm.model.search(query, user_id, k, filters)
        except ValueError as exc:  # an unknown filter key, a filter of the wrong type
            raise InvalidArgument(f"filters: {exc}") from exc
        return SearchResults(**self._served("search", answer, arm, user_id, session_id, query))

    @bentoml.api(route="/assist")
    async def assist(self, message: Query, user_id: Id | None = None) -> Assistance:
        """A customer-service chat message: the answer filled from the shopper's history (e.g. the date of
        their last order), or a hand-over to a person (``handoff``) with the likeliest intents."""
        if not message.strip():
            raise InvalidArgument("message is empty; send what the shopper wrote, e.g. "
                                  "{\"message\": \"where is my order\", \"user_id\": \"U00001\"}")
        arm = self.arms.of(user_id, None)
        if (text := arm.model.text_to_encode(message)) is not None:  # MiniLM off the loop, into the cache
            await arm.encode_ahead(text)
        return Assistance(**arm.model.assist(message, user_id), model_version=arm.model.version)

    @bentoml.api(route="/similar")
    async def similar(self, item_id: Id, k: K = 10, user_id: Id | None = None,
                      session_id: Id | None = None) -> SimilarItems:
        """Items bought together with ``item_id``, then the most similar ones (``user_id`` and
        ``session_id`` name who is looking: the arm of an experiment, and attribution)."""
        arm = self.arms.of(user_id, session_id)
        try:
            answer = arm.model.similar(item_id, k)
        except UnknownItem:
            raise NotFound(f"unknown item_id {item_id!r}: not in the served catalog "
                           f"(e.g. {arm.model.items['item_id'][0]!r})") from None
        return SimilarItems(**self._served("similar", answer, arm, user_id, session_id))

    @bentoml.api(route="/feedback")
    def feedback(self, events: list[Any]) -> FeedbackReceipt:
        """Append shopper events durably; invalid ones are quarantined and reported back.

        Each event is an object of JSON strings (``quantity`` and ``position`` a whole
        number or a string): ``user_id``, ``item_id``, ``event_type``, ``timestamp`` (ISO
        8601), optional ``session_id``, ``query``, ``quantity`` (default 1), ``request_id`` and
        ``position`` (the answer that showed the item and its 0-based place there) and
        ``event_id`` (an idempotency key). Ids, session and query hold at most 200
        characters each, ``timestamp`` 64. An event whose ``request_id`` names no logged
        answer is stored and counted as unattributed; this worker's own queued impressions
        are committed first, while an answer of another worker in the last moments (its
        next group commit, ~0.5 s) may not be stored yet.
        """
        limit = self.model.params.serving.max_feedback_events
        if not events:
            raise InvalidArgument("events is empty; send at least one event")
        if len(events) > limit:
            raise InvalidArgument(f"{len(events)} events in one request; the limit is {limit} "
                                  "(serving.max_feedback_events)")
        try:
            if self.impressions is not None and any(isinstance(e, dict) and e.get("request_id") for e in events):
                self.impressions.flush()
            result = self.store_feedback(events)
        except StoreError as exc:  # nothing was stored: the client may retry; /readyz now says 503
            LOG.error("feedback not stored: %s", exc)
            raise ServiceUnavailable(str(exc)) from None
        if not result["accepted"] and not result["duplicates"]:
            first = result["rejected"][0]
            raise InvalidArgument(f"no event accepted: event {first['index']} field {first['field']}: "
                                  f"{first['reason']} (e.g. {first['example']!r}); "
                                  f"{len(result['rejected'])} rejected in all")
        self.unattributed.inc(result["unattributed"])
        return FeedbackReceipt(**result, model_version=self.model.version)

    @bentoml.api(route="/user")
    async def user(self, user_id: Id) -> Shopper:
        """What the shop knows about a shopper: recent purchases (empty for a new visitor)."""
        return Shopper(**self.model.user(user_id), model_version=self.model.version)

    @bentoml.api(route="/users")
    async def users(self, limit: Annotated[int, Field(ge=1, le=1000)] = 20) -> Shoppers:
        """Known shoppers, most purchases first (the storefront's user picker)."""
        return Shoppers(users=self.model.users(limit), model_version=self.model.version)


Shoprec.add_asgi_middleware(LocalDocsPage)
Shoprec.add_asgi_middleware(JsonBodiesOnly)
Shoprec.add_asgi_middleware(BoundedBody, max_bytes=SETTINGS.max_body_bytes, timeout=SETTINGS.body_timeout_s)
Shoprec.add_asgi_middleware(OneErrorShape)
