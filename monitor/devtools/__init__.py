"""Tools for trying the monitor without Ticketmaster: a protocol-faithful simulator of the
Inventory Status and Discovery APIs, and the demo's catalog. Used by the CLI alone; may
import every layer below `app` (it reads `config`, `markets` and `upstream`'s paths)."""
