"""Polling: the watchlist as the poller sees it, the ticker, the poller and its cache, the
recorder that turns answers into writes, and pure change detection.

May import `notify` (to route a change to its notifiers), `store`, `upstream`, `config` and
the base modules; never `discovery_jobs`, `watching`, `server` or `cli`.
"""
