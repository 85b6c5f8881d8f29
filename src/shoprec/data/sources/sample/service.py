"""The sample shop's help centre: service intents, their phrasings, and service questions in the search log.

Shoppers type questions into the search box as often as product names. The generator
writes the two help-centre tables (:data:`~shoprec.data.contracts.SERVICE_INTENTS`,
:data:`~shoprec.data.contracts.SERVICE_PHRASINGS`) from :data:`INTENTS`, each base
phrasing also as shoppers vary it (a typo, a greeting, no question mark), plus
:data:`OUT_OF_SCOPE`: service questions no template answers (intent ``handoff``, the
ground truth for handing a shopper over to a person).

:func:`ask_in_logs` turns a share of the logged searches into service questions. It draws
from a random stream of its own (seeded from the sample seed and :data:`STREAM`), after
every other table is made, so items, query labels and every other cell of the events are
the same bytes with or without it (``tests/unit/test_sample_service.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shoprec.data.contracts import HANDOFF
from shoprec.data.sources.sample.queries import typo

STREAM = 22  # the service stream's seed is (sample seed, STREAM): independent of the storefront's draws

# intent id -> (answer template, fields it fills from the shopper's data, base phrasings)
INTENTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "order_status": ("Your last order was placed on {last_order_date}; track it under Account > Orders.",
                     "last_order_date", ("where is my order", "has my order shipped", "track my parcel",
                                         "when will my order arrive", "order status", "my package hasn't come")),
    "last_order": ("Your last order ({last_order_date}) included {last_order_item}.", "last_order_date last_order_item",
                   ("what did i order last time", "show my last order", "what was in my previous order",
                    "which item did i buy last")),
    "order_count": ("You have bought {purchases} different products from us so far.", "purchases",
                    ("how many orders have i made", "how many things have i bought", "my purchase history count")),
    "cancel_order": ("Orders can be cancelled within 2 hours of purchase under Account > Orders > Cancel.", "",
                     ("how do i cancel my order", "cancel an order", "i want to cancel my purchase",
                      "can i still cancel")),
    "change_order": ("You can change the items or address of an order until it ships, under Account > Orders.", "",
                     ("can i change my order", "edit my order", "add an item to my order", "modify order")),
    "return_item": ("Returns are free within 30 days: start one under Account > Orders > Return.", "",
                    ("how do i return shoes", "return an item", "i want to send something back",
                     "how to return a product", "return policy")),
    "refund_status": ("Refunds reach your card 3-5 working days after we receive the return.", "",
                      ("where is my refund", "when will i get my money back", "refund not received",
                       "how long do refunds take")),
    "exchange": ("To exchange for another size or colour, return the item and place a new order.", "",
                 ("can i exchange an item", "swap for a different size", "exchange for another colour")),
    "damaged_item": ("Sorry! Send us a photo under Account > Orders > Report a problem and we replace it.", "",
                     ("my item arrived damaged", "the product is broken", "received a faulty item",
                      "item came cracked")),
    "wrong_item": ("Sorry! Report the wrong item under Account > Orders > Report a problem; the return is free.", "",
                   ("i got the wrong item", "received the wrong product", "this is not what i ordered")),
    "missing_item": ("Part of an order can ship separately; if it is not there in 3 days, report it.", "",
                     ("an item is missing from my order", "my parcel was incomplete", "not everything arrived")),
    "delivery_time": ("Standard delivery takes 2-4 working days, express 1 day.", "",
                      ("how long does delivery take", "when will it be delivered", "shipping time",
                       "how fast do you ship")),
    "delivery_countries": ("We deliver to the UK, Ireland and every EU country.", "",
                           ("do you deliver to ireland", "do you ship internationally", "which countries do you ship to",
                            "can i order from france")),
    "delivery_cost": ("Delivery is free over 50; below that standard delivery is 3.95.", "",
                      ("how much is shipping", "is delivery free", "delivery charges", "shipping cost")),
    "express_delivery": ("Express delivery (next working day) costs 7.95 if you order before 2 pm.", "",
                         ("do you have next day delivery", "express shipping", "can i get it tomorrow")),
    "change_address": ("Change the delivery address under Account > Addresses before the order ships.", "",
                       ("how do i change my delivery address", "update my address", "wrong address on my order")),
    "payment_methods": ("We take Visa, Mastercard, PayPal, Apple Pay and Klarna.", "",
                        ("what payment methods do you accept", "can i pay with paypal", "do you take apple pay",
                         "payment options")),
    "payment_failed": ("A declined payment is usually the bank's check: try again or use another method.", "",
                       ("my payment was declined", "payment failed", "card not accepted", "why was my card refused")),
    "pay_later": ("Pay in 3 instalments with Klarna at checkout, interest free.", "",
                  ("can i pay in instalments", "buy now pay later", "do you offer klarna")),
    "invoice": ("Download the invoice of any order under Account > Orders > Invoice.", "",
                ("can i get an invoice", "i need a receipt", "vat invoice for my order")),
    "size_guide": ("Every product page has a size guide under the size picker.", "",
                   ("what size should i get", "size guide", "do your sizes run small", "size chart")),
    "stock_alert": ("Tap 'Notify me' on a sold-out product and we email you when it is back.", "",
                    ("when will it be back in stock", "item out of stock", "restock notification")),
    "discount_code": ("Enter a discount code in the basket; one code per order.", "",
                      ("how do i use a discount code", "promo code not working", "where do i enter my voucher",
                       "coupon code")),
    "student_discount": ("Students get 10% off: verify with your student email under Account.", "",
                         ("do you have a student discount", "student offer", "discount for students")),
    "gift_card": ("Gift cards come in 10 to 200 and never expire; redeem them at checkout.", "",
                  ("do you sell gift cards", "how do i use a gift card", "gift voucher balance")),
    "account_create": ("Create an account at checkout or under Sign in > New customer.", "",
                       ("how do i create an account", "sign up", "register an account", "open an account")),
    "password_reset": ("Use 'Forgot password' on the sign-in page; the link is valid for an hour.", "",
                       ("i forgot my password", "reset password", "can't log in", "locked out of my account")),
    "delete_account": ("Ask for deletion under Account > Privacy; we erase your data within 30 days.", "",
                       ("delete my account", "close my account", "remove my personal data")),
    "newsletter": ("Unsubscribe with the link at the bottom of any email, or under Account > Preferences.", "",
                   ("unsubscribe from emails", "stop sending me newsletters", "too many emails")),
    "contact": ("Our team answers at help@shop.example and by chat, 8 am to 8 pm every day.", "",
                ("how do i contact you", "customer service phone number", "talk to customer support",
                 "opening hours of customer service")),
    "warranty": ("Every product has a 2-year warranty; report a fault under Account > Orders.", "",
                 ("is there a warranty", "guarantee on products", "my item stopped working after a month")),
}

# service questions no template answers: a person must (ground truth for the hand-over)
OUT_OF_SCOPE: tuple[str, ...] = (
    "i want to make a complaint about your driver", "can i speak to a manager", "i was charged twice for one order",
    "the courier left my parcel with a stranger", "i want to report a data breach", "my discount was not applied and i was overcharged",
    "do you buy back used products", "can i become a supplier for your shop", "i need help with a legal claim",
    "someone used my account without permission", "why was my review removed", "do you offer corporate accounts",
    "my child ordered without my consent", "can you hold an item for me in a store", "i want compensation for a late delivery",
    "is your shop hiring", "the price dropped after i bought it", "can i collect my order in person",
    "my gift was sent to the wrong person", "i need a copy of all data you hold on me",
)

_GREETINGS = ("", "hi ", "hello, ", "please ", "hey ")
_ENDINGS = ("", "?", " please", " ??")


def _variants(text: str, n: int, rng: np.random.Generator) -> list[str]:
    """``text`` and up to ``n`` ways shoppers type it: a greeting, an ending, one word with a typo."""
    out = [text]
    for _ in range(n):
        words = text.split()
        if rng.random() < 0.5:
            long = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
            if long:
                i = long[rng.integers(len(long))]
                words[i] = typo(words[i], int(rng.integers(64)))
        out.append(_GREETINGS[rng.integers(len(_GREETINGS))] + " ".join(words) + _ENDINGS[rng.integers(len(_ENDINGS))])
    return list(dict.fromkeys(out))


def help_centre(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``service_intents`` and ``service_phrasings`` tables (contract columns, as text)."""
    rng = np.random.default_rng([seed, STREAM])
    intents = pd.DataFrame([(k, answer, fields) for k, (answer, fields, _) in INTENTS.items()],
                           columns=["intent_id", "answer", "fields"])
    rows = [(k, v) for k, (_, _, base) in INTENTS.items() for text in base for v in _variants(text, 3, rng)]
    rows += [(HANDOFF, v) for text in OUT_OF_SCOPE for v in _variants(text, 2, rng)]
    phrasings = pd.DataFrame(rows, columns=["intent_id", "phrasing"]).drop_duplicates("phrasing")
    return intents, phrasings.reset_index(drop=True)


def ask_in_logs(events: pd.DataFrame, phrasings: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """``events`` with ``share`` of the searched sessions' query replaced by a service phrasing.

    The stream is seeded apart from the storefront's (see the module docstring); only the
    ``query`` cells of the chosen sessions change.
    """
    if share == 0:
        return events
    rng = np.random.default_rng([seed, STREAM, 1])
    searched = pd.unique(events.loc[events["query"] != "", "session_id"])
    chosen = searched[rng.random(len(searched)) < share]
    asked = pd.Series(phrasings["phrasing"].to_numpy()[rng.integers(len(phrasings), size=len(chosen))], index=chosen)
    rows = events["session_id"].isin(chosen)
    events = events.copy()
    events.loc[rows, "query"] = events.loc[rows, "session_id"].map(asked).astype("str")
    return events
