"""Check a string parameter against its allowed values, suggesting the closest one."""

from __future__ import annotations

from collections.abc import Iterable

from ginpipe import ConfigError, did_you_mean


def check_choice(value: str, choices: Iterable[str], parameter: str) -> None:
    """Raise a ConfigError naming ``parameter`` unless ``value`` is one of ``choices``.

    gin cannot validate string values, so a typo would otherwise surface much later.
    """
    choices = list(choices)
    if value not in choices:
        raise ConfigError(
            f"{parameter}={value!r} is not one of {', '.join(choices)}"
            f"{did_you_mean(str(value), choices)}"
        )
