"""What every settings record shares: one rule for ``settings=`` beside other options,
and secrets that never show in a repr."""

from __future__ import annotations

from typing import Any, TypeVar

import attrs

from ._errors import ConfigurationError

S = TypeVar("S")


def hidden(value: object) -> str:
    """A secret's repr: whether there is one, never what it is."""
    return "None" if value is None else "'<hidden>'"


def settle(kind: type[S], settings: S | None, options: dict[str, Any], opener: str) -> S:
    """The settings to run with: ``settings`` as given, or a ``kind`` of the options.

    Args:
        kind: the settings class (frozen attrs), whose defaults are the opener's.
        settings: what the caller passed as ``settings=`` (None: use ``options``).
        options: the opener's other options, as passed (or defaulted).
        opener: the function's name, for the error.

    Raises:
        ConfigurationError: ``settings`` is not a ``kind``, or came with options that
            differ from their defaults; it names them and says how to combine them.
    """
    if settings is None:
        return kind(**options)
    if not isinstance(settings, kind):
        raise ConfigurationError(
            f"{opener} settings= takes a fastworker.{kind.__name__}, "
            f"not {type(settings).__name__}"
        )
    defaults = attrs.asdict(kind(), recurse=False)  # type: ignore[arg-type]
    passed = sorted(k for k, v in options.items() if v is not defaults[k] and v != defaults[k])
    if passed:
        raise ConfigurationError(
            f"{opener} got settings= and {', '.join(passed)}: put them in the "
            "settings (attrs.evolve(settings, ...)) or pass no settings"
        )
    return settings
