"""Polling: the watchlist as the poller sees it, batching, the ticker, the poller and pure
change detection.

May import `upstream`, `notify` (to route a change to its notifiers), `store`, `config` and
the base modules; never `server` or `cli`.
"""
