"""Typed warnings for the places where detopt falls back instead of failing a campaign.

Each is a ``UserWarning`` subclass, so a user (or a test) can turn one kind into an error
(``-W error::optimizer.fallbacks.SurrogateFitWarning``) or silence it without hiding others.
"""

from __future__ import annotations


class DetoptFallbackWarning(UserWarning):
    """detopt carried on with a weaker method than asked for; the message says which and why."""


class SurrogateFitWarning(DetoptFallbackWarning):
    """A model-based strategy's surrogate could not be fitted; the strategy kept its previous model
    (or proposed a space-filling design) for this step."""


class InferredNoiseWarning(DetoptFallbackWarning):
    """GP-BO could not use the statistics' standard errors as known noise and inferred the noise instead."""


def one_line_warnings() -> None:
    """Print detopt's fallback warnings as one ``warning: message`` line (no file, line or source);
    other warnings keep Python's format."""
    import warnings

    default = warnings.formatwarning

    def fmt(message: Warning | str, category: type[Warning], filename: str, lineno: int,
            line: str | None = None) -> str:
        if issubclass(category, DetoptFallbackWarning):
            return f"warning: {message}\n"
        return default(message, category, filename, lineno, line)

    warnings.formatwarning = fmt
