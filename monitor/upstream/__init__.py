"""The Ticketmaster side: the Inventory Status client and how its answers are read, what
they say about the API's health and quota, the token bucket that paces requests, request
sizing and the quota planner (these two pure).

May import the base modules and `config`; never `store`, `polling`, `notify` or `server`.
"""
