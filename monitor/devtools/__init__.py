"""Tools for trying the monitor without Ticketmaster: a protocol-faithful simulator of the
Inventory Status API. May import `upstream` (for the path it serves) and the base modules."""
