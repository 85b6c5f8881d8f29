"""The storefront at ``/ui``, driven end to end in a real headless Chromium.

Each test opens the page served by a real ``bentoml serve`` (fixture ``server_url``),
acts like a shopper, and checks the page against the API's own answer for the same
request (so the assertions hold for whatever model the server was trained on).
Screenshots of every state go to ``test-output/ui/`` for a person to look at; the
search-results state also goes to ``docs/storefront.png`` (the README picture) when
``SHOPREC_DOCS_SHOT=1``.

The browser is Debian's ``/usr/bin/chromium`` (``make test`` installs it), never a
Playwright download.
"""

from __future__ import annotations

import os

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-output" / "ui"
DOCS_SHOT = REPO / "docs" / "storefront.png"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 375, "height": 812}
# The first /feedback of a server process imports Great Expectations (~5 s).
expect.set_options(timeout=30_000)

QUERY = "red candel under 15"
USERS_IN_PICKER = 20  # app.js USERS: the shoppers the page's picker offers  # a correction, a price limit, a colour and a category intent


@pytest.fixture(scope="module")
def shoppers(server_url) -> list[str]:
    """Three known shoppers, the ones with the most purchases (first in the page's picker)."""
    users = httpx.post(f"{server_url}/users", json={"limit": 3}, timeout=30).json()["users"]
    assert len(users) == 3, f"the served model knows fewer than 3 shoppers: {users}"
    return users


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (`make browser`) to run the storefront tests")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Storefront:
    """A page on ``/ui`` plus what went wrong in it: script errors and requests leaving the origin."""

    def __init__(self, page, base: str) -> None:
        self.page, self.base = page, base
        self.script_errors: list[str] = []
        self.foreign: list[str] = []
        page.on("pageerror", lambda exc: self.script_errors.append(str(exc)))
        page.on("request", lambda r: None if r.url.startswith(base) or r.url.startswith("data:")
                else self.foreign.append(r.url))

    def open(self) -> None:
        self.page.goto(f"{self.base}/ui")  # the service redirects to /ui/
        expect(self.page.locator("#model-version")).not_to_have_text("…")
        expect(self.page.locator("#recommendations [data-testid=item]").first).to_be_visible()

    def api(self, path: str, body: dict) -> dict:
        response = httpx.post(f"{self.base}{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def titles(self, list_id: str):
        return self.page.locator(f"#{list_id} [data-testid=item-title]")

    def search(self, query: str) -> dict:
        """Search as a shopper does; the service's answer."""
        self.page.fill("#search-input", query)
        with self.page.expect_response(lambda r: r.url.endswith("/search")) as answer:
            self.page.press("#search-input", "Enter")
        return answer.value.json()

    def pick_user(self, user_id: str) -> dict:
        """Pick a shopper in the page's picker; the service's /recommend answer for them."""
        with self.page.expect_response(lambda r: r.url.endswith("/recommend")) as answer:
            self.page.select_option("#user-select", user_id)
        return answer.value.json()

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def shop(browser, server_url) -> Iterator[Storefront]:
    context = browser.new_context(viewport=DESKTOP)
    store = Storefront(context.new_page(), server_url)
    yield store
    context.close()
    assert not store.script_errors, f"script errors on the page: {store.script_errors}"
    assert not store.foreign, f"the page fetched from outside its server: {store.foreign}"


def test_search_shows_results_and_the_parsed_query_as_chips(shop, shoppers):
    expected = shop.api("/search", {"query": QUERY, "user_id": shoppers[0], "k": 10})
    parsed = expected["parsed"]
    assert parsed["corrections"] and parsed["max_price"] and parsed["colour"] and parsed["category"], \
        f"the query no longer exercises every chip: {parsed}"
    shop.open()
    shop.pick_user(shoppers[0])
    shop.search(QUERY)

    page = shop.page
    expect(shop.titles("search-results")).to_have_text([i["title"] for i in expected["items"]])
    expect(page.locator("#search-title")).to_contain_text(QUERY)
    first = page.locator("#search-results [data-testid=item]").first
    item = expected["items"][0]
    expect(first.locator("[data-testid=item-category]")).to_have_text(item["category"])
    expect(first.locator("[data-testid=item-price]")).to_have_text(f"£{item['price']:.2f}")
    expect(first.locator("[data-testid=item-score]")).to_have_text(f"score {item['score']:.3f}")

    chips = page.locator("#chips")
    for typed, meant in parsed["corrections"].items():
        expect(chips.get_by_test_id("chip-correction")).to_contain_text(f"{typed} → {meant}")
    expect(chips.get_by_test_id("chip-price")).to_have_text(f"under £{parsed['max_price']:.2f}")
    colours = " or ".join([parsed["colour"], *parsed["colours_also"]])
    expect(chips.get_by_test_id("chip-colour")).to_contain_text(f"colour: {colours}")
    expect(chips.get_by_test_id("chip-category")).to_contain_text(
        f"{parsed['category']} {round(100 * parsed['category_confidence'])}%")
    expect(page.locator("#error")).to_be_hidden()

    shop.shot("search")
    if os.environ.get("SHOPREC_DOCS_SHOT") == "1":  # refresh the README's picture on purpose only
        DOCS_SHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS_SHOT))


def test_a_service_question_shows_the_help_card_above_the_products(shop, shoppers):
    asked = "do you deliver to ireland"
    expected = shop.api("/search", {"query": asked, "user_id": shoppers[0], "k": 10})["help"]
    assert expected and not expected["handoff"], expected
    shop.open()
    shop.pick_user(shoppers[0])
    shop.search(asked)
    card = shop.page.get_by_test_id("help-card")
    expect(card).to_be_visible()
    expect(card.get_by_test_id("help-answer")).to_have_text(expected["answer"])
    expect(card.get_by_test_id("help-meta")).to_have_text(
        f"delivery countries · {round(100 * expected['confidence'])}%")
    expect(shop.page.locator("#search-results [data-testid=item]").first).to_be_visible()
    shop.search("i want to make a complaint about your driver")
    expect(card.get_by_test_id("help-meta")).to_contain_text("handed over to a person")
    shop.search("candle")  # a product search: no card
    expect(card).to_be_hidden()


def _strongest(weights: dict[str, float], n: int) -> list[str]:
    return [w for w, _ in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def test_guesses_and_translations_show_as_chips(shop, pipeline_run):
    """A cut-off word's other readings and a shopper's word's catalog translations are on screen."""
    prefixes = ("can", "tea", "bla", "pla", "gre", "sil")
    typed = next((q for q in prefixes if shop.api("/search", {"query": q})["parsed"]["guesses"]), None)
    assert typed, "no short prefix has guesses in this catalog: pick others"
    translations = json.loads((pipeline_run.root / "models/search/lexical/expansion.json").read_text())
    unit = next((u for u in sorted(translations) if " " not in u), None)
    assert unit, "the click logs taught no one-word translation: the sample has too few searches"
    shop.open()
    chips = shop.page.locator("#chips")
    for query in (typed, unit):
        parsed = shop.api("/search", {"query": query})["parsed"]
        shop.search(query)
        for word, guesses in parsed["guesses"].items():
            text = f"{word}: or {', '.join(_strongest(guesses, 2))}"
            expect(chips.get_by_test_id("chip-guess").filter(has_text=text)).to_have_count(1)
        if parsed["expansion"]:
            expect(chips.get_by_test_id("chip-expansion")).to_have_text(f"also: {', '.join(_strongest(parsed['expansion'], 3))}")
        else:
            expect(chips.get_by_test_id("chip-expansion")).to_have_count(0)
    assert parsed["expansion"], f"{unit!r} has translations in expansion.json but the search used none: {parsed}"
    shop.shot("guesses-and-translations")


def test_a_cut_off_colour_shows_every_colour_it_may_mean(shop):
    queries = ("gre candle", "gre mug", "gre plate", "bl mug", "pin mug")
    query = next((q for q in queries if shop.api("/search", {"query": q})["parsed"]["colours_also"]), None)
    assert query, f"none of {queries} reads as two colours in this catalog: pick others"
    parsed = shop.api("/search", {"query": query})["parsed"]
    shop.open()
    shop.search(query)
    expect(shop.page.locator("#chips").get_by_test_id("chip-colour")).to_have_text(
        "colour: " + " or ".join([parsed["colour"], *parsed["colours_also"]]))


def test_switching_users_changes_recommendations_and_purchases(shop, shoppers):
    page = shop.page
    shop.open()
    expect(page.locator("#user-select")).to_have_value("")  # a new visitor first: popular picks
    explanations = page.locator("#recommendations [data-testid=item-explanation]")
    expect(explanations.first).to_be_visible()
    assert all(text.startswith("popular in ") for text in explanations.all_inner_texts())
    shop.shot("new-visitor")

    lists = {}
    for user in shoppers[:2]:
        expected = shop.api("/recommend", {"user_id": user, "k": 10})
        assert expected["known_user"], f"{user} should be a known user of the sample model"
        shop.pick_user(user)
        expect(page.locator("#recs-title")).to_have_text(f"Recommended for {user}")
        lists[user] = [i["title"] for i in expected["items"]]
        expect(shop.titles("recommendations")).to_have_text(lists[user])
        purchases = shop.api("/user", {"user_id": user})["recent_purchases"]
        expect(shop.titles("recent-purchases")).to_have_text([i["title"] for i in purchases])
        shop.shot(f"user-{user}")
    assert lists[shoppers[0]] != lists[shoppers[1]]

    # The free-text id: a known one selects it in the picker, an unknown one is a new visitor.
    page.fill("#user-id", shoppers[2])
    with page.expect_response(lambda r: r.url.endswith("/recommend")):
        page.click("#user-button")
    expect(page.locator("#user-select")).to_have_value(shoppers[2])
    expected = shop.api("/recommend", {"user_id": shoppers[2], "k": 10})
    expect(shop.titles("recommendations")).to_have_text([i["title"] for i in expected["items"]])

    page.fill("#user-id", "someone-new")
    with page.expect_response(lambda r: r.url.endswith("/recommend")):
        page.click("#user-button")
    expect(page.locator("#recs-title")).to_contain_text("New visitor someone-new")
    expect(page.locator("#recent-section")).to_be_hidden()
    expect(explanations.first).to_contain_text("popular in ")
    assert all(text.startswith("popular in ") for text in explanations.all_inner_texts())


def test_clicking_an_item_shows_similar_items_and_records_a_click(shop, shoppers, served):
    from impressions import logged

    page = shop.page
    shop.open()
    shop.pick_user(shoppers[0])
    searched = shop.search(QUERY)
    card = page.locator("#search-results [data-testid=item]").first
    item_id = card.get_attribute("data-item-id")

    with page.expect_response(lambda r: r.url.endswith("/feedback")) as answer, \
            page.expect_response(lambda r: r.url.endswith("/similar")) as shown_similar:
        card.locator("button").click()
    sent = json.loads(answer.value.request.post_data)["events"]
    assert answer.value.status == 200 and answer.value.json()["accepted"] == 1
    assert len(sent) == 1 and sent[0]["item_id"] == item_id and sent[0]["user_id"] == shoppers[0]
    assert sent[0]["event_type"] == "click" and sent[0]["query"] == QUERY and sent[0]["event_id"]
    # The click names the answer it came from and the item's place in it, and the service logged that answer.
    assert (sent[0]["request_id"], sent[0]["position"]) == (searched["request_id"], 0)
    impression = logged(served.feedback_db, [searched["request_id"]]).loc[searched["request_id"]]
    assert impression["item_ids"][0] == item_id and impression["user_id"] == shoppers[0]
    assert (impression["surface"], impression["query"]) == ("search", QUERY) and impression["session_id"]
    expect(page.locator("#feedback-count")).to_have_text("feedback sent: 1 accepted")

    similar = shop.api("/similar", {"item_id": item_id, "k": 10})["items"]
    expect(page.locator("#similar-section")).to_be_visible()
    expect(shop.titles("similar-items")).to_have_text([i["title"] for i in similar])
    # The server stored the click: the same event_id again is a duplicate, not a second event.
    again = shop.api("/feedback", {"events": sent})
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    shop.shot("similar")

    # A click in the similar list is a new event (its own event_id, that list's request_id, the place
    # clicked) and opens that item's neighbours.
    with page.expect_response(lambda r: r.url.endswith("/feedback")) as answer:
        page.locator("#similar-items [data-testid=item] button").nth(1).click()
    second = json.loads(answer.value.request.post_data)["events"][0]
    assert second["event_id"] != sent[0]["event_id"] and "query" not in second
    assert (second["request_id"], second["position"]) == (shown_similar.value.json()["request_id"], 1)
    expect(page.locator("#feedback-count")).to_have_text("feedback sent: 2 accepted")
    expect(page.locator("#similar-title")).to_have_text(f"Similar to {similar[1]['title']}")


def test_viewing_an_item_updates_the_recommendations_on_the_same_page(shop):
    """A new visitor opens items: each open asks /recommend again with what was opened on this page
    (``recent_items``, most recent last) and shows that answer in place of the popular picks, every
    reason naming an item just viewed. Under load an answer may fall back to the precomputed list
    (the popular picks again): a few opens are tried, and one must have changed the list."""
    page = shop.page
    shop.open()
    popular = shop.titles("recommendations").all_inner_texts()
    viewed, titles, changed = [], [], False
    for n in range(3):
        card = page.locator("#recommendations [data-testid=item]").nth(n)
        viewed.append(card.get_attribute("data-item-id"))
        titles.append(card.locator("[data-testid=item-title]").inner_text())
        with page.expect_response(lambda r: r.url.endswith("/recommend")) as answer:
            card.locator("button").click()
        assert json.loads(answer.value.request.post_data)["recent_items"] == viewed
        now = answer.value.json()
        expect(shop.titles("recommendations")).to_have_text([i["title"] for i in now["items"]])
        if now["realtime"]:
            expect(page.locator("#recs-title")).to_have_text("Recommended for you")
            assert {i["explanation"] for i in now["items"]} <= {f"because you just viewed {t}" for t in titles}
            changed = changed or [i["title"] for i in now["items"]] != popular
    assert changed, "no opened item changed the visitor's recommendations"
    shop.shot("viewed-items")


def test_in_an_experiment_the_page_shows_the_shoppers_arm_and_clicks_name_their_answer(browser, experiment_served):
    """Against the experiment server: for a shopper of each arm, the footer names the arm and model that
    answered, the list is that arm's, and a click posts the answer's request_id and the item's position,
    whose impression the service stored under that arm."""
    from impressions import logged
    from served_experiment import SERVED_EXPERIMENT

    from shoprec.experiments.assignment import assign

    context = browser.new_context(viewport=DESKTOP)
    shop = Storefront(context.new_page(), experiment_served.url)
    try:
        users = shop.api("/users", {"limit": USERS_IN_PICKER})["users"]
        one_per_arm = {assign(SERVED_EXPERIMENT["salt"], SERVED_EXPERIMENT["share"], u, None): u for u in users}
        assert set(one_per_arm) == {"champion", "challenger"}, "no shopper of the picker in one of the arms"
        shop.open()
        page = shop.page
        for variant, user in sorted(one_per_arm.items()):
            shown = shop.pick_user(user)
            assert shown["variant"] == variant
            expect(page.locator("#variant")).to_have_text(variant)
            expect(page.locator("#model-version")).to_have_text(shown["model_version"])
            expect(shop.titles("recommendations")).to_have_text([i["title"] for i in shown["items"]])
            with page.expect_response(lambda r: r.url.endswith("/feedback")) as answer, \
                    page.expect_response(lambda r: r.url.endswith("/recommend")):  # the list with the item viewed
                page.locator("#recommendations [data-testid=item] button").nth(2).click()
            sent = json.loads(answer.value.request.post_data)["events"][0]
            assert answer.value.status == 200
            assert (sent["request_id"], sent["position"]) == (shown["request_id"], 2)
            impression = logged(experiment_served.feedback_db, [shown["request_id"]]).loc[shown["request_id"]]
            assert (impression["variant"], impression["item_ids"][2]) == (variant, sent["item_id"])
            expect(page.locator("#variant")).to_have_text(variant)  # the similar items of the click: the same arm
            shop.shot(f"experiment-{variant}")
    finally:
        context.close()
    assert not shop.script_errors and not shop.foreign, (shop.script_errors, shop.foreign)


def test_an_api_error_is_shown_and_the_page_keeps_working(shop):
    page = shop.page
    shop.open()
    too_long = "candle " * 43  # 301 characters; the API accepts at most 200
    response = httpx.post(f"{shop.base}/search", json={"query": too_long, "k": 10})
    assert response.status_code == 400

    shop.search(too_long)
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("/search failed (HTTP 400)")
    expect(alert).to_contain_text("query: String should have at most 200 characters")
    expect(page.locator("#search-input")).to_be_visible()
    expect(page.locator("#recommendations [data-testid=item]").first).to_be_visible()
    shop.shot("error")

    shop.search("candle")  # the next good request clears the message
    expect(alert).to_be_hidden()
    expect(page.locator("#search-results [data-testid=item]").first).to_be_visible()

    # The other error shapes, through the page's own client: BentoML's [{"error"}] and the 413 {"error"}.
    messages = page.evaluate("""Promise.all([
        api("/similar", {item_id: "NOPE", k: 3}).catch((e) => e.message),
        api("/feedback", {events: ["x".repeat(2000000)]}).catch((e) => e.message)])""")
    assert messages[0].startswith("/similar failed (HTTP 404): unknown item_id 'NOPE'"), messages[0]
    assert messages[1].startswith("/feedback failed (HTTP 413): request body of"), messages[1]


def test_phone_sized_window_has_no_horizontal_scrolling(browser, server_url, shoppers):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    shop = Storefront(context.new_page(), server_url)
    try:
        shop.open()
        shop.pick_user(shoppers[0])
        shop.search(QUERY)
        page = shop.page
        expect(page.locator("#search-results [data-testid=item]").first).to_be_visible()
        for selector in ("#search-input", "#search-button", "#user-select"):
            box = page.locator(selector).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (selector, box)
        widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1] == PHONE["width"], f"horizontal scrolling: {widths}"
        rights = page.locator("#search-results [data-testid=item]").evaluate_all(
            "cards => cards.map(c => c.getBoundingClientRect().right)")
        assert max(rights) <= PHONE["width"], rights
        shop.shot("phone")
        assert not shop.script_errors and not shop.foreign
    finally:
        context.close()


def test_the_api_docs_page_works_without_calling_another_host(browser, server_url):
    """BentoML's own page at / loads Google Tag Manager and Swagger's online validator; ours loads neither."""
    page = browser.new_page(viewport=DESKTOP)
    docs = Storefront(page, server_url)
    page.goto(f"{server_url}/")
    expect(page.locator(".opblock-summary-path", has_text="/recommend")).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/feedback")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert docs.foreign == [] and docs.script_errors == []
    page.close()
