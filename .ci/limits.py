"""Size and complexity limits for the package: a module of at most 400 lines, no block above 12.

Complexity is radon's cyclomatic count, which (unlike ruff's mccabe) counts every `and`/`or`,
so a condition that hides five cases in one line is counted as five.
"""

from __future__ import annotations

import sys
from pathlib import Path

from radon.complexity import cc_visit
from radon.visitors import Class

MAX_LINES = 400
MAX_COMPLEXITY = 12


def problems(root: Path) -> list[str]:
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        lines = text.count("\n")
        if lines > MAX_LINES:
            found.append(f"{path}: {lines} lines (at most {MAX_LINES})")
        # Methods come twice, alone and inside their class: the class's own sum is skipped.
        for block in cc_visit(text):
            if not isinstance(block, Class) and block.complexity > MAX_COMPLEXITY:
                found.append(
                    f"{path}:{block.lineno}: {block.fullname} has complexity {block.complexity}"
                    f" (at most {MAX_COMPLEXITY})"
                )
    return found


def main() -> int:
    found = [p for root in sys.argv[1:] for p in problems(Path(root))]
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
