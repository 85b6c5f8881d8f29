"""What a scanner, a careless client, a broken store or a rough operator meets: a real `shoprec serve`."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def _log_after(server, offset: int, wanted: str, timeout: float = 10.0) -> str:
    """The server log written after ``offset``, once it holds ``wanted`` (workers flush their own lines)."""
    deadline = time.monotonic() + timeout
    while True:
        text = server.log.read_text(errors="replace")[offset:]
        if wanted in text or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def _raw_post(server, path: str, announced: int, body: bytes) -> socket.socket:
    """A POST whose body is shorter than its Content-Length says, on a socket left open."""
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {announced}\r\n\r\n".encode() + body)
    return sock


def _response(sock: socket.socket) -> str:
    """One whole HTTP response from ``sock`` (headers, then Content-Length bytes of body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
    while len(body) < length:
        body += sock.recv(4096)
    return (head + b"\r\n\r\n" + body).decode()


def test_unknown_urls_share_one_metrics_label(served):
    """A scanner's thousand URLs must not become a thousand series in every scrape."""
    with httpx.Client(timeout=30) as client:
        client.get(f"{served.url}/scan/warm-up")
        before = client.get(f"{served.url}/metrics").text.splitlines()
        codes = {client.get(f"{served.url}/scan/{uuid.uuid4().hex}/{n}").status_code for n in range(300)}
        assert client.get(f"{served.url}/ui/app.js").status_code == 200
        after = client.get(f"{served.url}/metrics").text

    assert codes == {404}
    assert "/scan" not in after and 'endpoint="(unknown)"' in after and 'endpoint="/ui"' in after
    assert len(after.splitlines()) - len(before) <= 60  # the /ui series, not 300 x 20 new ones


def test_client_mistakes_are_one_info_line_and_a_stalled_body_is_a_400(served):
    offset = len(served.log.read_text(errors="replace"))
    assert httpx.post(f"{served.url}/recommend", json={"user_id": "u", "k": "ten"}).status_code == 400
    assert httpx.post(f"{served.url}/similar", json={"item_id": "NO-SUCH"}).status_code == 404

    started = time.monotonic()
    stalled = _raw_post(served, "/recommend", 100, b'{"user_id": ')
    answer = _response(stalled)
    stalled.close()
    assert answer.startswith("HTTP/1.1 400") and "request body truncated: 12 of the 100 bytes" in answer
    assert time.monotonic() - started < 15  # serving.body_timeout_s (5 s), not the 30 s request timeout

    _raw_post(served, "/feedback", 500, b'{"events": [').close()  # hangs up mid-body
    log = _log_after(served, offset, "Client gone on /feedback")
    assert "Client error on /recommend [POST]: 400 k: Input should be a valid integer" in log
    assert "Client error on /similar [POST]: 404 unknown item_id 'NO-SUCH'" in log
    assert re.search(r"Client gone on /feedback \[POST\]: disconnected after \d+ of 500 body bytes", log)
    assert "Traceback" not in log and "[ERROR]" not in log


@pytest.mark.parametrize("route, body, says", [
    ("search", {"query": "red", "user_id": "u" * 201}, "at most 200 characters"),
    ("search", {"query": "red", "filters": {"min_price": float("nan")}}, "filter 'min_price' must be a finite number"),
    ("search", {"query": "red", "filters": {"colour": "r" * 300}}, "at most 200 characters"),
    ("feedback", {"events": [{"user_id": {"id": 1}, "item_id": "x", "event_type": "click",
                              "timestamp": "2024-05-01T10:00:00Z"}]}, "user_id: must be a string, not an object"),
    ("feedback", {"events": [{"user_id": "u", "item_id": "x", "event_type": "click", "timestamp": "2024-05-01",
                              "query": "q" * 200_000}]}, "query: longer than 200 characters (200000)"),
])
def test_strings_are_strings_of_bounded_length(served, route, body, says):
    content = json.dumps(body).encode()  # NaN as JavaScript writes it: JSON parsers in Python accept it
    response = httpx.post(f"{served.url}/{route}", content=content, headers={"content-type": "application/json"},
                          timeout=30)
    assert response.status_code == 400 and says in response.json()["error"] + str(response.json().get("detail"))
    assert len(response.content) < 2000  # a huge value is not echoed back


def test_a_store_that_stops_taking_writes_makes_the_server_unready_until_it_recovers(served, bundle):
    from immutable import immutable

    item = pd.read_parquet(bundle / "data/clean/items.parquet")["item_id"].iloc[0]
    events = {"events": [{"user_id": "U-health", "item_id": item, "event_type": "click",
                          "timestamp": "2024-05-01T10:00:00Z"}]}

    def readyz_until(status: int) -> bool:
        deadline = time.monotonic() + 20  # both workers probe their store at most every 5 s
        while time.monotonic() < deadline:
            if all(httpx.get(f"{served.url}/readyz").status_code == status for _ in range(6)):
                return True
            time.sleep(0.5)
        return False

    with immutable(served.feedback_db):
        refused = httpx.post(f"{served.url}/feedback", json=events, timeout=30)
        assert refused.status_code == 503, refused.text
        assert readyz_until(503)
    assert readyz_until(200)
    assert httpx.post(f"{served.url}/feedback", json=events, timeout=30).json()["accepted"] == 1


def _serve(root: Path, db: Path, port: int = 0) -> subprocess.CompletedProcess:
    shoprec = str(Path(sys.executable).with_name("shoprec"))
    return subprocess.run([shoprec, "serve", "--port", str(port), "--feedback-db", str(db)], cwd=root,
                          capture_output=True, text=True, timeout=180)


def test_refuses_to_start_on_a_corrupt_or_unwritable_store_naming_it(pipeline_run, tmp_path):
    from immutable import immutable

    from shoprec.serving.sqlite_store import SqliteStore

    store = SqliteStore(tmp_path / "pages.db")
    store.append([{"user_id": f"u{i}", "item_id": "x", "event_type": "click", "timestamp": "2024-05-01T10:00:00Z",
                   "query": f"some words {i}"} for i in range(3000)], None)
    with store.path.open("r+b") as f:  # damage data pages in the middle, keep the header
        f.seek(store.path.stat().st_size // 2)
        f.write(bytes(range(256)) * 32)
    header = tmp_path / "header.db"
    header.write_bytes(b"\0" * 100 + store.path.read_bytes()[100:])

    # Damaged pages read back as "malformed" or fail quick_check, depending on which pages the bytes hit.
    for db, says in ((store.path, "(malformed|damaged pages)"), (header, "file is not a database")):
        result = _serve(pipeline_run.root, db)
        out = result.stdout + result.stderr
        assert result.returncode == 1, out[-3000:]
        assert re.search(f"refusing to serve: feedback store {re.escape(str(db))}: .*{says}.*corrupt", out), out[-3000:]
        assert "does not load" not in out  # the model is fine: the store is to blame
    writable = SqliteStore(tmp_path / "readonly.db").path
    with immutable(writable):
        result = _serve(pipeline_run.root, writable)
    assert result.returncode == 1 and f"feedback store {writable}: attempt to write a readonly database" in result.stderr


def test_a_busy_port_is_one_line(pipeline_run, served, tmp_path):
    port = int(served.url.rsplit(":", 1)[1])
    result = _serve(pipeline_run.root, tmp_path / "f.db", port)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"serve: port {port} on 127.0.0.1 is in use (another server, perhaps an earlier "
                                     "`shoprec serve`); stop it or choose another --port")
