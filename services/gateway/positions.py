"""Position and P&L arithmetic (pure functions, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Position:
    """A signed net position (negative is short) and its average entry price."""

    quantity: float = 0.0
    avg_price: float = 0.0

    def unrealized(self, market_price: float) -> float:
        return (market_price - self.avg_price) * self.quantity


def apply_fill(pos: Position, side: str, quantity: float, price: float) -> tuple[Position, float]:
    """Book a fill; return the new position and the P&L it realises.

    Adding to a position moves the average price; reducing it realises P&L against the
    average; crossing through zero closes the old position and opens the rest at ``price``.
    """
    if quantity <= 0 or price <= 0:
        raise ValueError(f"fill quantity and price must be > 0, got {quantity} @ {price}")
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be buy or sell, got {side!r}")
    signed = quantity if side == "buy" else -quantity
    if pos.quantity == 0 or (pos.quantity > 0) == (signed > 0):
        total = abs(pos.quantity) + quantity
        avg = (abs(pos.quantity) * pos.avg_price + quantity * price) / total
        return Position(pos.quantity + signed, avg), 0.0
    closing = min(quantity, abs(pos.quantity))
    direction = 1.0 if pos.quantity > 0 else -1.0
    realized = closing * (price - pos.avg_price) * direction
    new_qty = pos.quantity + signed
    if abs(new_qty) < 1e-9:
        return Position(0.0, 0.0), realized
    if closing < quantity:  # flipped side: the remainder opens at the fill price
        return Position(new_qty, price), realized
    return Position(new_qty, pos.avg_price), realized


def slippage_bps(expected: float, filled: float) -> float:
    """Absolute distance between expected and fill price, in basis points."""
    return abs(filled - expected) / expected * 10_000
