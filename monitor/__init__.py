"""inventory-monitor: watches Ticketmaster events and reports availability changes."""

from __future__ import annotations

__version__ = "0.1.0"
USER_AGENT = f"inventory-monitor/{__version__}"
