"""Polling: the watchlist as the poller sees it, the ticker, the poller and its cache, pure
change detection, and the jobs that ask Discovery (details, searches).

May import `notify` (to route a change to its notifiers), `store`, `discovery`, `upstream`,
`config` and the base modules; never `watching`, `server` or `cli`.
"""
