"""Persistence: engine set-up, the schema's table objects, typed records and row mappers, and
set-based operations over them (watchlist, polls, outbox, reads, replicas, retention,
accounts, subscriptions, followed searches).

May import `discovery` (a Discovery answer, to keep what it says), `upstream` (health and
quota records), `config` and the base modules; never `polling`, `notify`, `watching`,
`server` or `cli`. Policy lives above; the store only applies what it is told. Batch
planning (`batching`) is pure and imports no I/O package.
"""
