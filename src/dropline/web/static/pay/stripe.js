// Stripe.js in the pages (DROPLINE_PAYMENTS=stripe), with the same exports as the local
// provider's script (/static/pay/local.js): the card goes from the browser to Stripe and only the
// PaymentMethod's id (pm_...) goes to the shop, in the form's hidden `payment_method`.
//
// With Stripe's own Stripe.js the card is typed into the Payment Element and turned into a
// PaymentMethod by `createPaymentMethod`. localstripe's stand-in (the tests) has no Payment
// Element and no working `createPaymentMethod`, only the Card Element and `confirmCardSetup`:
// there the card is set up through a SetupIntent the shop creates (POST /pay/stripe/setup-intents),
// and the SetupIntent's PaymentMethod is sent. Either way a bank asking for 3-D Secure is
// answered in the page.
//
// A charge the bank wants authenticated comes back as a page with [data-confirm-payment]: its
// client secret is confirmed here (the bank's challenge shows in the page) and the browser goes
// to the order's return address, where the shop asks Stripe for the outcome.

const config = document.querySelector("script[data-publishable-key]").dataset;
const stripe = window.Stripe(config.publishableKey);
const paymentElement = typeof stripe.confirmSetup === "function";  // Stripe's own Stripe.js
const mounted = new Map();  // form -> { elements, element, complete }

function mount(form) {
  const slot = form.querySelector("[data-card-element]");
  if (!slot) return null;
  if (!mounted.has(form)) {
    const elements = paymentElement
      ? stripe.elements({ mode: "setup", currency: config.currency, paymentMethodCreation: "manual" })
      : stripe.elements();
    const element = elements.create(paymentElement ? "payment" : "card");
    const state = { elements, element, complete: false };
    element.mount(slot);
    // The stand-in reports a change without details: something was typed.
    element.on("change", (event) => { state.complete = event ? Boolean(event.complete) : true; });
    mounted.set(form, state);
  }
  return mounted.get(form);
}

export function cardFilled(form) {
  const state = mount(form);
  return Boolean(state && state.complete);
}

export async function tokenise(form) {
  const state = mount(form);
  if (!state) throw new Error("this form takes no card");
  if (paymentElement) {
    const submitted = await state.elements.submit();
    if (submitted.error) throw new Error(submitted.error.message);
    const { paymentMethod, error } = await stripe.createPaymentMethod({ elements: state.elements });
    if (error) throw new Error(error.message);
    return paymentMethod.id;
  }
  const response = await fetch(config.setupUrl, { method: "POST", headers: { Accept: "application/json" } });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.detail || "the card could not be taken; try again");
  const { setupIntent, error } = await stripe.confirmCardSetup(
    answer.client_secret, { payment_method: { card: state.element } });
  if (error) throw new Error((error && error.message) || "the card was refused");
  return typeof setupIntent.payment_method === "string"
    ? setupIntent.payment_method : setupIntent.payment_method.id;
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

for (const form of document.querySelectorAll("form")) {
  if (!mount(form) || form.hasAttribute("data-outbox")) continue;
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

const pending = document.querySelector("[data-confirm-payment]");
if (pending) {
  const { clientSecret, returnTo, paymentMethod } = pending.dataset;
  // A held off-session renewal is confirmed again with its card (the member is here now).
  // Whatever the bank answers, the return address shows the outcome Stripe reports.
  stripe.confirmCardPayment(clientSecret, paymentMethod ? { payment_method: paymentMethod } : undefined)
    .finally(() => window.location.assign(returnTo));
}
