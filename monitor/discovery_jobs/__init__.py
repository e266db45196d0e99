"""The periodic jobs that call the Discovery API: keeping watched events' details fresh
(names, dates, venues, sales, lifecycle news) and running the searches that add watches.

They draw on the same key and quota as polling, and poll nothing themselves. They import
the store, the Discovery client and polling's news and watchlist; nothing imports them but
the daemon's housekeeping, the command line and the services that name their results."""
