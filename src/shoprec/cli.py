"""The ``shoprec`` command: every pipeline stage, callable by hand, by DVC and by Prefect.

Each subcommand is a thin shell over one stage function: it parses paths and options,
reads ``params.yaml`` and calls the function. Expected failures (bad data, bad params)
print one message and exit 1; a traceback means a bug.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from shoprec.config import DEFAULT_PARAMS, ParamsError, load_params

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])

ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml to read")]


def _fail(message: str) -> None:
    typer.secho(message, err=True, fg=typer.colors.RED)
    raise typer.Exit(1)


def _params(path: Path):
    try:
        return load_params(path)
    except ParamsError as exc:
        _fail(str(exc))


@app.command()
def ingest(
    out: Annotated[Path, typer.Option(help="folder for items/events/quarantine parquet and validation.json")],
    source: Annotated[Optional[str], typer.Option(help="sample | online_retail | files (default: params.yaml)")] = None,
    path: Annotated[Optional[Path], typer.Option(help="input file or folder (online_retail, files)")] = None,
    raw_only: Annotated[bool, typer.Option(help="stop before validation (the DVC 'ingest' stage)")] = False,
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Read a source into the canonical tables, validate them and quarantine bad rows."""
    from shoprec.data.ingest import DataValidationError, ingest as run_ingest, read_source, write_raw

    cfg = _params(params)
    source = source or cfg.ingest.source
    path = path if path is not None else (Path(cfg.ingest.path) if cfg.ingest.path else None)
    try:
        if raw_only:
            write_raw(read_source(source, path, cfg), out)
            typer.echo(f"raw tables of '{source}' written to {out}/")
            return
        result = run_ingest(source, path, out, cfg)
    except DataValidationError as exc:
        _fail(str(exc))
    typer.echo(result.summary())


@app.command()
def validate(
    raw: Annotated[Path, typer.Option(help="folder written by 'ingest --raw-only'")],
    out: Annotated[Path, typer.Option(help="folder for the clean tables, quarantine and report")],
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Validate raw tables (Great Expectations) into clean tables plus quarantine."""
    from shoprec.data.ingest import DataValidationError, read_raw, validate as run_validate

    cfg = _params(params)
    try:
        result = run_validate(read_raw(raw), out, cfg.ingest.max_invalid_share)
    except DataValidationError as exc:
        _fail(str(exc))
    typer.echo(result.summary())


@app.command()
def split(
    events: Annotated[Path, typer.Option(help="clean events.parquet")],
    out: Annotated[Path, typer.Option(help="folder for train/valid/test parquet")],
    source: Annotated[Optional[str], typer.Option(help="picks split.test_start (default: params.yaml)")] = None,
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Temporal train / validation / test split and test ground truth."""
    from shoprec.data.split import split as run_split

    cfg = _params(params)
    try:
        paths = run_split(events, out, source or cfg.ingest.source, cfg.split)
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(paths.summary.read_text())


@app.command()
def run(
    stage: Annotated[Optional[str], typer.Argument(help="reproduce up to this dvc.yaml stage (default: all)")] = None,
) -> None:
    """Run the whole pipeline with DVC (`dvc repro`) and say where the outputs are."""
    from shoprec.pipeline import reproduce

    try:
        summary = reproduce(stage)
    except Exception as exc:  # DVC wraps stage failures; show its message, not a traceback
        _fail(f"pipeline failed: {exc}")
    typer.echo(summary)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
