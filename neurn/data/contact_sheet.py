"""A contact sheet: a grid of samples per domain, to see the domain shift at a glance."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from archalign.utils.errors import UsageError
from neurn.data.domain import DigitDomain

__all__ = ["contact_sheet"]


def contact_sheet(domains: Iterable[str | DigitDomain], per_domain: int = 10, *,
                  seed: int = 0, figsize_scale: float = 0.6, **domain_kwargs):
    """A matplotlib ``Figure``: one row per domain, ``per_domain`` samples each.

    ``domains`` are names (built with ``neurn.data.domain(name, **domain_kwargs)``) or
    ``DigitDomain`` objects. With ``per_domain=10`` each row shows the digits 0-9 in
    order, where the domain has them. Generated domains are labelled as such.
    Built with ``matplotlib.figure.Figure`` (no pyplot), so it works headless; save it
    with ``fig.savefig(path)``.
    """
    from matplotlib.figure import Figure

    from neurn.data.registry import domain as load

    datasets = [load(d, **domain_kwargs) if isinstance(d, str) else d for d in domains]
    if not datasets:
        raise UsageError("contact_sheet needs at least one domain")
    fig = Figure(figsize=(figsize_scale * per_domain + 1.8, figsize_scale * len(datasets)))
    axes = fig.subplots(len(datasets), per_domain, squeeze=False)
    rng = np.random.default_rng(seed)
    for row, dataset in zip(axes, datasets):
        for column, ax in enumerate(row):
            index = _pick(dataset, column % 10, rng)
            ax.imshow(dataset.images[index].transpose(1, 2, 0), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        label = dataset.name + ("\n(generated)" if dataset.generated else "")
        row[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.subplots_adjust(left=0.15, right=0.99, top=0.99, bottom=0.01, wspace=0.05, hspace=0.05)
    return fig


def _pick(dataset: DigitDomain, digit: int, rng: np.random.Generator) -> int:
    """A random sample of ``digit``, or of any class when the domain lacks it."""
    members = np.flatnonzero(dataset.labels == digit)
    pool = members if len(members) else np.arange(len(dataset))
    return int(rng.choice(pool))
