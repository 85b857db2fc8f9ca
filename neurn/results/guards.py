"""Guard rails of the NeuRN study's tables: numbers a reader should not take at face value.

* **undertrained**: a run whose selected checkpoint scores below
  ``UNDERTRAINED_VAL_TOP1`` on source validation;
* **at chance**: a target domain on which every model and variant is within
  ``AT_CHANCE_POINTS`` of chance (100 / classes).

Flagged runs and targets stay in the tables, marked ``†`` / ``‡``; ``Flags.legend``
explains the marks under a table and ``Flags.messages`` gives the console lines. Works
on result rows and summary records only (:mod:`neurn.results.tables` builds them), so this
module imports nothing of the study.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AT_CHANCE_MARK", "AT_CHANCE_POINTS", "DIGIT_CLASSES", "Flags",
           "UNDERTRAINED_MARK", "UNDERTRAINED_VAL_TOP1", "guard_rails"]

UNDERTRAINED_VAL_TOP1 = 90.0
"""Source-validation top-1 (%) of the selected checkpoint below which a run is flagged
undertrained. Every backbone of the study fits the digits source well past this with a
sufficient budget, so a run below it ran short of steps or had a poor learning rate, and
its target numbers say more about the budget than about the architecture or NeuRN."""

AT_CHANCE_POINTS = 2.0
"""A target domain on which every model and variant (mean over seeds) lies within this
many points of chance (100 / classes) is flagged: it does not discriminate between the
variants, so their differences there are noise."""

DIGIT_CLASSES = 10
"""Class count of a run record that does not state one: the study builds every model
with ``num_classes=10`` (the ten digits). Sets chance for ``AT_CHANCE_POINTS``."""

UNDERTRAINED_MARK = "†"
AT_CHANCE_MARK = "‡"


@dataclass(frozen=True)
class Flags:
    """What ``guard_rails`` found in one table."""

    undertrained: tuple[dict, ...]  # study, model, variant, seed, val_top1
    at_chance: tuple[str, ...]  # target domains
    chance: float  # top-1 (%) of guessing; NaN without finished runs

    def marks(self, model: str, variant: str, study: str | None = None) -> bool:
        """Whether the table row (model, variant) holds an undertrained run."""
        return any((r["study"], r["model"], r["variant"]) == (study, model, variant)
                   for r in self.undertrained)

    def _flags(self) -> list[tuple[str, str]]:
        out = []
        if self.undertrained:
            runs = ", ".join((f"{r['study']}: " if r["study"] is not None else "") +
                             f"{r['model']} {r['variant']} seed {r['seed']}" +
                             (f" ({r['group']} held out)" if r.get("group") else "") +
                             f" ({r['val_top1']:.1f}%)" for r in self.undertrained)
            out.append((UNDERTRAINED_MARK,
                        f"undertrained: selected checkpoint below {UNDERTRAINED_VAL_TOP1:g}% "
                        f"source validation top-1: {runs}; target numbers of such runs say little: "
                        f"train longer (--steps / --epochs) or try another --lr"))
        if self.at_chance:
            out.append((AT_CHANCE_MARK,
                        f"at chance: {', '.join(self.at_chance)}: every model and variant is "
                        f"within {AT_CHANCE_POINTS:g} points of chance ({self.chance:.1f}%); "
                        f"this target does not discriminate"))
        return out

    def messages(self) -> list[str]:
        """One line per kind of flag, for the console."""
        return [message for _, message in self._flags()]

    def legend(self) -> list[str]:
        """The same lines with the mark they explain, for under a table."""
        return [f"{mark} {message}." for mark, message in self._flags()]


def guard_rails(rows: list[dict], summary: list[dict]) -> Flags:
    """Flag undertrained runs and at-chance targets of result rows and their summary.

    Rows and records may carry a ``study`` key (``neurn compare`` merges folders): runs
    are told apart by it, and a target is at chance only if it is for every study."""
    ok = [r for r in rows if r["status"] == "ok"]
    # rows repeat a run's val_top1 once per domain: key by run
    runs = {(r.get("study"), r["model"], r["variant"], r["seed"], r.get("group")):
            r["val_top1"] for r in ok
            if r["val_top1"] is not None and r["val_top1"] < UNDERTRAINED_VAL_TOP1}
    # in a fixed order: a study prints them in grid order, `neurn table` in folder order
    order = sorted(runs, key=lambda k: (str(k[0]), k[1], k[2], k[3], str(k[4])))
    undertrained = tuple({"study": k[0], "model": k[1], "variant": k[2], "seed": k[3],
                          "group": k[4], "val_top1": runs[k]} for k in order)
    classes = {r["num_classes"] for r in ok}
    if len(classes) != 1:  # no finished runs (a comparison refuses mixed class counts)
        return Flags(undertrained, (), float("nan"))
    chance = 100.0 / classes.pop()
    targets = {r["domain"] for r in ok if r["role"] == "target"}
    means: dict[str, list[float]] = {}
    for s in summary:
        if s["kind"] == "score" and s["domain"] in targets:
            means.setdefault(s["domain"], []).append(s["mean"])
    at_chance = tuple(d for d, values in means.items()
                      if all(abs(v - chance) <= AT_CHANCE_POINTS for v in values))
    return Flags(undertrained, at_chance, chance)
