// The pop-up counter: local product search, a basket, card-present payment through the
// terminal, and the storefront's offline outbox (/static/pwa/outbox.js): a sale rung up
// offline keeps the Idempotency-Key chosen here and is sent once the counter is back online;
// the server answers a resend with the first result, so a sale is one order however often
// it is sent. After a sale staff can sign the buyer up on the kept card, or email a link.
import { outbox } from "/static/pwa/outbox.js";
import { search } from "/static/popups/discovery.js";
import { tokenise } from "/static/pay/local.js";

const data = JSON.parse(document.getElementById("counter-data").textContent);
const base = `/admin/counter/${data.popup}`;
const $ = (id) => document.getElementById(id);
const basket = new Map(); // variant id -> quantity
const byId = new Map(data.variants.map((v) => [v.id, v]));
let lastOrder = null;

function money(amount, currency = "GBP") {
  const symbol = { GBP: "£", EUR: "€", USD: "$" }[currency] || "";
  return `${symbol}${(amount / 100).toFixed(2)}`;
}

function showResults() {
  const found = $("find").value.trim() ? search(data.variants, $("find").value, { limit: 12 })
    : data.variants.slice(0, 12);
  $("results").replaceChildren(...found.map((v) => {
    const li = document.createElement("li");
    const add = document.createElement("button");
    add.type = "button";
    add.textContent = `Add ${v.name}`;
    add.disabled = v.stock <= (basket.get(v.id) || 0);
    add.addEventListener("click", () => { basket.set(v.id, (basket.get(v.id) || 0) + 1); render(); });
    li.append(add, ` ${money(v.price, v.currency)} · ${v.stock} left`);
    return li;
  }));
}

function render() {
  let total = 0;
  $("basket").replaceChildren(...[...basket].map(([id, qty]) => {
    const v = byId.get(id);
    total += v.price * qty;
    const li = document.createElement("li");
    li.textContent = `${qty} × ${v.name} ${money(v.price * qty, v.currency)}`;
    return li;
  }));
  $("total").textContent = money(total);
  showResults();
}

function queueItem(entry) {
  const li = document.createElement("li");
  li.id = `q-${entry.idempotencyKey}`;
  li.textContent = `${entry.label} · waiting for the network`;
  return li;
}

async function showQueue() {
  const mine = (await outbox.pending()).filter((e) => e.url.startsWith(base));
  $("queue").replaceChildren(...mine.map(queueItem));
}

function afterSale(sale) {
  lastOrder = sale.order_id;
  $("sale-order").textContent = `#${sale.order_id}`;
  $("after-sale").hidden = false;
  $("join").disabled = !sale.can_sign_up;
  $("member-status").textContent = sale.can_sign_up ? "" : "No card kept: send a sign-up link.";
}

$("pay").addEventListener("click", async () => {
  const email = $("email").value.trim();
  if (!basket.size || !email) { $("status").textContent = "Add items and the buyer's email first."; return; }
  const lines = [...basket].map(([variant_id, quantity]) => ({ variant_id, quantity }));
  for (const [id, qty] of basket) byId.get(id).stock -= qty; // shown at once, even offline
  const body = {
    lines, email, save_card: $("save-card").checked,
    terminal: { terminal_id: data.terminal, entry_mode: "contactless" },
  };
  const key = crypto.randomUUID(); // chosen once, here: every resend carries it
  taps.set(key, $("card").value);  // the simulated reader holds the tapped card in memory only
  basket.clear();
  render();
  $("status").textContent = navigator.onLine ? "Taking payment…" : "Offline: sale queued, it will be sent when the counter is back online.";
  await outbox.enqueue({ url: `${base}/sales`, body, idempotencyKey: key, label: `sale to ${email}`, payment: true });
  showQueue();
});

// The simulated reader: it hands the tapped card to the payment provider and the sale names it
// by the reference it gets (a real reader talks to the provider, never to the shop). Neither
// the card nor the reference is kept in the outbox; a sale queued offline and reloaded takes
// the card on the reader now (tapped again), and is sent when the reader's card changes.
const taps = new Map();        // key -> the card tapped for that sale (memory only)
const references = new Map();  // key -> the provider's reference (memory only)
outbox.withPayment = async (entry) => {
  const key = entry.idempotencyKey;
  if (!references.has(key)) {
    if (!taps.has(key) && !$("card").value.trim()) return null;
    if (!taps.has(key)) taps.set(key, $("card").value);
    const reader = document.createElement("form");
    reader.innerHTML = '<input data-card="number"><input data-card="exp_month" value="12">' +
      '<input data-card="exp_year" value="2030"><input data-card="cvc" value="123">';
    reader.querySelector('[data-card="number"]').value = taps.get(key);
    references.set(key, await tokenise(reader));
  }
  return { ...entry.body, terminal: { ...entry.body.terminal, payment_method: references.get(key) } };
};
outbox.addEventListener("payment", (e) => {
  if (!e.detail.entry.url.startsWith(base)) return;
  $("status").textContent = `Sale to be paid: ${(e.detail.body && e.detail.body.detail) || "tap the card again"}.`;
  showQueue();
});
$("card").addEventListener("change", () => outbox.flush());

outbox.addEventListener("sent", (e) => {
  if (!e.detail.entry.url.startsWith(base)) return;
  $("status").textContent = `Paid: order #${e.detail.body.order_id}, receipt emailed to ${e.detail.body.email}.`;
  afterSale(e.detail.body);
  showQueue();
});
outbox.addEventListener("failed", (e) => {
  if (!e.detail.entry.url.startsWith(base)) return;
  $("status").textContent = `Not sold: ${(e.detail.body && e.detail.body.detail) || e.detail.status}`;
  showQueue();
});
outbox.addEventListener("retry", () => showQueue());

$("join").addEventListener("click", async () => {
  const response = await fetch(`${base}/sales/${lastOrder}/membership`, {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ tier: $("tier").value }),
  });
  const answer = await response.json().catch(() => ({}));
  $("member-status").textContent = response.ok
    ? `Welcome in: membership ${answer.membership_id} is ${answer.status}.`
    : `Not signed up: ${answer.detail || response.status}`;
});

$("link").addEventListener("click", async () => {
  const response = await fetch(`${base}/sales/${lastOrder}/signup-link`, { method: "POST", credentials: "same-origin" });
  $("member-status").textContent = response.ok ? "Sign-up link emailed." : "Could not send the link.";
});

function net() { $("net-state").textContent = navigator.onLine ? "online" : "offline"; }
window.addEventListener("online", net);
window.addEventListener("offline", net);
net();
$("find").addEventListener("input", showResults);
render();
showQueue();
outbox.start();
