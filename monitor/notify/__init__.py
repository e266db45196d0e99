"""Notification: policy as pure stages (routing, grouping, cooldown), rendering, the outbox
dispatcher, the watchdog's notices, and `notifiers/`, one module per kind.

May import `store` (the outbox), `upstream` (health, for the watchdog), `config` and the base
modules; never `polling`, `server` or `cli`.
"""
