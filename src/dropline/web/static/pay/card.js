// The card provider's script of this page, whichever provider the shop runs: Stripe.js's
// (/static/pay/stripe.js, loaded with its settings on a payment page) or the local provider's.
// Both export cardFilled(form) and tokenise(form) -> the payment method reference.
const stripe = document.querySelector("script[data-publishable-key]");
const provider = await import(stripe ? "/static/pay/stripe.js" : "/static/pay/local.js");
export const { cardFilled, tokenise } = provider;
