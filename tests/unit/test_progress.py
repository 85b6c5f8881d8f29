"""Live progress: `shoprec run` and flow runs show each stage as DVC runs it, not at the end."""

from __future__ import annotations

from itertools import count

from shoprec.orchestration.tasks import LogLines
from shoprec.pipeline import StageProgress

DVC_OUTPUT = [
    "Running stage 'ingest':\n> shoprec ingest --raw-only --out data/raw\nraw tables writ",
    "ten\n",
    "Stage 'validate' didn't change, skipping\n",
    "Running stage 'embed_items':\n> shoprec embed-items\n",
    "\rembedding:  50%|#####     | 1/2\rembedding: 100%|##########| 2/2",
    "\nRunning stage 'train_retrieval':\nEpoch 1/2\n",
]


def feed_all(progress: StageProgress, pieces: list[str]) -> None:
    for piece in pieces:
        progress.feed(piece)


def test_each_stage_is_announced_as_it_starts_and_timed_when_it_ends():
    shown: list[str] = []
    seconds = count()
    progress = StageProgress(shown.append, clock=lambda: float(next(seconds)))
    progress.feed(DVC_OUTPUT[0])
    assert any("ingest: running" in s for s in shown)  # before the stage has finished
    feed_all(progress, DVC_OUTPUT[1:])
    progress.close()
    text = "".join(shown)
    lines = text.splitlines()
    assert "raw tables written" in lines  # the stage's own output passes through whole
    assert [line.split("] ", 1)[1] for line in lines if line.startswith("[")] == [
        "ingest: running", "ingest: ran in 1.0 s", "validate: up to date, skipped", "embed_items: running",
        "embed_items: ran in 1.0 s", "train_retrieval: running", "train_retrieval: ran in 1.0 s",
        "pipeline done in 7.0 s: 3 stage(s) ran, 1 up to date"]
    assert "\rembedding:  50%" in text  # progress bars keep their carriage returns
    # a stage's end is told before the next stage's first line
    assert text.index("embed_items: ran in") < text.index("Running stage 'train_retrieval'")


def test_a_failed_stage_is_named():
    shown: list[str] = []
    progress = StageProgress(shown.append)
    progress.feed("Running stage 'split':\n> shoprec split\nERROR: failed to reproduce 'split'")
    progress.close(failed=True)
    text = "".join(shown)
    assert "split: failed after" in text and "pipeline stopped" in text
    assert "ERROR: failed to reproduce 'split'\n" in text  # the unfinished last line is shown too


def test_flow_logs_get_whole_lines_as_they_arrive():
    logged: list[str] = []
    lines = LogLines(logged.append)
    lines("Epoch 1/2\nloss: 0.")
    assert logged == ["Epoch 1/2"]
    lines("5\r\rbar 100%\n\n")
    lines("tail without newline")
    lines.flush()
    assert logged == ["Epoch 1/2", "loss: 0.5", "bar 100%", "tail without newline"]


def test_tensorflow_start_up_chatter_is_not_shown():
    shown: list[str] = []
    progress = StageProgress(shown.append)
    progress.feed("Running stage 'embed_items':\n"
                  "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                  "I0000 00:00:1796442362.352035   19272 port.cc:153] oneDNN custom operations are on.\n"
                  "E0000 00:00:1796442367.263840   19272 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n"
                  "ValueError: a real error\n")
    progress.close(failed=True)
    text = "".join(shown)
    assert "absl" not in text and "oneDNN" not in text and "cuInit" not in text
    assert "ValueError: a real error" in text
