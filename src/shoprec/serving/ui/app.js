// shoprec storefront: vanilla JS over the service's JSON API (same origin, POST + JSON).
// Every call goes through api(), which turns any non-2xx answer into a visible message:
// every 4xx is {"error": message}, with "detail": [pydantic field errors] when validation failed.
"use strict";

const $ = (id) => document.getElementById(id);
const K = 10;
const USERS = 20;

// Per-tab ids: the session of the click events, and the id a new visitor is known by.
const SESSION_ID = `web-${randomHex(8)}`;
const VISITOR_ID = sessionStorage.getItem("shoprec-visitor") || `visitor-${randomHex(8)}`;
sessionStorage.setItem("shoprec-visitor", VISITOR_ID);

// viewed: the items opened on this page, most recent last, sent as /recommend's recent_items (at most VIEWED).
const state = { user: "", query: "", accepted: 0, viewed: [] };
const VIEWED = 5;
// Answers can arrive out of order (a quick second search, a second shopper); only the latest is shown.
const latest = { search: 0, user: 0 };

function randomHex(bytes) {
  // crypto.getRandomValues works on plain http too (randomUUID needs a secure context).
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

class ApiError extends Error {}

async function api(path, body) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(`${path}: cannot reach the shop server (${err.message})`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = JSON.parse(text);
  } catch {
    // not JSON (a proxy's error page, an empty body): the text itself is the message
  }
  if (!response.ok || data === null) {
    throw new ApiError(`${path} failed (HTTP ${response.status}): ${errorText(data, text)}`);
  }
  // A model's answer names the experiment arm that gave it (user id, else session id: docs/serving.md, Experiments);
  // /user, /users and /feedback are the shop's, answered by the champion, and would mislabel a challenger.
  if (data.variant) {
    $("variant").textContent = data.variant;
    $("model-version").textContent = data.model_version;
  }
  return data;
}

function errorText(data, text) {
  if (data && data.error) {
    const details = (data.detail || []).map((d) => `${(d.loc || []).join(".") || "body"}: ${d.msg}`);
    return details.length ? details.join("; ") : data.error;
  }
  return text.trim().slice(0, 300) || "empty answer";
}

function showError(err) {
  const box = $("error");
  box.textContent = err instanceof ApiError ? err.message : `Something went wrong: ${err}`;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

const money = (value) => `£${Number(value).toFixed(2)}`;

// requestId: the answer the items came from; a click names it and the item's 0-based position (attribution).
function renderItems(list, items, { source, requestId = null, showScore = true } = {}) {
  const template = $("item-template");
  list.replaceChildren(...items.map((item, position) => {
    const li = template.content.firstElementChild.cloneNode(true);
    li.dataset.itemId = item.item_id;
    li.querySelector(".title").textContent = item.title;
    li.querySelector(".category").textContent = item.category || "uncategorised";
    li.querySelector(".price").textContent = money(item.price);
    li.querySelector(".why").textContent = item.explanation;
    const score = li.querySelector(".score");
    if (showScore) score.textContent = `score ${item.score.toFixed(3)}`;
    else score.remove();
    li.querySelector("button").addEventListener("click", () => openItem(item, source, requestId && { requestId, position }));
    return li;
  }));
}

function chip(testid, text, off = false) {
  const li = document.createElement("li");
  li.className = off ? "chip off" : "chip";
  li.dataset.testid = testid;
  li.textContent = text;
  return li;
}

// The n words of {word: weight} with the largest weights (ties by word), as the API ranks them.
function strongest(weights, n) {
  return Object.entries(weights || {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, n).map(([word]) => word);
}

function chipsFor(parsed) {
  const chips = Object.entries(parsed.corrections || {}).map(
    ([typed, meant]) => chip("chip-correction", `${typed} → ${meant}`));
  for (const [typed, guesses] of Object.entries(parsed.guesses || {})) {
    chips.push(chip("chip-guess", `${typed}: or ${strongest(guesses, 2).join(", ")}`));
  }
  const also = strongest(parsed.expansion, 3);
  if (also.length) chips.push(chip("chip-expansion", `also: ${also.join(", ")}`));
  const { min_price: low, max_price: high } = parsed;
  if (low != null || high != null) {
    const text = low == null ? `under ${money(high)}` : high == null ? `over ${money(low)}` : `${money(low)}–${money(high)}`;
    chips.push(chip("chip-price", text));
  }
  const relaxed = parsed.relaxed || [];
  if (parsed.colour) {
    const dropped = relaxed.includes("colour");
    const colours = [parsed.colour, ...(parsed.colours_also || [])].join(" or ");  // "gre": green or grey
    chips.push(chip("chip-colour", `colour: ${colours}${dropped ? " · dropped, no match" : ""}`, dropped));
  }
  if (parsed.category) {
    const dropped = relaxed.includes("category");
    const note = dropped ? " · dropped, no match" : parsed.category_applied ? "" : " · not applied";
    const confidence = Math.round(100 * (parsed.category_confidence || 0));
    chips.push(chip("chip-category", `category: ${parsed.category} ${confidence}%${note}`, dropped || !parsed.category_applied));
  }
  return chips;
}

// A customer-service question's card above the products: the answer, or the hand-over to a person.
function showHelp(help) {
  $("help-card").hidden = !help;
  if (!help) return;
  const confidence = Math.round(100 * help.confidence);
  const guesses = help.guesses.map((g) => g.intent.replaceAll("_", " ")).join(", ");
  $("help-card").classList.toggle("handoff", help.handoff);
  $("help-card").querySelector(".help-answer").textContent = help.handoff
    ? "A member of our team will help you with this." : help.answer;
  $("help-card").querySelector(".help-meta").textContent = help.handoff
    ? `handed over to a person · might be: ${guesses}` : `${help.intent.replaceAll("_", " ")} · ${confidence}%`;
}

async function search(query) {
  const ticket = ++latest.search;
  const data = await api("/search", { query, user_id: currentUser(), k: K, session_id: SESSION_ID });
  if (ticket !== latest.search) return;
  state.query = query;  // the query behind the results on screen, sent with their clicks
  $("search-title").textContent = `Results for “${data.parsed.query}”`;
  $("chips").replaceChildren(...chipsFor(data.parsed));
  showHelp(data.help);
  renderItems($("search-results"), data.items, { source: "search", requestId: data.request_id });
  $("search-empty").hidden = data.items.length > 0;
  $("search-section").hidden = false;
}

function currentUser() {
  return state.user || VISITOR_ID;
}

function recommendations() {
  return api("/recommend", { user_id: currentUser(), k: K, session_id: SESSION_ID, recent_items: state.viewed });
}

async function loadUser(userId) {
  state.user = userId;
  state.viewed = [];  // another shopper: what this one looked at is not theirs
  const ticket = ++latest.user;
  $("recs-title").textContent = userId ? `Recommended for ${userId}` : "Popular picks for a new visitor";
  $("recommendations").setAttribute("aria-busy", "true");
  try {
    const [recs, user] = await Promise.all([recommendations(), api("/user", { user_id: currentUser() })]);
    if (ticket !== latest.user) return;
    if (userId && !recs.known_user) $("recs-title").textContent = `New visitor ${userId}: popular picks`;
    renderItems($("recommendations"), recs.items, { source: "recommend", requestId: recs.request_id });
    renderItems($("recent-purchases"), user.recent_purchases, { source: "recent", showScore: false });
    $("recent-section").hidden = user.recent_purchases.length === 0;
  } finally {
    if (ticket === latest.user) $("recommendations").removeAttribute("aria-busy");
  }
}

// The list recomputed with what the shopper just opened ("because you just viewed ..."); the click event
// itself carries the browser's time, which the service's data clock may not have reached yet.
async function refreshRecommendations() {
  const ticket = ++latest.user;
  const recs = await recommendations();
  if (ticket !== latest.user) return;
  if (!state.user && recs.realtime) $("recs-title").textContent = "Recommended for you";
  renderItems($("recommendations"), recs.items, { source: "recommend", requestId: recs.request_id });
}

async function openItem(item, source, shown) {
  clearError();
  state.viewed = [...state.viewed.filter((id) => id !== item.item_id), item.item_id].slice(-VIEWED);
  const results = await Promise.allSettled([showSimilar(item), sendClick(item, source, shown), refreshRecommendations()]);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) showError(failed.reason);
}

async function showSimilar(item) {
  const data = await api("/similar", { item_id: item.item_id, k: K, user_id: currentUser(), session_id: SESSION_ID });
  $("similar-title").textContent = `Similar to ${item.title}`;
  renderItems($("similar-items"), data.items, { source: "similar", requestId: data.request_id });
  const section = $("similar-section");
  section.hidden = false;
  section.scrollIntoView({ block: "nearest", behavior: "smooth" });
}

async function sendClick(item, source, shown) {
  const event = {
    event_id: randomHex(16),  // idempotency key: a retried request is not counted twice
    user_id: currentUser(),
    item_id: item.item_id,
    event_type: "click",
    timestamp: new Date().toISOString(),
    session_id: SESSION_ID,
  };
  if (source === "search" && state.query) event.query = state.query;
  if (shown) Object.assign(event, { request_id: shown.requestId, position: shown.position });
  const data = await api("/feedback", { events: [event] });
  state.accepted += data.accepted;
  $("feedback-count").textContent = `feedback sent: ${state.accepted} accepted`;
}

// A handler's failure becomes the alert message; the rest of the page stays as it was.
const guarded = (handler) => (event) => {
  event?.preventDefault();
  clearError();
  handler().catch(showError);
};

async function loadUsers() {
  const data = await api("/users", { limit: USERS });
  $("user-select").append(...data.users.map((id) => new Option(id, id)));
}

$("search-form").addEventListener("submit", guarded(async () => {
  const query = $("search-input").value.trim();
  if (query) await search(query);
  else $("search-input").focus();
}));

$("user-select").addEventListener("change", guarded(async () => {
  $("user-id").value = "";
  await loadUser($("user-select").value);
}));

$("user-form").addEventListener("submit", guarded(async () => {
  const typed = $("user-id").value.trim();
  const known = Array.from($("user-select").options).some((o) => o.value === typed);
  $("user-select").value = known ? typed : "";
  await loadUser(typed);
}));

guarded(async () => {
  await Promise.all([loadUsers(), loadUser("")]);
})();
