"""Carbon amounts: 6 decimals, 1.000000 = 1 tCO2e, so one unit is one gram (DESIGN 2).

The SDK's functions take and return integer units; these helpers convert to and from tonnes exactly.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from carbon_sdk.errors import InvalidInput

UNITS_PER_TONNE = 10**6


def tonnes(value: str | int | Decimal, what: str = "amount") -> int:
    """Tonnes (``"12.5"``, ``12``, ``Decimal("0.000001")``) -> integer units; more than 6 decimals is an error."""
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(value) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"{what} {value!r} is not a number of tonnes") from None
    if not amount.is_finite():
        raise InvalidInput(f"{what} {value!r} is not a number of tonnes")
    units = amount * UNITS_PER_TONNE
    if units != units.to_integral_value():
        raise InvalidInput(f"{what} {value!r} has more than 6 decimals (1 unit = 1 gram)")
    return int(units)


def format_tonnes(units: int) -> str:
    """Integer units -> tonnes with 6 decimals, e.g. ``12.500000``."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(int(units)), UNITS_PER_TONNE)
    return f"{sign}{whole:,}.{frac:06d}"


def to_tonnes(units: int) -> Decimal:
    return Decimal(int(units)) / UNITS_PER_TONNE


def checked_amount(value: int, what: str = "amount", allow_zero: bool = False, bits: int = 256) -> int:
    """An integer number of units for a contract argument, or InvalidInput saying what is wrong."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or (value == 0 and not allow_zero):
        raise InvalidInput(f"{what} must be a {'non-negative' if allow_zero else 'positive'} integer number "
                           f"of units (6 decimals; see carbon_sdk.units.tonnes), got {value!r}")
    if value >= 2**bits:
        raise InvalidInput(f"{what} {value} does not fit in uint{bits}")
    return value
