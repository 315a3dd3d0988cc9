"""The rules a checkout's fields keep (docs/api.md, ``POST /v1/checkouts``),
stated once: the PSP refuses a request that breaks them with the first
problem's code, and the cashier bridge tells a cashier every problem before
it contacts anything.

Each field's rule is checked in the PSP's order, so that a request with two
problems is refused with the code it always was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from .errors import InvalidValue
from .free_text import DESCRIPTION_MAX, check_free_text
from .identifiers import check_order_id, check_terminal_id
from .money import check_currency, check_minor_amount

DEFAULT_EXPIRES_IN = 300
MAX_EXPIRES_IN = 86_400


def check_expires_in(value: object) -> int:
    """Whole seconds from 1 to a day: long enough for a queue, short enough
    that a forgotten QR does not stay payable."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(
            "invalid_expires_in", "expires_in must be an integer (seconds)", field="expires_in"
        )
    if not 1 <= value <= MAX_EXPIRES_IN:
        raise InvalidValue(
            "invalid_expires_in",
            f"expires_in must be from 1 to {MAX_EXPIRES_IN} seconds",
            field="expires_in",
        )
    return value


def check_description(value: object) -> str | None:
    """Plain text a receipt line can hold; None (JSON null) is no description."""
    if value is None:
        return None
    return check_free_text(
        value, field="description", code="invalid_description", maximum=DESCRIPTION_MAX
    )


def check_checkout_terminal(value: object) -> str | None:
    """The terminal that shows the QR; None for a checkout shown elsewhere."""
    return None if value is None else check_terminal_id(value)


def _amount_rule(max_amount: int | None) -> Callable[[object], object]:
    return lambda value: check_minor_amount(value, maximum=max_amount)


def _checked(
    values: Mapping[str, object], max_amount: int | None
) -> Iterator[tuple[str, object | InvalidValue]]:
    """Each given field with its checked value, or with the problem it has,
    in the PSP's order. A field missing from ``values`` is not checked."""
    rules: tuple[tuple[str, Callable[[object], object]], ...] = (
        ("expires_in", check_expires_in),
        ("description", check_description),
        ("order_id", check_order_id),
        ("amount", _amount_rule(max_amount)),
        ("currency", check_currency),
        ("terminal_id", check_checkout_terminal),
    )
    for field, rule in rules:
        if field not in values:
            continue
        try:
            yield field, rule(values[field])
        except InvalidValue as exc:
            yield field, exc


@dataclass(frozen=True, slots=True)
class CheckoutFields:
    """A checkout request's fields, each keeping its rule."""

    order_id: str
    amount: int
    currency: str
    terminal_id: str | None
    expires_in: int
    description: str | None


Fields = TypeVar("Fields", bound=CheckoutFields)


@overload
def check_checkout(
    values: Mapping[str, object], *, max_amount: int | None = None
) -> CheckoutFields: ...


@overload
def check_checkout(
    values: Mapping[str, object], *, max_amount: int | None = None, into: type[Fields]
) -> Fields: ...


def check_checkout(
    values: Mapping[str, object],
    *,
    max_amount: int | None = None,
    into: type[CheckoutFields] = CheckoutFields,
) -> CheckoutFields:
    """The fields of a request whose required ones are present (see
    ``jsonfields.check_fields``), checked, as an ``into`` (a CheckoutFields
    or a subclass of it); the first problem, in the PSP's order, raised. An
    absent expires_in is the default; a null one is not."""
    given = {"expires_in": DEFAULT_EXPIRES_IN, **values}
    checked: dict[str, Any] = {"terminal_id": None, "description": None}
    for field, result in _checked(given, max_amount):
        if isinstance(result, InvalidValue):
            raise result
        checked[field] = result
    return into(
        order_id=checked["order_id"],
        amount=checked["amount"],
        currency=checked["currency"],
        terminal_id=checked["terminal_id"],
        expires_in=checked["expires_in"],
        description=checked["description"],
    )


def checkout_problems(
    values: Mapping[str, object], *, max_amount: int | None = None
) -> list[tuple[str, InvalidValue]]:
    """Every problem of the given fields at once, each with its field."""
    return [
        (field, result)
        for field, result in _checked(values, max_amount)
        if isinstance(result, InvalidValue)
    ]
