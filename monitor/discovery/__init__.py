"""What Ticketmaster's Discovery API knows about events: names, dates, venues, sales."""
