"""The periodic jobs that call the Discovery API: keeping watched events' details fresh
(names, dates, venues, sales, lifecycle news) and running the searches that add watches.

They draw on the same key and quota as polling, and poll nothing themselves. May import
`polling` (its news and watchlist), `notify`, `store`, `discovery`, `upstream`, `config` and
the base modules; never `watching`, the services above it, `server` or `cli`."""
