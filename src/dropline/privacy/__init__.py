"""A customer's personal data across the domains: export it (JSON) and erase it.

It sits above customers, orders, memberships, risk, notifications and notes (it reads and
changes their rows) and below the HTTP floor and the CLI, which call it."""
