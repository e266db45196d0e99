from __future__ import annotations

from monitor.cli import main

raise SystemExit(main())
