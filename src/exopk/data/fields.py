"""Parse single cells of data files: numbers, bounded values, doses and counts.

Each parser returns the parsed value or raises :class:`ValueError` with a message that says
what is wrong with the cell; callers attach the file, line and column.
"""

from __future__ import annotations

import math
import re

__all__ = ["parse_number", "parse_value", "parse_nonnegative", "parse_dose", "parse_count"]

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_UNSIGNED = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_DOSE = re.compile(rf"({_UNSIGNED})(?:-({_UNSIGNED}))?")


def parse_number(text: str) -> float:
    """Parse a decimal number (``12``, ``0.20``, ``-3``, ``1.1e+01``) to a finite float.

    Raises
    ------
    ValueError
        Not a number, NaN or infinite (written or by overflow).
    """
    if _NON_FINITE.fullmatch(text):
        raise ValueError(f"{text!r} is not allowed: values must be finite numbers")
    if _NUMBER.fullmatch(text) is None:
        raise ValueError(f"non-numeric value {text!r}")
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text!r} is too large to be represented")
    return number


def parse_value(text: str) -> float:
    """Parse a value of the evidence schema: a number with an optional leading ``<`` or ``>``.

    Returns
    -------
    float
        The number after the sign (``<10`` gives 10.0).
    """
    return parse_number(text[1:] if text[:1] in ("<", ">") else text)


def parse_nonnegative(text: str, what: str) -> float:
    """Parse a number that must not be negative; ``what`` names it in the message."""
    number = parse_number(text)
    if number < 0:
        raise ValueError(f"negative {what} {text!r}")
    return number


def parse_dose(text: str) -> tuple[float, float]:
    """Parse a dose as printed: a number or a range ``a-b``.

    Returns
    -------
    (float, float)
        Lowest and highest dose (equal for a single number).
    """
    if text.startswith("-"):
        raise ValueError(f"negative dose {text!r}")
    match = _DOSE.fullmatch(text)
    if match is None:
        raise ValueError(f"dose {text!r} is neither a number nor a range 'a-b'")
    low = parse_number(match.group(1))
    high = parse_number(match.group(2)) if match.group(2) else low
    if high < low:
        raise ValueError(f"dose range {text!r} runs downwards")
    return low, high


def parse_count(text: str) -> int:
    """Parse a positive whole number (``n``, animals or subjects)."""
    if re.fullmatch(r"[0-9]{1,9}", text) is None or int(text) == 0:
        raise ValueError(f"{text!r} is not a positive whole number")
    return int(text)
