// The shopper's orders on this device, on every page (the panel is in base.html): orders kept
// while offline, from the moment they are placed until the server answered, and then what came
// of each (sent: the order and its status; refused: why, and that nothing was charged), with
// when it was placed and when it was sent. Answers stay until dismissed or seen on their own
// order page, so a reload or a different page does not lose them.
import { outbox } from "/static/pwa/outbox.js";

const panel = document.getElementById("outbox");
const list = document.getElementById("outbox-list");
const onCheckout = () => document.getElementById("checkout-form") !== null;
const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const placed = (item) => `${item.label}, placed at ${clock(item.createdAt)}${item.offline ? " while offline" : ""}`;

export function row(entry) {
  let li = list.querySelector(`[data-idempotency-key="${entry.idempotencyKey}"]`);
  if (!li) {
    li = document.createElement("li");
    li.dataset.idempotencyKey = entry.idempotencyKey;
    list.append(li);
  }
  if (entry.body) li.dataset.body = JSON.stringify(entry.body);
  panel.hidden = false;
  return li;
}

function remove(li) {
  li.remove();
  panel.hidden = list.children.length === 0;
}

function dismissButton(li, key) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "quiet";
  button.textContent = "Dismiss";
  button.addEventListener("click", () => outbox.forget(key).then(() => remove(li)));
  return button;
}

export function pending(entry) {
  const li = row(entry);
  li.dataset.state = "pending";
  li.textContent = `${placed(entry)}: pending. It is kept on this device and sent as soon as you are online.`;
}

export function awaitingPayment(entry) {
  if (onCheckout()) return;  // the checkout page asks for the card in place (checkout.js)
  const li = row(entry);
  li.dataset.state = "awaiting-payment";
  li.textContent = `${placed(entry)}: kept on this device, waiting for you to confirm payment. `;
  const link = document.createElement("a");
  link.href = "/checkout";
  link.textContent = "Confirm payment at checkout";
  li.append(link);
}

export function answered(answer) {
  const li = row(answer);
  const bank = !answer.ok && answer.status === 402 && answer.orderId;  // 3-D Secure waits
  li.dataset.state = answer.ok ? "sent" : bank ? "awaiting-bank" : "failed";
  li.textContent = "";
  if (bank) {
    li.dataset.orderId = answer.orderId;
    const link = document.createElement("a");
    link.href = `/orders/${Number(answer.orderId)}/confirm-payment`;
    link.textContent = "Confirm with your bank";
    li.append(`${placed(answer)}: order ${answer.orderId} is placed and your bank asks you to confirm the payment. `, link, ". ");
  } else if (answer.ok) {
    li.dataset.orderId = answer.orderId;
    const link = document.createElement("a");
    link.href = `/orders/${answer.orderId}`;
    link.textContent = `Order ${answer.orderId} placed`;
    li.append(`${placed(answer)}: sent at ${clock(answer.answeredAt)}. `, link, ` (${String(answer.orderStatus).replaceAll("-", " ")}). `);
  } else {
    const soldOut = answer.status === 409 && String(answer.type || "").endsWith("/out-of-stock");
    li.setAttribute("role", "alert");
    li.append(soldOut
      ? `Sold out while you were offline: ${answer.detail}. Your order was not placed and nothing was charged. `
      : `Your order was not placed: ${answer.detail || "refused"} (nothing was charged). `,
      `(${placed(answer)}; answered at ${clock(answer.answeredAt)}.) `);
  }
  li.append(dismissButton(li, answer.idempotencyKey));
}

// An order page shows its own answer as the confirmation's footnote, then forgets it.
async function showAnswers() {
  const here = document.querySelector("[data-order-id]");
  for (const answer of await outbox.answers()) {
    if (here && answer.ok && String(answer.orderId) === here.dataset.orderId) {
      const note = document.getElementById("sent-note");
      if (note) {
        note.textContent = `Placed on this device at ${clock(answer.createdAt)}${answer.offline ? " while you were offline" : ""}, ` +
          `sent at ${clock(answer.answeredAt)}.`;
        note.hidden = false;
      }
      await outbox.forget(answer.idempotencyKey);
    } else {
      answered(answer);
    }
  }
}

if (panel && list) {
  outbox.addEventListener("queued", (e) => pending(e.detail.entry));
  outbox.addEventListener("retry", (e) => pending(e.detail.entry));
  outbox.addEventListener("payment", (e) => awaitingPayment(e.detail.entry));
  outbox.addEventListener("sent", (e) => { if (e.detail.answer) answered(e.detail.answer); });
  outbox.addEventListener("failed", (e) => { if (e.detail.answer) answered(e.detail.answer); });
  outbox.addEventListener("action", (e) => { if (e.detail.answer) answered(e.detail.answer); });
  outbox.pending().then((entries) => entries.filter((e) => e.remember).forEach(pending))
    .then(showAnswers).catch(() => {});
}
