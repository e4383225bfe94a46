"""Option types the CLI's commands share."""

from __future__ import annotations

import math

import click


class FiniteRange(click.FloatRange):
    """click's FloatRange, refusing nan and inf too (nan passes its comparisons)."""

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number
