"""The sample help centre: its tables, and the service questions in the search log changing nothing else.

That the storefront's tables are the bytes they were before the help centre existed is
``test_sample_source.py::test_generated_tables_are_pinned``.
"""

from __future__ import annotations

import pandas as pd
import pytest

from shoprec.config import SampleParams
from shoprec.data.contracts import HANDOFF, SERVICE_INTENTS, SERVICE_PHRASINGS
from shoprec.data.sources.sample import generate

TINY = SampleParams(seed=7, n_items=300, n_users=100, n_events=5000, days=30, service_share=0.0)
@pytest.fixture(scope="module")
def without():
    return generate(TINY)


@pytest.fixture(scope="module")
def asked():
    return generate(TINY.model_copy(update={"service_share": 0.1}))


def test_service_questions_change_only_the_query_of_whole_searched_sessions(without, asked):
    pd.testing.assert_frame_equal(without.items, asked.items)
    pd.testing.assert_frame_equal(without.query_labels, asked.query_labels)
    changed = without.events["query"] != asked.events["query"]
    assert changed.any()
    others = [c for c in without.events.columns if c != "query"]
    pd.testing.assert_frame_equal(without.events[others], asked.events[others])
    assert (without.events.loc[changed, "query"] != "").all()  # only searches become questions
    sessions = set(asked.events.loc[changed, "session_id"])
    in_sessions = asked.events["session_id"].isin(sessions)
    assert (asked.events.loc[in_sessions, "query"].isin(asked.service_phrasings["phrasing"])
            | (without.events.loc[in_sessions, "query"] == "")).all()


def test_help_centre_has_intents_paraphrases_typos_and_hand_overs(without):
    intents, phrasings = without.service_intents, without.service_phrasings
    assert list(intents.columns) == SERVICE_INTENTS.names and list(phrasings.columns) == SERVICE_PHRASINGS.names
    assert 28 <= len(intents) <= 35 and intents["intent_id"].is_unique
    per_intent = phrasings["intent_id"].value_counts()
    assert set(per_intent.index) == set(intents["intent_id"]) | {HANDOFF}
    assert per_intent.min() >= 8 and per_intent[HANDOFF] >= 30
    assert phrasings["phrasing"].is_unique
    assert phrasings["phrasing"].str.contains("acount|ordr|recipt").any()  # typos
    assert intents["answer"].str.contains("{last_order_date}", regex=False).any()
