"""One typed view of ``params.yaml``.

Every stage reads its own section (``params.ingest``, ``params.split``, ...), and DVC
tracks the same keys, so a change to a value re-runs exactly the stages that use it.
Unknown keys are rejected: a typo in ``params.yaml`` must not silently fall back to a
default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_PARAMS = Path("params.yaml")

SourceName = Literal["sample", "online_retail", "files"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SampleParams(_Section):
    seed: int = 42
    n_items: int = Field(5000, ge=10)
    n_users: int = Field(3000, ge=10)
    n_events: int = Field(300_000, ge=100)
    days: int = Field(120, ge=7)
    start_date: str = "2024-01-01"
    service_share: float = Field(0.02, ge=0.0, le=1.0)  # of the searched sessions, asked a service question instead


class IngestParams(_Section):
    source: SourceName = "sample"
    path: str = ""
    max_invalid_share: float = Field(0.05, ge=0.0, le=1.0)
    feedback_dir: str = Field("data/feedback", min_length=1)  # served feedback batches (shoprec export-feedback)
    max_field_bytes: int = Field(100_000, ge=1)  # a longer cell sends its row to quarantine ('field too long')
    max_expansion: float = Field(100.0, ge=1.0)  # compressed input may unpack to this x its size (+64 MiB)
    sample: SampleParams = SampleParams()


class SplitParams(_Section):
    test_start: dict[str, str] = {"sample": "2024-04-16", "online_retail": "2011-11-01", "files": ""}
    test_days: int = Field(14, ge=1)
    validation_days: int = Field(30, ge=1)
    tune: bool = False  # true: drop the test window, score the validation window as test (shoprec tune)


class TuneParams(_Section):
    """``shoprec tune``: the grid searched on the validation window (``shoprec.tuning``)."""

    metric: str = Field("ndcg@20", pattern=r"^(recall|hitrate|ndcg|map)@[1-9][0-9]*$")
    view: Literal["all", "new"] = "all"
    grid: dict[str, list] = {}  # params.yaml key -> values; every combination is one trial


class InteractionParams(_Section):
    weights: dict[str, float] = {"view": 0.0, "click": 0.3, "add_to_cart": 0.6, "purchase": 1.0}
    history_types: list[str] = ["click", "add_to_cart", "purchase"]


class TextParams(_Section):
    """MiniLM, and its contrastive fine-tuning on the shop's pairs (stage ``finetune_text``, docs/finetune.md)."""

    model_dir: str = ""  # the pretrained model fine-tuning starts from (empty: the installed package's)
    max_length: int = Field(64, ge=8, le=512)
    batch_size: int = Field(128, ge=1)
    # top Transformer layers trained (the model's layer count is checked when it loads); "all": every
    # layer and the embeddings; 0: the stage copies the pretrained model unchanged
    finetune_layers: Annotated[int, Field(ge=0)] | Literal["all"] = 0
    finetune_epochs: int = Field(4, ge=1)
    finetune_patience: int = Field(1, ge=1)
    finetune_batch_size: int = Field(64, ge=2)
    finetune_learning_rate: float = Field(3e-5, gt=0)
    finetune_warmup: float = Field(0.1, ge=0, lt=1)
    finetune_weight_decay: float = Field(0.01, ge=0)
    finetune_temperature: float = Field(0.05, gt=0)
    finetune_max_pairs: int = Field(12000, ge=10)
    finetune_holdout: float = Field(0.1, gt=0, lt=1)
    mixed_precision: bool = False


class RetrievalParams(_Section):
    embedding_dim: int = Field(64, ge=4)
    temperature: float = Field(0.05, gt=0)
    logq_correction: bool = True
    batch_size: int = Field(1024, ge=2)
    epochs: int = Field(5, ge=1)
    learning_rate: float = Field(0.005, gt=0)
    min_item_count: int = Field(2, ge=1)
    user_dropout: float = Field(0.1, ge=0, lt=1)
    history_length: int = Field(20, ge=1)
    item_features: list[Literal["id", "text", "category", "brand", "price"]] = ["id", "text", "category", "brand", "price"]
    query_features: list[Literal["user", "history", "dow"]] = ["user", "history", "dow"]
    # the query tower's history part: the masked mean of its item vectors, or a GRU over its events
    # with their types and ages (shoprec.models.towers)
    user_tower: Literal["pooled", "gru"] = "pooled"
    examples: Literal["events", "distinct"] = "events"
    mixed_precision: bool = False

    @field_validator("item_features", "query_features")
    @classmethod
    def _some_features(cls, value: list[str]) -> list[str]:
        if not value or len(set(value)) != len(value):
            raise ValueError(f"needs at least one feature, each once (got {value})")
        return value

    @model_validator(mode="after")
    def _tower_reads_history(self) -> "RetrievalParams":
        if self.user_tower != "pooled" and "history" not in self.query_features:
            raise ValueError(f"user_tower: {self.user_tower} runs over the history, which query_features leaves out "
                             f"(got {self.query_features}); add history, e.g. [user, history, dow]")
        return self


class RankingParams(_Section):
    cross_layers: int = Field(1, ge=0)
    deep_units: list[int] = [128, 64]
    batch_size: int = Field(1024, ge=2)
    epochs: int = Field(2, ge=1)
    learning_rate: float = Field(0.002, gt=0)
    negative_sample: float = Field(0.3, gt=0, le=1)
    n_retrieval: int = Field(200, ge=1)
    n_copurchase: int = Field(100, ge=0)
    recent_days: int = Field(14, ge=1)  # window of the "recent popularity" feature
    diversity: float = Field(0.0, ge=0, le=1)  # default MMR weight of served lists


class BaselineParams(_Section):
    ease_lambda: float = Field(200.0, gt=0)
    ease_max_items: int = Field(20_000, ge=1)
    itemknn_neighbours: int = Field(0, ge=0)


class EvaluateParams(_Section):
    ks: list[int] = [10, 20, 50, 100]
    list_length: int = Field(100, ge=1)


class GateParams(_Section):
    """The gate (``shoprec.evaluation.gate``): a paired bootstrap against the best baseline."""

    system: str = "shoprec"
    metric: str = Field("ndcg@20", pattern=r"^(recall|hitrate|ndcg|map)@[1-9][0-9]*$")
    view: Literal["all", "new"] = "all"
    margin: float = 0.0  # the interval's lower bound of (system - best baseline) must be above this
    search_margin: float = 0.0  # ... and of (hybrid - lexical search) nDCG@10
    confidence: float = Field(0.95, gt=0.0, lt=1.0)  # the interval's level
    resamples: int = Field(1000, ge=100)  # paired bootstrap draws


class SearchParams(_Section):
    """Product search (``shoprec.search``): index, query models, fusion and personalisation."""

    title_weight: int = Field(2, ge=1)  # times the title is written into an item's BM25 text
    query_cache: int = Field(10_000, ge=0)  # query texts whose MiniLM vector is kept (LRU); 0: no cache
    query_encoder: Literal["int8", "float"] = "int8"  # MiniLM for queries: int8 weights (LiteRT) or float (TF)
    k1: float = Field(1.5, gt=0)
    b: float = Field(0.75, ge=0, le=1)
    min_query_count: int = Field(5, ge=1)  # a logged query word this frequent is not a typo (spelling)
    typo_share: float = Field(0.35, ge=0, le=1)  # ... nor one after which fewer chosen titles have its neighbour
    candidates: int = Field(100, ge=1)  # top-N per retrieval leg
    rrf_k: float = Field(60.0, gt=0)
    lexical_weight: float = Field(1.0, ge=0)
    semantic_weight: float = Field(1.0, ge=0)
    personalisation: float = Field(0.15, ge=0, le=1)  # weight of the two-tower affinity in the final score
    n_personalise: int = Field(50, ge=1)  # fused results personalisation re-orders
    intent_threshold: float = Field(0.6, ge=0, le=1)  # below: no category filter
    min_query_pairs: int = Field(200, ge=1)  # fewer logged (query, item) pairs: no trained query models
    query_hidden: int = Field(256, ge=1)
    query_epochs: int = Field(10, ge=1)
    query_batch_size: int = Field(256, ge=2)
    query_learning_rate: float = Field(0.003, gt=0)
    query_temperature: float = Field(0.05, gt=0)
    tower_weight: float = Field(0.5, ge=0)  # semantic score = MiniLM cosine + this x query-tower cosine
    expansion_min_share: float = Field(0.2, gt=0, le=1)  # P(title word | query unit) a translation needs
    expansion_min_lift: float = Field(3.0, ge=1)  # ... and at least this many times its base rate
    expansion_min_items: int = Field(3, ge=1)  # distinct chosen items a query unit needs to translate
    expansion_weight: float = Field(1.0, ge=0)  # translated words' BM25 weight in the hybrid's lexical leg
    guess_weight: float = Field(1.0, ge=0, le=1)  # credit of a word a typed word may mean: this x its frequency share
    coverage_weight: float = Field(4.0, ge=0)  # hybrid order: weight of the share of query words an item has
    popularity_weight: float = Field(0.15, ge=0)  # ... and of log popularity (scaled to [0, 1])
    body_credit: float = Field(0.5, ge=0, le=1)  # ... a query word found outside the item's title counts this much
    defining_share: float = Field(0.6, gt=0, le=1)  # a title word shoppers name this often when they choose it defines
    defining_min_items: int = Field(3, ge=1)  # ... when shoppers chose at least this many distinct items with it
    unnamed_weight: float = Field(0.5, ge=0)  # hybrid order: minus this per defining title word the query leaves out


class ExperimentParams(_Section):
    """An A/B experiment of the service (``serving.experiment``; assignment in :mod:`shoprec.experiments.assignment`).

    Read by ``shoprec serve`` from the working ``params.yaml`` (not from a model's bundle): an
    experiment is a choice of what to serve, not part of a model. An empty ``name``: no experiment.
    """

    name: str = ""  # empty: no experiment, every answer is the champion's
    challenger: str = ""  # a model-store tag (`shoprec package` prints it), or "pending": serving.challenger_file's
    share: float = 0.5  # of shoppers who get the challenger, in [0, 1]
    salt: str = ""  # mixed into the assignment hash: a new salt draws new, independent arms

    @field_validator("share")
    @classmethod
    def _a_fraction(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"the challenger's traffic share must lie in [0, 1], e.g. 0.1 for 10% of shoppers "
                             f"(got {value})")
        return value

    @model_validator(mode="after")
    def _complete(self) -> "ExperimentParams":
        if self.name and not self.challenger:
            raise ValueError(f"experiment {self.name!r} names no challenger: set serving.experiment.challenger "
                             "to a packaged model tag, e.g. shoprec:popularity-<version> (`shoprec package --system "
                             "popularity` prints it)")
        if self.name and not self.salt:
            raise ValueError(f"experiment {self.name!r} has no salt: set serving.experiment.salt, e.g. "
                             f"salt: {self.name}-1 (a new salt reshuffles the shoppers between the arms)")
        return self


class RealtimeParams(_Section):
    """Real-time ``/recommend`` (``serving.realtime``; :mod:`shoprec.serving.realtime`).

    Read by ``shoprec serve`` from the working ``params.yaml`` (a plain ``bentoml serve``: the
    bundle's): how a model is served, not part of it, so switching it needs no new package.
    """

    enabled: bool = True  # the list computed at request time; off: the precomputed lists only
    deadline_ms: float = Field(50.0, gt=0)  # a real-time list later than this (or failing): the precomputed one
    max_recent_items: int = Field(20, ge=1)  # a /recommend's recent_items: at most this many
    # the data's clock (time features): "auto" (packaging time is the training cut-off, time runs on from
    # there), or days to subtract from the wall time (0: live data)
    clock_offset: Literal["auto"] | float = "auto"
    # a shopper's list with no new stored event and no recent_items is reused for at most this many seconds
    # of the data's clock (a worker's cache; its time features are that much behind); 0: always recomputed
    cache_seconds: float = Field(60.0, ge=0)


class IntentParams(_Section):
    """The help centre's intent classifier (``train_intents``, :mod:`shoprec.help`)."""

    holdout: float = Field(0.2, ge=0, lt=1)  # share of each class held out for the metrics
    folds: int = Field(5, ge=2)  # validation folds of the rest, on which the verdict's margin and threshold are chosen
    product_budget: float = Field(0.0005, ge=0, lt=1)  # validation product queries the margin may route to help
    max_product_queries: int = Field(6000, ge=1)  # product queries (logged searches, titles, fragments) trained on
    epochs: int = Field(200, ge=1)  # full-batch gradient steps
    learning_rate: float = Field(0.05, gt=0)


class ServingParams(_Section):
    """The BentoML service (``shoprec.serving``): bundle, index, limits, workers."""

    list_length: int = Field(100, ge=1)  # precomputed list per user and view (the API's largest k)
    together_per_item: int = Field(20, ge=1)  # co-purchase neighbours kept per item for /similar
    ann: Literal["auto", "exact", "faiss"] = "auto"  # vector indexes of /similar and search (auto: from ann_threshold)
    ann_threshold: int = Field(50_000, ge=1)
    ann_exact_subset: int = Field(20_000, ge=0)  # search filters allowing at most this many items: exact scores
    hnsw_m: int = Field(32, ge=2)
    hnsw_ef_construction: int = Field(80, ge=1)
    hnsw_ef_search: int = Field(256, ge=1)
    semantic_ef_search: int = Field(2048, ge=1)  # the semantic search index's breadth (text queries: see params.yaml)
    workers: int = Field(2, ge=1)  # server processes (each holds its own copy of the bundle)
    tracing: bool = False  # OpenTelemetry spans for the API routes (set an exporter in BentoML's config too)
    access_log: bool = False  # BentoML's access log: a line per request (impressions and /metrics cover answers)
    threads: int = Field(16, ge=1)  # per worker: /feedback calls at once (concurrent ones share a validation + commit)
    max_body_bytes: int = Field(1_000_000, ge=1024)  # larger request bodies get 413
    body_timeout_s: float = Field(5.0, gt=0)  # a body still incomplete after this gets 400 (truncated)
    max_feedback_events: int = Field(1000, ge=1)  # per POST /feedback
    max_query_chars: int = Field(200, ge=1)
    # where the service appends events (and impressions): a SQLite file (a path or sqlite:///path, one
    # host) or a PostgreSQL database (postgresql://user@host:port/db, shared by several replicas)
    feedback_db: str = "var/feedback.db"
    impressions: bool = True  # log what every answer showed (shoprec.serving.impressions); off: answers only
    impressions_days: int = Field(90, ge=1)  # impressions older than this are deleted by their export
    impressions_dir: str = Field("data/impressions", min_length=1)  # exported impression batches
    promoted_file: str = "var/promoted.json"  # the model `shoprec serve` serves (written by promotion)
    challenger_file: str = "var/challenger.json"  # the retrained model waiting for an experiment (feedback flow)
    feedback_min_events: int = Field(1000, ge=1)  # new feedback events that trigger a retrain
    experiment: ExperimentParams = ExperimentParams()
    realtime: RealtimeParams = RealtimeParams()

    @field_validator("feedback_db")
    @classmethod
    def _a_store(cls, value: str) -> str:
        store_scheme(value)
        return value


STORE_EXAMPLE = "postgresql://shoprec@db.internal:5432/shoprec"


def store_scheme(location: str) -> tuple[str, str]:
    """Which store ``location`` names: ("sqlite", its path) for a path or ``sqlite:///path``,
    ("postgresql", the URL) for ``postgresql://...``; ValueError for anything else. As in
    SQLAlchemy, ``sqlite:///var/x.db`` is relative and ``sqlite:////srv/x.db`` absolute."""
    if location.startswith("postgresql://") and len(location) > len("postgresql://"):
        return "postgresql", location
    if location.startswith("sqlite:///") and len(location) > len("sqlite:///"):
        return "sqlite", location.removeprefix("sqlite:///")
    if "://" not in location and location.strip():
        return "sqlite", location
    raise ValueError(f"{location!r} names no store: give a SQLite file (a path or sqlite:///path, one host) "
                     f"or a PostgreSQL URL for several replicas, e.g. {STORE_EXAMPLE}")


def resolved(location: str, base: Path) -> str:
    """``location`` with a relative SQLite path made absolute against ``base`` (a URL as it is)."""
    scheme, rest = store_scheme(location)
    return rest if scheme == "postgresql" else str((base / rest).resolve())


def missing(location: str) -> bool:
    """Whether ``location`` is a SQLite file that does not exist (a database URL is never missing
    here: opening it says whether it is reachable)."""
    scheme, rest = store_scheme(location)
    return scheme == "sqlite" and not Path(rest).is_file()


class ExperimentReportParams(_Section):
    """``shoprec experiment report`` (:mod:`shoprec.experiments.report`): attribution and the decision's thresholds."""

    attribution_window_hours: float = Field(24.0, gt=0)  # an outcome goes to an impression at most this old
    confidence: float = Field(0.95, gt=0, lt=1)  # of the differences' intervals (primary: two-sided alpha = 1 - this)
    power: float = Field(0.8, gt=0, lt=1)  # of the minimal detectable effect reported while it keeps running
    srm_alpha: float = Field(0.001, gt=0, lt=1)  # a split this unlikely under the designed share flags a mismatch
    zero_result_margin: float = Field(0.01, ge=0, le=1)  # search zero-result rate: the challenger may be this much worse


class Params(_Section):
    ingest: IngestParams = IngestParams()
    split: SplitParams = SplitParams()
    tune: TuneParams = TuneParams()
    seed: int = 42
    interactions: InteractionParams = InteractionParams()
    text: TextParams = TextParams()
    retrieval: RetrievalParams = RetrievalParams()
    ranking: RankingParams = RankingParams()
    baselines: BaselineParams = BaselineParams()
    evaluate: EvaluateParams = EvaluateParams()
    gate: GateParams = GateParams()
    search: SearchParams = SearchParams()
    intents: IntentParams = IntentParams()
    serving: ServingParams = ServingParams()
    experiment_report: ExperimentReportParams = ExperimentReportParams()

    def with_text_model(self, folder: Path | str) -> Params:
        """These params with MiniLM read from ``folder``: the ``finetune_text`` stage's output in a
        repository, a serving bundle's copy of it in the service."""
        return self.model_copy(update={"text": self.text.model_copy(update={"model_dir": str(folder)})})


class ParamsError(ValueError):
    """``params.yaml`` is unreadable or breaks the schema; the message names the key."""


def load_params(path: Path | str = DEFAULT_PARAMS) -> Params:
    """Read and validate ``params.yaml``; a missing file means all defaults."""
    path = Path(path)
    if not path.exists():
        return Params()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        return Params.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc})") from exc
    except ValidationError as exc:
        raise ParamsError(f"{path}: {problems(exc)}") from exc


def problems(exc: ValidationError) -> str:
    """Each broken rule of ``exc`` as ``dotted.key: message``, joined by "; "."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())


def section_from_env(variable: str, default: _Section, key: str) -> _Section:
    """The section ``shoprec serve`` handed to the server as JSON in ``$variable`` (the working
    params' ``key``), else ``default``; exits with the broken rule when it is invalid."""
    raw = os.environ.get(variable)
    if not raw:
        return default
    try:
        return type(default).model_validate_json(raw)
    except ValidationError as exc:
        raise SystemExit(f"shoprec: refusing to start: {key} (${variable}): {problems(exc)}") from None
