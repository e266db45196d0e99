"""The Ticketmaster side: the Inventory Status client, what its answers say about the API's
health and quota, the token bucket that paces requests, and the quota planner.

May import the base modules and `config`; never `store`, `polling`, `notify` or `server`.
"""
