// Every storefront page: registers the service worker, shows when the device is offline,
// fills the personal bits of the (cached, identical for everyone) page from
// /api/v1/me/summary, and sends any checkout kept while offline.
import { outbox } from "/static/pwa/outbox.js";
import "/static/pwa/outbox_view.js";

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
}

const net = document.getElementById("net");
const showNet = () => { if (net) net.hidden = navigator.onLine; };
window.addEventListener("online", showNet);
window.addEventListener("offline", showNet);
showNet();

export async function summary(dropId, productId) {
  const query = new URLSearchParams();
  if (dropId) query.set("drop", dropId);
  if (productId) query.set("product", productId);
  const url = "/api/v1/me/summary" + (query.size ? "?" + query : "");
  const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  return response.ok ? response.json() : null;
}

const drop = document.querySelector("[data-drop-id]");
const product = document.querySelector("[data-product-id]");
summary(drop ? drop.dataset.dropId : null, product ? product.dataset.productId : null).then((me) => {
  if (!me) return;
  const cart = document.querySelector('[data-me="cart"]');
  // Written into room the layout already keeps, so nothing moves (no layout shift).
  if (cart && me.cart_count) cart.textContent = "(" + me.cart_count + ")";
  const account = document.querySelector('[data-me="account"]');
  if (account && me.signed_in) account.title = "Signed in as " + me.name + (me.member ? " · " + me.member.tier + " member" : "");
  // The page is the same for everyone (cached); a member's own price is written in here.
  for (const [variant, price] of Object.entries(me.member_prices || {})) {
    const slot = document.querySelector(`[data-member-price="${variant}"]`);
    if (!slot) continue;
    slot.textContent = `Your ${me.member.tier} member price: ${price.formatted}`;
    slot.hidden = false;
    slot.previousElementSibling.classList.add("was");
  }
  document.dispatchEvent(new CustomEvent("dropline:summary", { detail: me }));
}).catch(() => {});

outbox.start();
