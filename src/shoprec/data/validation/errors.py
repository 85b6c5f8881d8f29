"""The one exception a data problem raises, and how its message is laid out.

A run stops on a *table-level* problem (unreadable file, missing column, empty table,
too many invalid rows): going on would produce a model trained on the wrong data. The
message is meant for the person who supplied the file, so it always says, in one
place, which file, which check, which rule, and shows up to five offending rows.
"""

from __future__ import annotations

from collections.abc import Sequence

SAMPLE_ROWS = 5


class DataValidationError(ValueError):
    """Input data breaks a table-level rule; ``str(exc)`` is the whole explanation."""

    def __init__(
        self, file: str, check: str, rule: str, sample: Sequence[str] = (), total: int | None = None
    ) -> None:
        self.file, self.check, self.rule = file, check, rule
        self.sample = list(sample)[:SAMPLE_ROWS]
        lines = [f"{file}: check '{check}' failed: {rule}"]
        if self.sample:
            total = len(sample) if total is None else total
            lines.append(f"offending rows (first {len(self.sample)} of {total}):")
            lines.extend(f"  {row}" for row in self.sample)
        super().__init__("\n".join(lines))
