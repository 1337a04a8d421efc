/**
 * Offline-first outbox: idempotent writes kept in IndexedDB until the server has answered.
 *
 * Reusable by any page (checkout, a pop-up counter sale...). The API:
 *
 *   import { outbox } from "/static/pwa/outbox.js";
 *   const entry = await outbox.enqueue({ url, method, body, idempotencyKey, label });
 *   await outbox.pending();   // entries not yet answered, oldest first
 *   await outbox.flush();     // send them now (also runs on `online` and on start())
 *   outbox.start();           // once per page: flush now and whenever the browser is online
 *   outbox.addEventListener("queued" | "sent" | "failed" | "retry" | "payment" | "action",
 *                           (e) => e.detail);
 *   await outbox.answers();   // final answers of entries enqueued with `remember: true`
 *   await outbox.forget(key); // drop one of those answers once the shopper has seen it
 *
 * An entry enqueued with `remember: true` (an order) leaves, with its final answer, a small
 * record in a second store (`answers`: label, when it was placed and whether offline, when it
 * was answered, the order id and status or the refusal's detail), so whatever page the shopper
 * is on when it is sent, and after a reload, they are told what came of it.
 *
 * Payments: no card data, and no payment method either, is ever kept in the store. An entry
 * enqueued with `payment: true` holds only what to buy (cart, address, delivery, its key); when
 * it is sent, the page's `outbox.withPayment(entry)` is asked for the body to send with the
 * payment method reference in it (the page tokenises the card the shopper typed, or reuses the
 * reference it already got for that entry, from memory): it goes in the request only. Without one (the page was
 * reloaded, the card fields are empty) the entry stays queued and "payment" is dispatched: the
 * page asks the shopper to confirm payment, then calls flush() again.
 *
 * A payment the shopper's bank wants confirmed (3-D Secure: 402 `payment-requires-action`,
 * with the order's id and the provider's client secret) is a final answer too: the order exists
 * and waits for the bank, so the entry leaves the store and "action" is dispatched; the page
 * sends the shopper to confirm it (/orders/{id}/confirm-payment). A replay of the same entry is
 * answered with the same order, never a second one.
 *
 * `detail` is { entry } for "queued", and { entry, status, body } otherwise (`body` is the
 * parsed JSON answer, a problem+json object on "failed" and "action"; "sent", "failed" and
 * "action" add `answer`, the record kept for a `remember` entry, else null). "action": the
 * order exists and waits for the shopper's bank (3-D Secure), a final answer too.
 *
 * Rules that make replays safe:
 * - every entry carries an Idempotency-Key chosen once, on this device (crypto.randomUUID()),
 *   and resent unchanged with the same body, so the server returns the first answer instead of
 *   acting twice, however many times the entry is sent;
 * - an entry leaves the store only once the server has given a final answer: a 2xx ("sent") or
 *   a refusal that will not change on retry ("failed": 4xx, e.g. 409 out of stock, 402
 *   declined). Network errors, 5xx, 429 and "request in flight" keep it pending ("retry").
 */

const DB_NAME = "dropline-outbox";
const STORE = "entries";
const ANSWERS = "answers";

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 2);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
      if (!db.objectStoreNames.contains(ANSWERS)) db.createObjectStore(ANSWERS, { keyPath: "idempotencyKey" });
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function withStore(mode, work, name = STORE) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(name, mode);
      const result = work(tx.objectStore(name));
      tx.oncomplete = () => resolve(result && "result" in result ? result.result : result);
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

// The entry leaves the queue and its answer is kept, in one transaction: never both or neither.
async function settle(entry, answer) {
  const db = await openDb();
  try {
    await new Promise((resolve, reject) => {
      const tx = db.transaction([STORE, ANSWERS], "readwrite");
      tx.objectStore(STORE).delete(entry.id);
      if (answer) tx.objectStore(ANSWERS).put(answer);
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

function retryable(status, problem) {
  return status >= 500 || status === 408 || status === 429 ||
    (problem && typeof problem.type === "string" && problem.type.endsWith("/request-in-flight"));
}

class Outbox extends EventTarget {
  #flushing = null;
  #started = false;

  withPayment = null;  // async (entry) => the body with its payment method reference, or null

  async enqueue({ url, method = "POST", body, idempotencyKey, label = "", payment = false, remember = false }) {
    if (!url || !idempotencyKey) throw new Error("outbox.enqueue needs url and idempotencyKey");
    const entry = { url, method, body, idempotencyKey, label, payment, remember,
                    offline: !navigator.onLine, createdAt: Date.now(), attempts: 0 };
    entry.id = await withStore("readwrite", (store) => store.add(entry));
    this.dispatchEvent(new CustomEvent("queued", { detail: { entry } }));
    this.flush();
    return entry;
  }

  pending() {
    return withStore("readonly", (store) => store.getAll());
  }

  answers() {
    return withStore("readonly", (store) => store.getAll(), ANSWERS);
  }

  forget(idempotencyKey) {
    return withStore("readwrite", (store) => store.delete(idempotencyKey), ANSWERS);
  }

  flush() {
    // One flush at a time per page; a second call waits for the running one.
    if (!this.#flushing) {
      this.#flushing = this.#send().finally(() => { this.#flushing = null; });
    }
    return this.#flushing;
  }

  start() {
    if (this.#started) return;
    this.#started = true;
    window.addEventListener("online", () => this.flush());
    this.flush();
  }

  async #send() {
    if (!navigator.onLine) return;
    for (const entry of await this.pending()) {
      let body = entry.body;
      if (entry.payment) {
        let paid = null;
        try {
          paid = this.withPayment ? await this.withPayment(entry) : null;
        } catch (error) {  // the card was refused by the provider, or it is unreachable
          this.dispatchEvent(new CustomEvent("payment", { detail: { entry, status: 0, body: { detail: error.message } } }));
          continue;
        }
        if (!paid) {
          this.dispatchEvent(new CustomEvent("payment", { detail: { entry, status: 0, body: null } }));
          continue;
        }
        body = paid;
      }
      let response;
      try {
        response = await fetch(entry.url, {
          method: entry.method, credentials: "same-origin",
          headers: { "Content-Type": "application/json", "Idempotency-Key": entry.idempotencyKey },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (error) {  // offline or the server unreachable: keep it, try again later
        this.dispatchEvent(new CustomEvent("retry", { detail: { entry, status: 0, body: null } }));
        return;
      }
      const answer = await response.json().catch(() => null);
      const detail = { entry, status: response.status, body: answer };
      if (!response.ok && retryable(response.status, answer)) {
        entry.attempts += 1;
        await withStore("readwrite", (store) => store.put(entry));
        this.dispatchEvent(new CustomEvent("retry", { detail }));
        return;
      }
      const action = response.status === 402 && answer && answer.order_id &&
        String(answer.type || "").endsWith("/payment-requires-action");
      const problem = answer || {};
      detail.answer = entry.remember ? {
        idempotencyKey: entry.idempotencyKey, label: entry.label, offline: !!entry.offline,
        createdAt: entry.createdAt, answeredAt: Date.now(), ok: response.ok, status: response.status,
        orderId: response.ok ? problem.id : action ? problem.order_id : null,
        orderStatus: response.ok ? problem.status : action ? "awaiting-payment" : null,
        type: response.ok ? null : problem.type || null, detail: response.ok ? null : problem.detail || null,
      } : null;
      await settle(entry, detail.answer);
      this.dispatchEvent(new CustomEvent(response.ok ? "sent" : action ? "action" : "failed", { detail }));
    }
  }
}

export const outbox = new Outbox();
