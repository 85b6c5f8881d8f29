"""Fuzzing the HTTP API: whatever a client sends, the answer is a 2xx or a 4xx, and quick.

Hypothesis builds request bodies from each endpoint's fields: well-typed values, values
of every other JSON type (huge integers, NaN, deep nesting, long and odd strings),
missing fields, unknown fields, and bodies that are not JSON objects at all. They go to
the real server of the suite. Seeded (derandomize): a failure reproduces.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

EXAMPLES = 100
SLOWEST_SECONDS = 2.0

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=300),
                    st.sampled_from(["", " ", "u1", "I000001", "red mug under 20", "view", "purchase",
                                     "2024-05-01T10:00:00Z", "\x00", "\ud7ff", "é" * 250]))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                           max_leaves=12)
event = st.one_of(json_values, st.fixed_dictionaries({}, optional={
    "user_id": json_values, "item_id": json_values, "event_type": st.sampled_from(["view", "click", "buy"]),
    "timestamp": st.sampled_from(["2024-05-01T10:00:00Z", "2099-01-01", "not a time"]) | json_values,
    "session_id": json_values, "query": json_values, "quantity": json_values, "request_id": json_values,
    "position": json_values, "event_id": json_values}))
FIELDS = {
    "recommend": {"user_id": json_values, "k": json_values, "exclude_purchased": json_values, "diversity": json_values,
                  "session_id": json_values, "recent_items": json_values},
    "search": {"query": json_values, "user_id": json_values, "k": json_values, "session_id": json_values,
               "filters": st.dictionaries(st.sampled_from(["category", "colour", "min_price", "max_price", "size"]),
                                          json_values, max_size=3) | json_values},
    "similar": {"item_id": json_values, "k": json_values, "user_id": json_values, "session_id": json_values},
    "feedback": {"events": st.lists(event, max_size=5) | json_values},
    "user": {"user_id": json_values},
    "users": {"limit": json_values},
}


def bodies(route: str) -> st.SearchStrategy[bytes]:
    fields = st.fixed_dictionaries({}, optional=FIELDS[route])
    extra = st.dictionaries(st.text(max_size=8), json_values, max_size=2)
    objects = st.builds(lambda known, more: {**more, **known}, fields, extra)
    as_json = st.one_of(objects, json_values).map(lambda body: json.dumps(body).encode())
    return st.one_of(as_json, as_json, as_json, st.binary(max_size=64))


@pytest.mark.parametrize("route", sorted(FIELDS))
def test_no_request_gets_a_server_error_or_a_slow_answer(served, route):
    slowest: list[float] = [0.0]
    with httpx.Client(base_url=served.url, timeout=30, headers={"content-type": "application/json"}) as client:

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(body=bodies(route))
        def post(body: bytes) -> None:
            started = time.monotonic()
            response = client.post(f"/{route}", content=body)
            slowest[0] = max(slowest[0], time.monotonic() - started)
            assert response.status_code < 500, (route, body[:300], response.status_code, response.text[:300])
            assert response.status_code in (200, 400, 404, 413), (route, body[:300], response.text[:300])
            if response.status_code >= 400:
                assert isinstance(response.json()["error"], str)

        post()
    assert slowest[0] < SLOWEST_SECONDS, f"slowest /{route} answer: {slowest[0]:.2f} s"
