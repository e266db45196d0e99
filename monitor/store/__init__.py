"""Persistence: engine set-up, the schema's table objects, typed records and row mappers, and
set-based operations over them (watchlist, polls, outbox, reads, replicas, retention).

May import `config` and the base modules; never `upstream`, `polling`, `notify`, `server` or
`cli`. Policy lives in `notify`; the store only applies what it is told.
"""
