// Every storefront page: registers the service worker, shows when the device is offline,
// fills the personal bits of the (cached, identical for everyone) page from
// /api/v1/me/summary, and sends any checkout kept while offline.
import { outbox } from "/static/pwa/outbox.js";

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
}

const net = document.getElementById("net");
const showNet = () => { if (net) net.hidden = navigator.onLine; };
window.addEventListener("online", showNet);
window.addEventListener("offline", showNet);
showNet();

export async function summary(dropId) {
  const url = "/api/v1/me/summary" + (dropId ? "?drop=" + dropId : "");
  const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  return response.ok ? response.json() : null;
}

const drop = document.querySelector("[data-drop-id]");
summary(drop ? drop.dataset.dropId : null).then((me) => {
  if (!me) return;
  const cart = document.querySelector('[data-me="cart"]');
  if (cart && me.cart_count) { cart.textContent = "(" + me.cart_count + ")"; cart.hidden = false; }
  const account = document.querySelector('[data-me="account"]');
  if (account && me.signed_in) account.textContent = me.name + (me.member ? " · " + me.member.tier : "");
  document.dispatchEvent(new CustomEvent("dropline:summary", { detail: me }));
}).catch(() => {});

outbox.start();
