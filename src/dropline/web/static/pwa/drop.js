// The drop page: a countdown to the opening, and the shopper's own state (early access, place
// in the waiting room, waitlist) from the summary, refreshed while they wait.
import { summary } from "/static/pwa/app.js";

const article = document.querySelector("[data-drop-id]");
const countdown = document.getElementById("countdown");
const opensAt = Date.parse(article.dataset.startsAt);

function tick() {
  if (!countdown) return;
  const left = Math.max(0, Math.round((opensAt - Date.now()) / 1000));
  const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
  countdown.textContent = left ? `Opens to everyone in ${h}h ${m}m ${s}s` : "Opening now…";
  countdown.hidden = false;
  if (left) setTimeout(tick, 1000);
}
tick();

function show(me) {
  const d = me && me.drop;
  if (!d) return;
  // The viewer's own early access: theirs in minutes, or how to get it.
  const early = document.querySelector('[data-me="early-access"]');
  if (early) {
    const link = (href, text) => Object.assign(document.createElement("a"), { href, textContent: text });
    if (d.early_access_minutes) early.textContent = `You have ${d.early_access_minutes} minutes of early access.`;
    else if (!me.signed_in) early.replaceChildren(link(`/sign-in?next=/drops/${article.dataset.dropId}`, "Sign in"), " to see yours.");
    else early.replaceChildren("Your account has none: ", link("/membership", "become a member"), " to get it.");
  }
  const queue = document.querySelector('[data-me="queue"]');
  if (queue && d.queue) {
    queue.textContent = d.queue.admitted ? "It's your turn."
      : `You are number ${d.queue.position} in the waiting room; about ${d.queue.eta_seconds} s to go.`;
    const join = document.getElementById("join-form");
    if (d.queue.admitted && join) {  // the way to buy, in place of the join button
      const buy = document.createElement("a");
      buy.className = "button";
      buy.href = `/drops/${article.dataset.dropId}/me#buy`;
      buy.textContent = "Buy now";
      join.replaceWith(buy);
    }
    if (!d.queue.admitted) setTimeout(() => summary(article.dataset.dropId).then(show), Math.min(30, Math.max(2, d.queue.eta_seconds / 4)) * 1000);
  }
  const waitlist = document.querySelector('[data-me="waitlist"]');
  if (waitlist && d.waitlist) waitlist.textContent = `You are on the waitlist (${d.waitlist}).`;
  if (d.state !== article.dataset.state && d.state === "sold-out") {
    document.getElementById("drop-state").textContent = "Sold out. Reload the page to join the waitlist.";
  }
}
document.addEventListener("dropline:summary", (e) => show(e.detail));
