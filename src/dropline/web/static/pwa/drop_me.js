// "My place" while waiting: reload when the shopper's turn may have come, so the buy form
// appears in place (without JavaScript a <noscript> refresh does the same).
const waiting = document.querySelector("[data-reload-in]");
if (waiting) setTimeout(() => location.reload(), Number(waiting.dataset.reloadIn) * 1000);
