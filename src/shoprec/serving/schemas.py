"""What each endpoint answers, as pydantic models.

Declaring the answers (instead of ``-> dict``) documents them in the service's OpenAPI
page and lets BentoML write them with pydantic's own JSON encoder (``model_dump_json``);
a ``dict`` answer is first validated against a generic root model and copied, which cost
more server CPU per request than the whole of ``/recommend``'s own work.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Item(BaseModel):
    item_id: str
    title: str
    category: str
    price: float
    score: float
    explanation: str = Field(description="why this item is shown, e.g. 'because you bought X'")


class Answer(BaseModel):
    model_version: str = Field(description="the served model: <git commit>-<data hash>-<content hash>")


class Served(Answer):
    """An answer that shows items: logged as an impression, and named by feedback on its items."""

    request_id: str = Field(description="this answer's id: send it, with the item's 0-based position, in the "
                                        "feedback events of what the shopper did with its items")
    variant: str = Field(description="the experiment arm that answered ('champion' while no experiment runs)")


class Recommendations(Served):
    user_id: str
    known_user: bool = Field(description="false: a new visitor, who got the cold-start list")
    realtime: bool = Field(description="true: computed now from the shopper's history and recent_items; false: "
                                       "the list precomputed at packaging (real-time off, past its deadline or failed)")
    items: list[Item]


class Guess(BaseModel):
    intent: str
    confidence: float


class Help(BaseModel):
    """The help centre's answer to a customer-service question (docs/service_intents.md)."""

    service: bool = Field(description="a customer-service question (false: a product search, nothing to answer)")
    intent: str | None = Field(description="the answered intent; null on a hand-over")
    answer: str | None = Field(description="the answer, filled from the shopper's history; null on a hand-over")
    confidence: float = Field(description="the classifier's probability of the intent (of the best guess on a "
                                          "hand-over)")
    handoff: bool = Field(description="true: route the shopper to a person (no answer is sure enough, or it "
                                      "needs data the shop does not have for this shopper)")
    guesses: list[Guess] = Field(description="the likeliest intents, best first")
    reason: str | None = Field(description="why the question is handed over")


class Assistance(Help, Answer):
    pass


class SearchResults(Served):
    parsed: dict[str, Any] = Field(description="what the query was understood to ask for: free text, spelling "
                                               "corrections, price range, colour (and the other colours a cut-off "
                                               "colour word may mean), category intent and confidence, "
                                               "other readings of typed words (guesses) and the catalog words the "
                                               "click logs translate them into (expansion)")
    help: Help | None = Field(None, description="a customer-service question's help card, shown above the items; "
                                                "null for a product search")
    items: list[Item]


class SimilarItems(Served):
    item_id: str
    items: list[Item]


class Rejection(BaseModel):
    index: int = Field(description="position of the event in the request")
    field: str = Field(description="the event field that broke a rule ('event' for a whole event)")
    reason: str
    value: Any = Field(description="what the event had in that field")
    example: Any = Field(description="a valid value of the field")


class FeedbackReceipt(Answer):
    accepted: int = Field(description="events stored (durably) by this request")
    duplicates: int = Field(description="events whose event_id was stored before: not stored twice")
    unattributed: int = Field(description="events stored whose request_id names no logged answer")
    rejected: list[Rejection]


class Shopper(Answer):
    user_id: str
    known_user: bool
    recent_purchases: list[Item]


class Shoppers(Answer):
    users: list[str]
