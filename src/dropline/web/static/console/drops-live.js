// The console's drops page: refreshes each live drop's card every 5 s (the CSP allows no
// inline script, so this lives here).
(function () {
  var cards = document.querySelectorAll("[data-live]");
  function poll() {
    cards.forEach(function (card) {
      fetch(card.getAttribute("data-live"), {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) {
          if (!d) return;
          ["state", "sold", "held", "waiting_room"].forEach(function (k) {
            var el = card.querySelector('[data-field="' + k + '"]');
            if (el) el.textContent = d[k];
          });
          var m = card.querySelector('[data-field="meter"]');
          if (m) m.value = d.sold;
        }).catch(function () {});
    });
  }
  setInterval(poll, 5000);
})();
