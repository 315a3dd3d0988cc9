"""What a checkout asks for, checked before anything is contacted.

The rules are the PSP's own (scan2pay_common/checkout_rules.py), so that a
typo ends as bad input (exit 2) with every problem listed, in the words the
PSP would answer with, instead of a round trip and a 422.
"""

from __future__ import annotations

from dataclasses import dataclass

from scan2pay_common.checkout_rules import checkout_problems
from scan2pay_common.errors import InvalidValue
from scan2pay_common.money import check_currency, parse_major

from .errors import BadInput
from .model import CheckoutOrder


@dataclass(frozen=True)
class Problem:
    field: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InvalidOrder(BadInput):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


# The order a cashier reads the problems in: the command line's, which the
# local API's first problem (its error code) also follows.
_FIELD_ORDER = ("order_id", "currency", "amount", "terminal_id", "expires_in", "description")


def _order_problems(order: CheckoutOrder) -> list[Problem]:
    values: dict[str, object] = {
        "order_id": order.order_id,
        "currency": order.currency,
        "amount": order.amount,
        "terminal_id": order.terminal_id,
        "description": order.description,
    }
    # The bridge leaves expires_in out when none is given: the PSP's default.
    if order.expires_in is not None:
        values["expires_in"] = order.expires_in
    problems = sorted(
        (Problem(field, exc.code, exc.message) for field, exc in checkout_problems(values)),
        key=lambda problem: _FIELD_ORDER.index(problem.field),
    )
    # The PSP takes a checkout shown nowhere; the bridge's order always names a terminal.
    if order.terminal_id is None:
        problems.append(Problem("terminal_id", "invalid_terminal_id", "missing"))
    return problems


def check_order(order: CheckoutOrder) -> CheckoutOrder:
    """Returns ``order`` if the PSP would take it; raises InvalidOrder with
    every problem otherwise."""
    problems = _order_problems(order)
    if problems:
        raise InvalidOrder(problems)
    return order


def build_order(
    *,
    order_id: object,
    currency: object,
    amount: object = None,
    amount_major: object = None,
    terminal_id: object = None,
    default_terminal: str | None = None,
    expires_in: object = None,
    description: object = None,
) -> CheckoutOrder:
    """A checked CheckoutOrder from what a person or a POS gave: the amount
    either in minor units (``amount``) or as a decimal string in major units
    (``amount_major``, read exactly by the currency's exponent), never both."""
    problems: list[Problem] = []
    # Fields whose problem is already told, or follows from another one.
    told: set[str] = set()
    minor: object = amount
    for field, value in (("order_id", order_id), ("currency", currency)):
        if value is None:
            problems.append(Problem(field, "missing_field", "missing"))
    if (amount is None) == (amount_major is None):
        problems.append(
            Problem(
                "amount",
                "invalid_amount",
                "give exactly one of the amount in minor units (like 1234) "
                "or in major units (like 12.34)",
            )
        )
    elif amount_major is not None:
        try:
            minor = parse_major(amount_major, check_currency(currency))
        except InvalidValue as exc:
            told.add("amount")
            if exc.code != "invalid_currency":  # that one is told with the currency
                problems.append(Problem("amount_major", exc.code, exc.message))
    chosen_terminal = terminal_id if terminal_id is not None else default_terminal
    if chosen_terminal is None:
        problems.append(
            Problem(
                "terminal_id",
                "invalid_terminal_id",
                "no terminal given and no default terminal set "
                "(--terminal, SCAN2PAY_TERMINAL or terminal in the config file)",
            )
        )
    # Built from the values as given, then checked whole by _order_problems,
    # so that every problem is told at once.
    order = CheckoutOrder(
        order_id=order_id,  # type: ignore[arg-type]  # checked below
        amount=minor,  # type: ignore[arg-type]  # checked below
        currency=currency,  # type: ignore[arg-type]  # checked below
        terminal_id=chosen_terminal,  # type: ignore[arg-type]  # checked below
        expires_in=expires_in,  # type: ignore[arg-type]  # checked below
        description=description,  # type: ignore[arg-type]  # checked below
    )
    told |= {p.field for p in problems}
    problems += [p for p in _order_problems(order) if p.field not in told]
    if problems:
        raise InvalidOrder(problems)
    return order
