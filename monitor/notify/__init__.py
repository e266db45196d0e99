"""Notification: policy as pure stages (routing, grouping, cooldown, quiet hours), rendering,
the outbox dispatcher and the switchboard that runs it with the notifiers in force, what
state-keeping notifiers are told (`announcer`), the watchdog's notices, and `notifiers/`,
one module per kind (which import neither the store nor the Ticketmaster client).

May import `store` (the outbox, accounts), `upstream` (health, for the watchdog and the
announcer), `config` and the base modules; never `polling`, `discovery`, `server` or
`cli`. The pure stages import no I/O package at all.
"""
