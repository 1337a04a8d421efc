// Offline-first checkout: the checkout form becomes an idempotent POST /api/v1/checkout kept in
// the outbox (IndexedDB) until the server answers. The outbox keeps what to buy (cart, address,
// delivery, the key) and never the card: the card is tokenised with the payment provider when
// the order is sent, and the reference lives in this page's memory only. An order queued
// offline is sent on reconnect if the shopper is still on the page (they confirmed it by placing
// it); after a reload it waits for them to confirm payment again. Once sent, the shopper lands on
// the order's confirmation page, as the form without JavaScript does.
import { outbox } from "/static/pwa/outbox.js";
import { row } from "/static/pwa/outbox_view.js";
import { cardFilled, tokenise } from "/static/pay/card.js";

const form = document.getElementById("checkout-form");
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

// The panel's rows (pending, sent, refused) are drawn by outbox_view.js on every page; here the
// checkout adds the card prompt for an order waiting for payment, and a placed order ends on
// its confirmation page.
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
outbox.addEventListener("sent", ({ detail }) => {
  form.hidden = true;
  if (detail.entry.url === "/api/v1/checkout") location.assign(`/orders/${detail.body.id}?placed=1`);
});
outbox.addEventListener("action", ({ detail }) => {
  // The order is placed and waits for the shopper's bank (3-D Secure): on to its confirm page,
  // where the provider's script (or the bank's own page) asks them, as the online checkout
  // does; the panel of orders on this device (outbox_view.js) links there too.
  form.hidden = true;
  window.location.assign(`/orders/${Number(detail.body.order_id)}/confirm-payment`);
});

form.addEventListener("submit", async (event) => {
  if (!form.reportValidity()) return;
  event.preventDefault();
  const lines = form.closest("main").querySelectorAll(".items li").length;
  confirmed.add(form.elements.key.value);  // placing the order confirms its payment
  await outbox.enqueue({ url: "/api/v1/checkout", body: body(), idempotencyKey: form.elements.key.value,
                         label: `Order of ${lines} item${lines === 1 ? "" : "s"}`, payment: true, remember: true });
  newKey();  // a second, deliberate order is a new attempt
});

