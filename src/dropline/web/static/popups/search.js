// The /search page: on-device search over the downloaded index. No request carries the query.
import { inStockAt, loadIndex, nearby, search, similar } from "/static/popups/discovery.js";

const q = document.getElementById("q");
const near = document.getElementById("near");
const hits = document.getElementById("hits");
const state = document.getElementById("index-state");
const similarBox = document.getElementById("similar-box");
const similarList = document.getElementById("similar");
let index = null;
let nearCodes = null;

// Searching happens as you type: the form itself is never submitted.
document.getElementById("search-form").addEventListener("submit", (event) => event.preventDefault());

function money(amount, currency) {
  const symbol = { GBP: "£", EUR: "€", USD: "$" }[currency] || "";
  return `${symbol}${(amount / 100).toFixed(2)}`;
}

function item(product) {
  const li = document.createElement("li");
  li.dataset.testid = "hit";
  const a = document.createElement("a");
  a.href = `/products/${product.slug}`;
  a.textContent = product.name;
  const where = Object.entries(product.stock || {}).filter(([, n]) => n > 0).map(([c]) => c);
  const meta = document.createElement("small");
  meta.textContent = ` · ${product.family} · from ${money(product.price, product.currency)}` +
    (where.length ? ` · in stock at ${where.length} store(s)` : "");
  const more = document.createElement("button");
  more.type = "button";
  more.textContent = "Similar";
  more.addEventListener("click", () => showSimilar(product));
  li.append(a, meta, " ", more);
  return li;
}

function showSimilar(product) {
  similarList.replaceChildren(...similar(index.products, product, 4).map(item));
  similarBox.hidden = false;
}

function run() {
  if (!index) return;
  let found = search(index.products, q.value, { limit: 30 });
  if (nearCodes) found = found.filter((p) => inStockAt(p, nearCodes));
  hits.replaceChildren(...found.map(item));
  state.textContent = q.value.trim()
    ? `${found.length} result(s), found on this device` : `${index.products.length} products ready`;
}

q.addEventListener("input", run);
near.addEventListener("change", () => {
  if (!near.checked) { nearCodes = null; run(); return; }
  // The position stays on this page: only store codes within 5 km filter the results.
  navigator.geolocation.getCurrentPosition((pos) => {
    nearCodes = nearby(index, pos.coords.latitude, pos.coords.longitude, 5).map((s) => s.code);
    run();
  }, () => { near.checked = false; state.textContent = "Location unavailable"; });
});

loadIndex({ onUpdate: (fresh) => { index = fresh; run(); } }).then((loaded) => {
  index = loaded;
  state.textContent = `${index.products.length} products ready`;
  state.dataset.ready = "true";
  run();
}).catch(() => { state.textContent = "The catalogue could not be loaded (offline?)"; });
