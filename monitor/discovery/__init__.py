"""What Ticketmaster's Discovery API knows about events: names, dates, venues, sales, and its
search. May import `upstream` (pacing, quota and the answers' plumbing) and the base modules;
never `store`, `polling` or anything above."""
