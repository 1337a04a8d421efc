// The local payment provider's stand-in for Stripe.js: the card goes from the browser to the
// provider's tokenising endpoint (POST /pay/local/tokens) and only its reference (pm_...)
// goes to the shop. The card fields have no `name`, so no form ever posts them; this script
// fills the form's hidden `payment_method` and then submits it.
//
//   import { tokenise, cardFilled } from "/static/pay/local.js";
//   const reference = await tokenise(form);   // throws Error(message) when refused
//
// Forms marked `data-outbox` (the offline checkout) call tokenise themselves.

const field = (form, name) => form.querySelector(`[data-card="${name}"]`);

export function cardFilled(form) {
  const number = field(form, "number");
  return Boolean(number && number.value.trim());
}

export async function tokenise(form) {
  const value = (name) => (field(form, name) ? field(form, name).value.trim() : "");
  const response = await fetch("/pay/local/tokens", {
    method: "POST", credentials: "omit", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      number: value("number").replace(/[\s-]+/g, ""), exp_month: Number(value("exp_month")),
      exp_year: Number(value("exp_year")), cvc: value("cvc"),
    }),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.detail || "the card could not be read");
  return answer.id;
}

function showError(form, message) {
  let p = form.querySelector(".card-error");
  if (!p) {
    p = document.createElement("p");
    p.className = "error card-error";
    p.setAttribute("role", "alert");
    form.prepend(p);
  }
  p.textContent = message;
}

// Required only with this script: without JavaScript the fields are hidden and the form goes on
// to the provider's hosted card page.
for (const input of document.querySelectorAll("[data-card]")) input.required = true;

for (const form of document.querySelectorAll("form")) {
  if (!field(form, "number") || form.hasAttribute("data-outbox")) continue;
  form.addEventListener("submit", async (event) => {
    if (form.elements.payment_method.value) return;  // tokenised: the real submit
    event.preventDefault();
    try {
      form.elements.payment_method.value = await tokenise(form);
    } catch (error) {
      showError(form, error.message);
      return;
    }
    form.requestSubmit(event.submitter || undefined);
  });
}
