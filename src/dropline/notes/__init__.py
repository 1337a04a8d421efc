"""Staff notes on an order or a customer: written in the console, shown on its page."""
