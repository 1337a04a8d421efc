// Offline-first checkout: the checkout form becomes an idempotent POST /api/v1/checkout kept in
// the outbox (IndexedDB) until the server answers. The outbox keeps what to buy (cart, address,
// delivery, the key) and never the card: the card is tokenised with the payment provider when
// the order is sent, and the reference lives in this page's memory only. An order queued
// offline is sent on reconnect if the shopper is still on the page (they confirmed it by placing
// it); after a reload it waits for them to confirm payment again.
import { outbox } from "/static/pwa/outbox.js";
import { cardFilled, tokenise } from "/static/pay/card.js";

const form = document.getElementById("checkout-form");
const panel = document.getElementById("outbox");
const list = document.getElementById("outbox-list");
const newKey = () => { form.elements.key.value = crypto.randomUUID(); };
newKey();  // the attempt's key is chosen here, on the device

const confirmed = new Set();   // keys whose payment the shopper confirmed in this page
const references = new Map();  // key -> payment method reference; memory only, never stored

outbox.withPayment = async (entry) => {
  const key = entry.idempotencyKey;
  if (!references.has(key)) {  // a resend carries the same reference, so the same body
    if (!confirmed.has(key) || !cardFilled(form)) return null;
    references.set(key, await tokenise(form));
  }
  return { ...entry.body, payment_method: references.get(key) };
};

function body() {
  const f = form.elements;
  const delivery = form.querySelector('input[name="delivery"]');  // picked in #delivery-form
  const out = {
    cart_id: form.dataset.cartId,
    shipping_address: { name: f.name.value, line1: f.line1.value, line2: f.line2.value, city: f.city.value, postcode: f.postcode.value, country: f.country.value || "GB" },
  };
  if (delivery && delivery.value !== "central") out.delivery = { window_id: Number(delivery.value) };
  const code = form.querySelector('input[name="discount_code"]');  // applied in #delivery-form
  if (code && code.value) out.discount_code = code.value;
  if (f.vat_number && f.vat_number.value) out.vat_number = f.vat_number.value;
  return out;
}

function row(entry) {
  let li = list.querySelector(`[data-idempotency-key="${entry.idempotencyKey}"]`);
  if (!li) {
    li = document.createElement("li");
    li.dataset.idempotencyKey = entry.idempotencyKey;
    list.append(li);
  }
  li.dataset.body = JSON.stringify(entry.body);
  panel.hidden = false;
  return li;
}

function pending(entry) {
  const li = row(entry);
  li.dataset.state = "pending";
  li.textContent = `${entry.label}: pending. It is kept on this device and sent as soon as you are online.`;
}

outbox.addEventListener("payment", ({ detail }) => {
  const li = row(detail.entry);
  li.dataset.state = "awaiting-payment";
  li.textContent = `${detail.entry.label}: waiting for payment. ` +
    (detail.body ? `${detail.body.detail}. ` : "") + "Enter your card above, then ";
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Confirm payment";
  button.addEventListener("click", () => {
    if (!cardFilled(form)) { form.reportValidity(); return; }
    confirmed.add(detail.entry.idempotencyKey);
    outbox.flush();
  });
  li.append(button);
  form.hidden = false;
});
outbox.addEventListener("queued", (e) => pending(e.detail.entry));
outbox.addEventListener("retry", (e) => pending(e.detail.entry));
outbox.addEventListener("sent", ({ detail }) => {
  const li = row(detail.entry);
  li.dataset.state = "sent";
  li.dataset.orderId = detail.body.id;
  li.innerHTML = "";
  const link = document.createElement("a");
  link.href = `/orders/${detail.body.id}`;
  link.textContent = `Order ${detail.body.id} placed`;
  li.append(link, ` (${detail.body.status}).`);
  form.hidden = true;
});
outbox.addEventListener("action", ({ detail }) => {
  // The order is placed and waits for the shopper's bank (3-D Secure): on to its confirm page,
  // where the provider's script (or the bank's own page) asks them, as the online checkout does.
  const li = row(detail.entry);
  const confirmAt = `/orders/${Number(detail.body.order_id)}/confirm-payment`;
  li.dataset.state = "awaiting-bank";
  li.dataset.orderId = detail.body.order_id;
  li.textContent = `${detail.entry.label}: your bank asks you to confirm the payment. `;
  const link = document.createElement("a");
  link.href = confirmAt;
  link.textContent = "Confirm with your bank";
  li.append(link);
  form.hidden = true;
  window.location.assign(confirmAt);
});
outbox.addEventListener("failed", ({ detail }) => {
  const li = row(detail.entry);
  li.dataset.state = "failed";
  const problem = detail.body || {};
  const soldOut = detail.status === 409 && String(problem.type || "").endsWith("/out-of-stock");
  li.setAttribute("role", "alert");
  li.textContent = soldOut
    ? `Sold out while you were offline: ${problem.detail}. Your order was not placed and nothing was charged.`
    : `Your order was not placed: ${problem.detail || "refused"} (nothing was charged).`;
});

form.addEventListener("submit", async (event) => {
  if (!form.reportValidity()) return;
  event.preventDefault();
  const lines = form.closest("main").querySelectorAll(".items li").length;
  confirmed.add(form.elements.key.value);  // placing the order confirms its payment
  await outbox.enqueue({ url: "/api/v1/checkout", body: body(), idempotencyKey: form.elements.key.value,
                         label: `Order of ${lines} item${lines === 1 ? "" : "s"}`, payment: true });
  newKey();  // a second, deliberate order is a new attempt
});

outbox.pending().then((entries) => entries.forEach(pending));
