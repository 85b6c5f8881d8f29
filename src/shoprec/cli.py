"""The ``shoprec`` command: every pipeline stage, callable by hand, by DVC and by Prefect.

Each subcommand is a thin shell over one stage function: it parses paths and options,
reads ``params.yaml`` and calls the function. Expected failures (bad data, bad params)
print one message and exit 1; a traceback means a bug.
"""

from __future__ import annotations

import errno
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from shoprec.config import DEFAULT_PARAMS, ParamsError, load_params
from shoprec.layout import Layout

LAYOUT = Layout()  # the repository in the working folder, as `dvc repro` leaves it

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])
# `shoprec --help` groups the commands by what they are for
STAGES = "Pipeline stages (each one dvc.yaml stage; `dvc repro` runs them)"
USE = "Run the pipeline and use its models"
SERVING = "Serving"
FLOWS = "Prefect flows"


class Source(str, Enum):
    sample = "sample"
    online_retail = "online_retail"
    files = "files"


def _version(value: bool) -> None:
    if value:
        from shoprec import __version__

        typer.echo(f"shoprec {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """shoprec: e-commerce search and recommendation, from raw events to a served model."""

ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml to read")]
ExperimentNameOpt = Annotated[Optional[str], typer.Option("--name", help="the experiment's name in the report "
                                                    "(default: serving.experiment's, else champion-vs-<challenger>)")]
ShareOpt = Annotated[Optional[float], typer.Option(min=0.0, max=1.0, help="the challenger's designed share of "
                     "shoppers, which the sample-ratio check compares the split with (default: serving.experiment's)")]


def _fail(message: str) -> None:
    typer.secho(message, err=True, fg=typer.colors.RED)
    raise typer.Exit(1)


def _params(path: Path):
    try:
        return load_params(path)
    except ParamsError as exc:
        _fail(str(exc))


@app.command(rich_help_panel=STAGES)
def ingest(
    out: Annotated[Path, typer.Option(help="folder for items/events/quarantine parquet and validation.json")],
    source: Annotated[Optional[Source], typer.Option(help="input adapter (default: params.yaml ingest.source)")] = None,
    path: Annotated[Optional[Path], typer.Option(help="input file or folder (online_retail, files)")] = None,
    raw_only: Annotated[bool, typer.Option(help="stop before validation (the DVC 'ingest' stage)")] = False,
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Read a source into the canonical tables, validate them and quarantine bad rows."""
    from shoprec.data.read import read_source
    from shoprec.data.validation.errors import DataValidationError
    from shoprec.stages.ingest import ingest as run_ingest
    from shoprec.stages.validate import validate_tables

    cfg = _params(params)
    source = source.value if source else cfg.ingest.source
    path = path if path is not None else (Path(cfg.ingest.path) if cfg.ingest.path else None)
    try:
        if raw_only:
            run_ingest(source, path, out, cfg.ingest)
            typer.echo(f"raw tables of '{source}' written to {out}/")
            return
        result = validate_tables(read_source(source, path, cfg.ingest), out, cfg.ingest.max_invalid_share)
    except DataValidationError as exc:
        _fail(str(exc))
    typer.echo(result.summary())


@app.command(rich_help_panel=STAGES)
def validate(
    raw: Annotated[Path, typer.Option(help="folder written by 'ingest --raw-only'")],
    out: Annotated[Path, typer.Option(help="folder for the clean tables, quarantine and report")],
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Validate raw tables (Great Expectations) into clean tables plus quarantine."""
    from shoprec.data.validation.errors import DataValidationError
    from shoprec.stages.validate import validate as run_validate

    cfg = _params(params)
    try:
        result = run_validate(raw, out, cfg.ingest.max_invalid_share)
    except DataValidationError as exc:
        _fail(str(exc))
    typer.echo(result.summary())


@app.command(rich_help_panel=STAGES)
def split(
    events: Annotated[Path, typer.Option(help="clean events.parquet")],
    out: Annotated[Path, typer.Option(help="folder for train/valid/test parquet")],
    source: Annotated[Optional[Source], typer.Option(help="picks split.test_start (default: params.yaml)")] = None,
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Temporal train / validation / test split and test ground truth."""
    from shoprec.stages.split import split as run_split

    cfg = _params(params)
    try:
        paths = run_split(events, out, source.value if source else cfg.ingest.source, cfg.split)
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(paths.summary.read_text())


DataDir = Annotated[Path, typer.Option(help="folder written by the split stage")]
ItemsOpt = Annotated[Path, typer.Option(help="clean items.parquet")]
TextEmbOpt = Annotated[Path, typer.Option(help="item text embeddings parquet (embed-items)")]
TextModelOpt = Annotated[Path, typer.Option(help="MiniLM model folder written by finetune-text")]
RetrievalOpt = Annotated[Path, typer.Option(help="folder written by train-retrieval")]
RankingOpt = Annotated[Path, typer.Option(help="folder written by train-ranking")]
OutDir = Annotated[Path, typer.Option(help="output folder")]


@app.command("finetune-text", rich_help_panel=STAGES)
def finetune_text(data: DataDir, items: ItemsOpt, out: OutDir, params: ParamsOpt = DEFAULT_PARAMS) -> None:
    """MiniLM fine-tuned on the shop's text pairs (text.finetune_layers), or the pretrained one copied when 0."""
    from shoprec.stages.finetune_text import finetune_text as run

    try:
        typer.echo(f"text model written to {_on_cluster(run, data, items, out, _params(params))}")
    except ValueError as exc:
        _fail(str(exc))


@app.command("embed-items", rich_help_panel=STAGES)
def embed_items(items: ItemsOpt, text_model: TextModelOpt, out: Annotated[Path, typer.Option(help="output parquet")],
                params: ParamsOpt = DEFAULT_PARAMS) -> None:
    """MiniLM embeddings of every catalog item (computed once per catalog)."""
    from shoprec.stages.embed_items import embed_items as run

    typer.echo(f"item embeddings written to {run(items, out, _params(params).with_text_model(text_model).text)}")


def _on_cluster(stage, *args):
    """A training stage, with a TF_CONFIG that names no cluster as one line."""
    from shoprec.models.training import ClusterConfigError

    try:
        return stage(*args)
    except ClusterConfigError as exc:
        _fail(str(exc))


@app.command("train-retrieval", rich_help_panel=STAGES)
def train_retrieval(data: DataDir, items: ItemsOpt, text_emb: TextEmbOpt, out: OutDir,
                    params: ParamsOpt = DEFAULT_PARAMS) -> None:
    """Fit the TFRS two-tower retrieval model (replay and final phases) and export it (on each worker of
    a cluster when TF_CONFIG is set)."""
    from shoprec.stages.train_retrieval import train_retrieval as run

    typer.echo(f"retrieval models written to {_on_cluster(run, data, items, text_emb, out, _params(params))}")


@app.command("train-ranking", rich_help_panel=STAGES)
def train_ranking(data: DataDir, items: ItemsOpt, text_emb: TextEmbOpt, retrieval: RetrievalOpt, out: OutDir,
                  params: ParamsOpt = DEFAULT_PARAMS) -> None:
    """Fit the DCN ranking model (click and purchase heads) on the replay window (on each worker of a
    cluster when TF_CONFIG is set)."""
    from shoprec.stages.train_ranking import train_ranking as run

    typer.echo(f"ranking model written to {_on_cluster(run, data, items, text_emb, retrieval, out, _params(params))}")


@app.command(rich_help_panel=STAGES)
def evaluate(data: DataDir, items: ItemsOpt, text_emb: TextEmbOpt, retrieval: RetrievalOpt, ranking: RankingOpt,
             out: OutDir, timings: Annotated[Optional[Path], typer.Option(
                 help="seconds per system, a run detail kept out of the DVC outputs")] = None,
             params: ParamsOpt = DEFAULT_PARAMS) -> None:
    """Metrics of every system (baselines, two_tower, shoprec) on the test window."""
    from shoprec.stages.evaluate import evaluate as run

    typer.echo(f"metrics written to {run(data, items, text_emb, retrieval, ranking, out, _params(params), timings)}")


@app.command(rich_help_panel=STAGES)
def gate(reports: Annotated[Path, typer.Option(help="folder of the evaluate (and evaluate-search) reports; "
                                                 "gate.json, search_gate.json and headline.json go there")],
         truth: Annotated[Path, typer.Option(help="test_truth.parquet of the split")],
         labels: Annotated[Optional[Path], typer.Option(help="query_labels.parquet: also gate search")] = None,
         params: ParamsOpt = DEFAULT_PARAMS) -> None:
    """Pass only a model whose lead over the best baseline (and hybrid over lexical search) is beyond noise."""
    from shoprec.evaluation.gate import GateRefused
    from shoprec.stages.gate import gate as run

    try:
        decision = run(reports, truth, _params(params), labels)
        typer.echo("; ".join([decision["reason"]] + ([decision["search"]["reason"]] if "search" in decision else [])))
    except GateRefused as exc:
        _fail(str(exc))


@app.command(rich_help_panel=USE)
def recommend(
    user: Annotated[str, typer.Option(help="user id (an unknown id gets the cold-start list)")],
    k: Annotated[int, typer.Option(min=1, max=100, help="list length")] = 10,
    exclude_purchased: Annotated[bool, typer.Option(help="leave out items the user bought")] = False,
    diversity: Annotated[Optional[float], typer.Option(min=0.0, max=1.0, help="MMR weight (default: params)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """The full system's list for one user, with scores and explanations (models of the last dvc repro)."""
    import json

    from shoprec.models.recommend import recommend as run_recommend
    from shoprec.models.store import load_layout

    cfg = _params(params)
    try:
        system = load_layout(cfg)
    except FileNotFoundError as exc:
        _fail(f"no trained models ({exc}); run `dvc repro` (or `shoprec run`) first")
    weight = cfg.ranking.diversity if diversity is None else diversity
    items = run_recommend(system, user, k, exclude_purchased, weight)
    if as_json:
        typer.echo(json.dumps({"user_id": user, "items": items}, indent=2))
        return
    for rank, item in enumerate(items, 1):
        typer.echo(f"{rank:>3}. {item['item_id']:<10} {item['score']:.4f}  {item['title']}  ({item['explanation']})")


@app.command("build-lexical-index", rich_help_panel=STAGES)
def build_lexical_index(items: ItemsOpt, data: DataDir, out: OutDir, params: ParamsOpt = DEFAULT_PARAMS) -> None:
    """BM25 index of the catalog and the speller's vocabulary (catalog words + frequent logged query words)."""
    from shoprec.stages.build_lexical_index import build_lexical_index as run

    typer.echo(f"lexical index written to {run(items, data, out, _params(params))}")


@app.command("train-query-model", rich_help_panel=STAGES)
def train_query_model(data: DataDir, items: ItemsOpt, text_model: TextModelOpt, text_emb: TextEmbOpt,
                      retrieval: RetrievalOpt, out: OutDir, params: ParamsOpt = DEFAULT_PARAMS) -> None:
    """Search query tower (MiniLM + projection) and category intent from logged searches, and the export."""
    from shoprec.stages.train_query_model import train_query_model as run

    cfg = _params(params).with_text_model(text_model)
    typer.echo(f"query model written to {run(data, items, text_emb, retrieval, out, cfg)}")


@app.command("train-intents", rich_help_panel=STAGES)
def train_intents(intents: Annotated[Path, typer.Option(help="clean service_intents.parquet")],
                  phrasings: Annotated[Path, typer.Option(help="clean service_phrasings.parquet")],
                  labels: Annotated[Path, typer.Option(help="query_labels.parquet")], items: ItemsOpt, data: DataDir,
                  lexical: Annotated[Path, typer.Option(help="folder written by build-lexical-index")],
                  text_model: TextModelOpt, out: OutDir,
                  metrics: Annotated[Path, typer.Option(help="the held-out figures (.json)")],
                  params: ParamsOpt = DEFAULT_PARAMS) -> None:
    """The help centre's intent classifier: service questions answered or handed over, product searches left be."""
    from shoprec.stages.train_intents import train_intents as run

    cfg = _params(params).with_text_model(text_model)
    written = run((intents, phrasings), labels, items, data, lexical, out, metrics, cfg)
    typer.echo(f"intent classifier written to {written}")


@app.command("evaluate-search", rich_help_panel=STAGES)
def evaluate_search(labels: Annotated[Path, typer.Option(help="query_labels.parquet")], items: ItemsOpt,
                    lexical: Annotated[Path, typer.Option(help="folder written by build-lexical-index")],
                    query_model: Annotated[Path, typer.Option(help="folder written by train-query-model")],
                    user_vectors: Annotated[Path, typer.Option(help="the final two-tower's stored vectors (.npz)")],
                    logged: Annotated[Path, typer.Option(help="the split's scored window (test.parquet): its searches")],
                    text_model: TextModelOpt, out: OutDir, params: ParamsOpt = DEFAULT_PARAMS) -> None:
    """nDCG@10, MRR, Recall@50, zero-result rate of lexical, semantic, hybrid and personalised search;
    first-choice MRR on the scored window's logged searches."""
    from shoprec.stages.evaluate_search import evaluate_search as run

    cfg = _params(params).with_text_model(text_model)
    typer.echo(f"search metrics written to {run(labels, items, lexical, query_model, user_vectors, logged, out, cfg)}")


@app.command(rich_help_panel=USE)
def search(
    query: Annotated[str, typer.Argument(help="what the shopper typed")],
    user: Annotated[Optional[str], typer.Option(help="user id: personalise with the ranking model")] = None,
    k: Annotated[int, typer.Option(min=1, max=100, help="number of results")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Hybrid product search on the models of the last dvc repro: parsed query and results."""
    import json

    from shoprec.search.store import load_layout_engine

    try:
        engine = load_layout_engine(_params(params), personalise=user is not None)
    except FileNotFoundError as exc:
        _fail(f"no search models ({exc}); run `dvc repro` (or `shoprec run`) first")
    result = engine.search(query, user, k)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(json.dumps(result["parsed"]))
    for rank, item in enumerate(result["items"], 1):
        typer.echo(f"{rank:>3}. {item['item_id']:<10} {item['score']:.4f}  {item['title']}  ({item['price']:.2f})")


@app.command("export-feedback", rich_help_panel=SERVING)
def export_feedback(
    db: Annotated[str, typer.Option(help="the service's store: its SQLite file or postgresql:// URL")],
    out: Annotated[Optional[Path], typer.Option(help="batch folder (default: params ingest.feedback_dir)")] = None,
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Write the accepted feedback not yet exported as one Parquet batch, an input of the ingest stage."""
    import json

    import pyarrow.parquet as pq

    with _store_at(db, "export-feedback") as store:
        path = store.export_events(out or Path(_params(params).ingest.feedback_dir))
    count = pq.read_metadata(path).num_rows if path else 0
    typer.echo(json.dumps({"path": str(path) if path else None, "count": count}))


@app.command("export-impressions", rich_help_panel=SERVING)
def export_impressions(
    db: Annotated[str, typer.Option(help="the service's store (it keeps the impressions too): its SQLite file "
                                         "or postgresql:// URL")],
    out: Annotated[Optional[Path], typer.Option(help="batch folder (default: params serving.impressions_dir)")] = None,
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Write the impressions not yet exported as one Parquet batch; delete those older than serving.impressions_days."""
    import json

    serving = _params(params).serving
    with _store_at(db, "export-impressions") as store:
        done = store.export_impressions(out or Path(serving.impressions_dir), serving.impressions_days)
    typer.echo(json.dumps({"path": str(done.path) if done.path else None, "count": done.count,
                           "expired": done.expired, "expired_files": [str(p) for p in done.expired_files]}))


@contextmanager
def _store_at(db: str, command: str):
    """The store at ``db`` (a file or URL); any failure of it ends ``command`` with one line naming it."""
    from shoprec.config import missing
    from shoprec.serving.store import StoreError, open_store

    try:
        absent = missing(db)
    except ValueError as exc:
        _fail(f"{command}: --db: {exc}")
    if absent:
        _fail(f"{db}: no feedback database (the service creates it when it starts)")
    try:
        yield open_store(db)
    except StoreError as exc:
        _fail(f"{command}: {exc}")


@app.command(rich_help_panel=STAGES)
def package(
    out: Annotated[Path, typer.Option(help="the serving bundle (a folder, replaced)")] = LAYOUT.bundle.folder,
    record: Annotated[Path, typer.Option(help="the run's tags and commit (untracked)")] = LAYOUT.package_record,
    bento: Annotated[bool, typer.Option(help="also run `bentoml build`")] = True,
    system: Annotated[str, typer.Option(help="what to package: shoprec (the gated model) or a baseline the "
                                             "evaluation compares (popularity, own_history, itemknn, ease, "
                                             "two_tower), e.g. as an experiment's challenger; a baseline goes to "
                                             "var/systems/NAME unless --out/--record say otherwise")] = "shoprec",
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Bundle the gated models (or a baseline), import them into the BentoML model store and build the bento."""
    import json

    from shoprec.serving.bundle import GATED
    from shoprec.stages.package import package as run_package

    if system != GATED:  # the DVC-tracked bundle and its record stay the gated model's
        out = LAYOUT.systems / system if out == LAYOUT.bundle.folder else out
        record = LAYOUT.systems / f"{system}.json" if record == LAYOUT.package_record else record
    try:
        done = run_package(LAYOUT, _params(params), params, out, record, bento, system)
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        _fail(f"package: {exc}")
    typer.echo(json.dumps(done, indent=2))


@app.command(rich_help_panel=SERVING)
def promote(
    model: Annotated[Optional[str], typer.Option(help="model-store tag (default: the last package stage's)")] = None,
    from_experiment: Annotated[bool, typer.Option(
        "--from-experiment", help="promote the experiment's challenger, only if its report says ship "
                                  "(reads the logs as `shoprec experiment report` does)")] = False,
    name: ExperimentNameOpt = None,
    share: ShareOpt = None,
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Smoke-test a packaged model in a real server, then make it the one `shoprec serve` serves."""
    import json

    from shoprec.serving.promote import NotShipped, SmokeTestFailed, promote_shipped
    from shoprec.serving.promote import promote as run_promote

    cfg = _params(params)
    if from_experiment and model:
        _fail("promote: give --model or --from-experiment, not both (the experiment names its challenger)")
    try:
        if from_experiment:
            record = promote_shipped(Path("."), cfg.serving, _experiment_report(params, name, share))
        else:
            record = run_promote(Path("."), Path(cfg.serving.promoted_file), model)
    except (NotShipped, SmokeTestFailed, FileNotFoundError) as exc:
        _fail(f"not promoted: {exc}")
    typer.echo(json.dumps(record, indent=2))


experiment_app = typer.Typer(no_args_is_help=True, help="A/B experiments between the served models.")
app.add_typer(experiment_app, name="experiment", rich_help_panel=SERVING)


def _experiment_report(params: Path, name: Optional[str], share: Optional[float]) -> dict:
    """The report on the exported impression and feedback batches; bad logs end the command with one line."""
    from shoprec.experiments.attribution import ReportInputError
    from shoprec.experiments.report import repo_report

    try:
        return repo_report(Path("."), _params(params), name, share)
    except ReportInputError as exc:
        _fail(f"experiment report: {exc}")


@experiment_app.command("report")
def experiment_report(
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON (default: markdown)")] = False,
    name: ExperimentNameOpt = None,
    share: ShareOpt = None,
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Per variant: users, impressions, CTR, carts, conversion, revenue; the differences with 95% CIs; SRM; decision."""
    import json

    from shoprec.experiments.report import markdown

    result = _experiment_report(params, name, share)
    typer.echo(json.dumps(result, indent=2) if as_json else markdown(result))


@app.command(rich_help_panel=SERVING)
def simulate(
    url: Annotated[str, typer.Option(help="the running service, e.g. http://127.0.0.1:3000")],
    shoppers: Annotated[int, typer.Option(help="simulated shoppers (users of the sample storefront)")],
    seed: Annotated[int, typer.Option(help="seeds which shoppers, when they visit and what they do")],
    days: Annotated[int, typer.Option(min=1, max=365, help="simulated days after the training data's last one")] = 7,
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Simulated shoppers (the sample generator's tastes) ask for recommendations and send feedback; a JSON summary."""
    import json
    import urllib.error

    from shoprec.experiments import simulate as sim

    ingest = _params(params).ingest
    if ingest.source != "sample":
        _fail(f"simulate: ingest.source is {ingest.source!r}; the simulated shoppers are the sample storefront's, "
              "so the served model must be trained on ingest.source: sample")
    sample = ingest.sample
    if not url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
        _fail(f"simulate --url {url}: only a service on this machine (http://127.0.0.1:PORT): the simulator is a test tool")
    try:
        typer.echo(json.dumps(sim.over_http(url, sim.world(sample), shoppers, seed, days, sample), indent=2))
    except ValueError as exc:
        _fail(f"simulate: {exc}")
    except (urllib.error.URLError, OSError) as exc:
        _fail(f"simulate: {url}: {exc} (is the service running? start it with shoprec serve)")


@app.command(rich_help_panel=SERVING)
def serve(
    port: Annotated[int, typer.Option(help="HTTP port")] = 3000,
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    model: Annotated[Optional[str], typer.Option(help="model-store tag (default: the promoted model, else the last package)")] = None,
    feedback_db: Annotated[Optional[str], typer.Option(help="feedback store: a SQLite file or postgresql:// URL "
                                                            "(default: params serving.feedback_db)")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="server processes (default: params serving.workers)")] = None,
    impressions: Annotated[Optional[bool], typer.Option(
        "--impressions/--no-impressions", help="log what each answer showed (default: the model's params "
                                               "serving.impressions)")] = None,
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Serve the models of the last `dvc repro` over HTTP (wraps `bentoml serve`), with the experiment
    of params serving.experiment when it names one and real-time /recommend as serving.realtime says."""
    import os

    from shoprec.config import resolved
    from shoprec.serving.experiment import ENV as EXPERIMENT_ENV
    from shoprec.serving.process import bind_problem, run_foreground
    from shoprec.serving.promote import challenger_tag, served_tag
    from shoprec.serving.realtime import ENV as REALTIME_ENV

    cfg = _params(params)
    if problem := bind_problem(host, port):
        _fail(f"serve: {problem}")
    try:
        tag = model or served_tag(Path("."), Path(cfg.serving.promoted_file))
    except FileNotFoundError as exc:
        _fail(str(exc))
    try:
        store = resolved(feedback_db or cfg.serving.feedback_db, Path("."))
    except ValueError as exc:
        _fail(f"serve: --feedback-db: {exc}")
    env = {"SHOPREC_MODEL": tag, "SHOPREC_FEEDBACK_DB": store}
    if workers:
        env["SHOPREC_WORKERS"] = str(workers)
    if impressions is not None:
        env["SHOPREC_IMPRESSIONS"] = str(int(impressions))
    experiment = cfg.serving.experiment
    if experiment.name:
        try:  # `pending`: the retrained model the feedback flow left in serving.challenger_file
            experiment = experiment.model_copy(update={"challenger": challenger_tag(cfg.serving)})
        except FileNotFoundError as exc:
            _fail(f"serve: {exc}")
    env[EXPERIMENT_ENV] = experiment.model_dump_json() if experiment.name else ""
    env[REALTIME_ENV] = cfg.serving.realtime.model_dump_json()
    arms = (f" (experiment {experiment.name}: {experiment.share:g} of shoppers get {experiment.challenger})"
            if experiment.name else "")
    typer.echo(f"serving {tag}{arms} on http://{host}:{port} (storefront: http://{host}:{port}/ui/)")
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    raise typer.Exit(run_foreground([bentoml, "serve", "shoprec.serving.service:Shoprec", "--host", host,
                                     "--port", str(port)], os.environ | env))


@app.command(rich_help_panel=USE)
def run(
    stage: Annotated[Optional[str], typer.Argument(help="reproduce up to this dvc.yaml stage (default: all)")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="params.yaml key=value to write first (repeatable)")] = None,
) -> None:
    """Run the pipeline with DVC (`dvc repro`), showing each stage as it runs, and say where the outputs are."""
    from shoprec.pipeline import parse_overrides, reproduce, set_params

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    try:
        overrides = parse_overrides(set_ or [])
        if overrides:
            set_params(overrides)
            typer.echo(f"params.yaml updated: {overrides}")
    except (ValueError, ParamsError) as exc:
        _fail(str(exc))
    try:
        summary = reproduce(stage, write=write)
    except Exception as exc:  # DVC wraps stage failures; show its message, not a traceback
        _fail(f"pipeline failed: {exc}")
    typer.echo(summary)
    if LAYOUT.bundle.manifest.is_file() and stage in (None, "package"):
        from shoprec.serving.bento import serve_instructions

        typer.echo("\n" + serve_instructions(LAYOUT.bundle.folder))


@app.command(rich_help_panel=USE)
def tune(
    out: Annotated[Path, typer.Option(help="the table of trials (CSV), best first")] = LAYOUT.reports.tuning,
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Search params.yaml's tune.grid on the validation window (one DVC experiment per combination; test unread)."""
    from shoprec.tuning import tune as run_tune

    cfg = _params(params).tune
    if not cfg.grid:
        _fail("tune: params.yaml tune.grid is empty; list the keys and values to try, e.g. ranking.epochs: [1, 2]")
    try:
        table, best = run_tune(Path("."), cfg, out)
    except RuntimeError as exc:
        _fail(f"tune: {exc}")
    typer.echo(table.to_string(index=False, max_colwidth=24))
    column = f"shoprec {cfg.metric} {cfg.view}"
    settings = " ".join(f"--set {k}={v}" for k, v in best.items())
    typer.echo(f"\nchosen on the validation window ({column}, the committed setting kept unless beaten without "
               f"losing search's first-choice MRR): {best}\ntable: {out}\n"
               f"score it on test once: shoprec run {settings}")


flow_app = typer.Typer(no_args_is_help=True, help="Prefect flows (ephemeral Prefect unless PREFECT_API_URL is set).")
app.add_typer(flow_app, name="flow", rich_help_panel=FLOWS)
RootOpt = Annotated[Path, typer.Option(help="repository root (dvc.yaml, params.yaml, flows/)")]


@flow_app.command("train")
def flow_train(
    source: Annotated[Optional[Source], typer.Option(help="ingest.source to set first")] = None,
    path: Annotated[Optional[str], typer.Option(help="ingest.path to set first (file or folder)")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="params.yaml key=value (repeatable)")] = None,
    package: Annotated[bool, typer.Option(help="also run the package stage, if dvc.yaml has one")] = False,
    push: Annotated[bool, typer.Option(help="dvc push the outputs to the configured remote at the end")] = False,
    root: RootOpt = Path("."),
) -> None:
    """Run the training flow: every dvc.yaml stage as a Prefect task, with retries and artifacts."""
    from shoprec.orchestration.deployments import load_flow
    from shoprec.pipeline import parse_overrides

    try:
        overrides = parse_overrides(set_ or [])
    except ValueError as exc:
        _fail(str(exc))
    state = load_flow("flows/train.py:train", root)(
        source=source.value if source else None, path=path, overrides=overrides, package=package, push=push, root=str(root), return_state=True
    )
    if not state.is_completed():
        _fail(f"flow {state.name}: {state.message}")
    for step, outcome in state.result().items():
        typer.echo(f"  {step:<16} {outcome}")


@flow_app.command("feedback")
def flow_feedback(
    min_events: Annotated[Optional[int], typer.Option(help="new events that trigger a retrain (default: params)")] = None,
    root: RootOpt = Path("."),
) -> None:
    """Run the feedback flow: export served feedback; past serving.feedback_min_events, retrain, gate, smoke-test:
    the new model becomes the pending challenger (an experiment's ship promotes it)."""
    import json

    from shoprec.orchestration.deployments import load_flow

    state = load_flow("flows/feedback.py:feedback", root)(root=str(root), min_events=min_events, return_state=True)
    if not state.is_completed():
        _fail(f"flow {state.name}: {state.message}")
    typer.echo(json.dumps(state.result(), indent=2))


@app.command("serve-flows", rich_help_panel=FLOWS)
def serve_flows(
    prefect_file: Annotated[Path, typer.Option(help="deployments and their schedules")] = Path("prefect.yaml"),
) -> None:
    """Serve the deployments of prefect.yaml with their cron schedules (needs a Prefect server)."""
    from shoprec.orchestration.deployments import serve_deployments

    serve_deployments(prefect_file)


def main() -> None:
    """The command, with the file system's refusals as one line each (exit 1), not a traceback.

    An ``--out`` that is a file, a folder without write permission, a full disk: the
    operator's to fix, and the path and the reason say all there is to say.
    """
    try:
        app()
    except OSError as exc:
        if exc.filename is None:  # not about a path: a bug or a lower-level failure, keep the traceback
            raise
        target = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        typer.secho(f"shoprec: {target}: {exc.strerror or exc}{_OS_HINTS.get(exc.errno, '')}", err=True,
                    fg=typer.colors.RED)
        raise SystemExit(1) from None


_OS_HINTS = {
    errno.EEXIST: " (a file is where a folder is needed: give a folder path, or move the file)",
    errno.ENOTDIR: " (a file is where a folder is needed: give a folder path, or move the file)",
    errno.EACCES: " (no permission: choose a location this user can write)",
    errno.EPERM: " (not permitted: choose a location this user can write)",
    errno.EROFS: " (read-only file system: choose another location)",
    errno.ENOSPC: " (the disk is full)",
}


if __name__ == "__main__":
    main()
