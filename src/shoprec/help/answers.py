"""The help desk the service asks: a query's verdict, and the answer filled from the shopper's own data.

An intent's answer is a template (``service_intents.answer``) whose ``{field}`` places are
filled from what the shop knows of the shopper (:data:`~shoprec.data.contracts.SERVICE_FIELDS`:
the date and an item of their last order, how many products they bought). An answer whose
fields the shop cannot fill (no shopper id, or no order in their history) is handed over:
a person can look the order up, a template cannot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shoprec.help.classifier import IntentClassifier, Verdict


@dataclass(frozen=True)
class Shopper:
    """What the answers may name: ``{field: text}``, empty for an unknown shopper."""

    facts: dict[str, str]


@dataclass
class HelpDesk:
    classifier: IntentClassifier
    answers: dict[str, dict]  # intent id -> {"answer": template, "fields": [field, ...]}

    @classmethod
    def load(cls, classifier: Path, answers: Path) -> "HelpDesk":
        return cls(IntentClassifier.load(classifier), json.loads(answers.read_text()))

    def card(self, vector: np.ndarray, shopper: Shopper) -> dict | None:
        """The help card of a query (None for a product search): intent, answer, confidence, hand-over, guesses."""
        verdict = self.classifier.verdicts(vector)[0]
        return self.reply(verdict, shopper) if verdict.service else None

    def reply(self, verdict: Verdict, shopper: Shopper) -> dict:
        """``verdict`` as an answer: the intent's template filled for ``shopper``, or a hand-over saying why."""
        guesses = [{"intent": i, "confidence": p} for i, p in verdict.guesses]
        out = {"service": verdict.service, "intent": verdict.intent, "answer": None,
               "confidence": round(verdict.confidence, 4), "handoff": verdict.handoff, "guesses": guesses,
               "reason": None}
        if verdict.handoff:
            out["reason"] = "no answer is sure enough; a person will take it from here"
        if verdict.intent is None:
            return out
        known = self.answers[verdict.intent]
        missing = [f for f in known["fields"] if f not in shopper.facts]
        if missing:
            return {**out, "intent": None, "handoff": True,
                    "reason": f"{verdict.intent} needs the shopper's {', '.join(missing)}, which the shop does not "
                              "have for this shopper; a person will look it up"}
        return {**out, "answer": known["answer"].format_map(shopper.facts)}
