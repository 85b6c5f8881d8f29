"""Which trial `shoprec tune` applies: the committed setting unless beaten on the metric without losing search."""

from __future__ import annotations

import pandas as pd

from shoprec.stages.evaluate_search import first_choice_mrr
from shoprec.tuning import SEARCH_COLUMN, choose

METRIC = "shoprec recall@20 new"


def trials(recall: list[float], search: list[float] | None) -> pd.DataFrame:
    table = pd.DataFrame({"text.finetune_layers": ["0", "2", '"all"'], METRIC: recall})
    return table if search is None else table.assign(**{SEARCH_COLUMN: search})


def chosen(table: pd.DataFrame, committed: str = "0") -> str:
    return choose(table, {"text.finetune_layers": committed}, METRIC)["text.finetune_layers"]


def test_a_trial_replaces_the_committed_setting_only_when_it_wins_both():
    assert chosen(trials([0.20, 0.22, 0.21], [0.50, 0.49, 0.50])) == '"all"'  # 2 loses search; all ties it
    assert chosen(trials([0.20, 0.22, 0.23], [0.50, 0.51, 0.49])) == "2"  # the best by the metric loses search
    assert chosen(trials([0.20, 0.19, 0.18], [0.50, 0.60, 0.70])) == "0"  # search alone does not change it
    assert chosen(trials([0.20, 0.22, 0.18], [0.50, 0.60, 0.70]), committed="2") == "2"


def test_without_logged_searches_or_the_committed_setting_the_metric_decides():
    assert chosen(trials([0.20, 0.22, 0.21], None)) == "2"
    assert chosen(trials([0.20, 0.22, 0.21], [float("nan")] * 3)) == "2"
    assert chosen(trials([0.20, 0.22, 0.23], [0.50, 0.51, 0.49]), committed="4") == '"all"'


def test_first_choice_mrr_weighs_each_search_and_ranks_each_query_once():
    chosen_items = pd.DataFrame({"query": ["mug", "mug", "scarf", "lamp"], "item_id": ["I1", "I2", "I3", "I9"]})
    lists = {"mug": ["I2", "I1"], "scarf": ["I4", "I5", "I3"], "lamp": []}
    calls = []

    def ranker(query: str, mode: str) -> list[str]:
        calls.append((query, mode))
        return lists[query] if mode != "lexical" else []

    out = first_choice_mrr(chosen_items, ranker)
    assert out["searches"] == 4 and out["lexical"] == 0.0
    assert out["semantic"] == out["hybrid"] == round((1 / 2 + 1 + 1 / 3 + 0) / 4, 4)
    assert sorted(calls) == sorted((q, m) for q in lists for m in ("lexical", "semantic", "hybrid"))
    assert first_choice_mrr(chosen_items.iloc[:0], ranker) == {"searches": 0}
