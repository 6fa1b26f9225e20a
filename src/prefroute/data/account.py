"""What became of every row of a user's file on its way to the fit.

The design's promise is that the user's data is never silently dropped: each
row either reaches the fit or is counted under the reason it did not. A
``FileAccount`` is that count for one ``--battles`` / ``--scores`` file; the
training recipe fills it stage by stage, ``prefroute train`` prints it, and the
artifact keeps it (``TrainingData.user_files``).

Standard library only: the artifact reads it back on the light load path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

__all__ = ["FileAccount"]


@dataclass(frozen=True)
class FileAccount:
    """Rows read -> battles made -> battles removed per reason -> battles in the fit.

    ``rows`` are the file's records; ``row_losses`` the rows that made no battle,
    per reason (a bad record skipped with ``--skip-bad``; in a scores file, a
    model that is alone on its prompt, with nothing to be compared with).
    ``averaged`` counts score rows of a model scored again on one prompt: they
    are averaged into one score, so they reach the fit, as one. A battles file
    gives one battle per row that is left; a scores file one battle per pair of
    models scored on a prompt. ``removed`` counts battles per reason (weight 0,
    eval contamination, not a model, ...); ``validation`` the battles held out
    for the validation report; ``fit`` those the router is fitted on.
    """

    file: str
    format: str
    dataset: str
    rows: int
    battles: int
    row_losses: Mapping[str, int] = field(default_factory=dict)
    averaged: int = 0
    removed: Mapping[str, int] = field(default_factory=dict)
    validation: int = 0
    fit: int = 0

    @property
    def used_rows(self) -> int:
        """Rows that made at least one battle."""
        return self.rows - sum(self.row_losses.values())

    @property
    def balanced(self) -> bool:
        """Whether every battle made is in the fit, in the validation split or removed."""
        return self.battles == sum(self.removed.values()) + self.validation + self.fit

    def with_removed(self, reason: str, battles: int) -> FileAccount:
        """This account with ``battles`` more removed under ``reason`` (0: unchanged)."""
        if not battles:
            return self
        removed = dict(self.removed)
        removed[reason] = removed.get(reason, 0) + battles
        return replace(self, removed=removed)

    def summary(self) -> str:
        """One line: ``file: R rows -> B battles; removed ...; V for validation; F in the fit``.

        Reasons are listed most rows first (then by name), the same order whether the
        account was just made or read back from an artifact.
        """

        def listed(counts: Mapping[str, int]) -> str:
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            return ", ".join(f"{n:,} {why}" for why, n in ranked)

        unit = "score rows" if self.format == "scores" else "rows"
        head = f"{self.file}: {self.rows:,} {unit}"
        notes = []
        if self.row_losses:
            notes.append(
                f"{sum(self.row_losses.values()):,} made no battle: {listed(self.row_losses)}"
            )
        if self.averaged:
            notes.append(f"{self.averaged:,} repeated scores averaged in")
        if notes:
            head += f" ({'; '.join(notes)})"
        parts = [f"{head} -> {self.battles:,} battles"]
        if self.removed:
            parts.append(f"removed {listed(self.removed)}")
        if self.validation:
            parts.append(f"{self.validation:,} held out for validation")
        parts.append(f"{self.fit:,} in the fit")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, object]:
        """JSON-able, for the artifact."""
        return {
            "file": self.file,
            "format": self.format,
            "dataset": self.dataset,
            "rows": self.rows,
            "battles": self.battles,
            "row_losses": dict(self.row_losses),
            "averaged": self.averaged,
            "removed": dict(self.removed),
            "validation": self.validation,
            "fit": self.fit,
        }
