"""Request and response bodies of the execution gateway."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.common.config import MAX_ORDER_QUANTITY


class OrderRequest(BaseModel):
    """``POST /api/v1/orders``. Unknown fields are refused rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(pattern=r"^[A-Z][A-Z0-9.]{0,9}$", description="e.g. AAPL")
    side: Literal["buy", "sell"]
    quantity: float = Field(gt=0, le=MAX_ORDER_QUANTITY)
    type: Literal["market", "limit"] = "market"
    limit_price: float | None = Field(default=None, gt=0)
    client_order_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")

    @model_validator(mode="after")
    def _limit_needs_price(self) -> OrderRequest:
        if self.type == "limit" and self.limit_price is None:
            raise ValueError("a limit order needs limit_price")
        if self.type == "market" and self.limit_price is not None:
            raise ValueError("a market order takes no limit_price")
        return self


class OrderView(BaseModel):
    """An order as stored, returned by the order endpoints."""

    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    quantity: float
    limit_price: float | None
    status: Literal["accepted", "filled", "rejected", "error"]
    rejection_reason: str | None = None
    fill_price: float | None = None
    trace_id: str | None = None
    detail: str | None = None


class PositionView(BaseModel):
    symbol: str
    quantity: float
    avg_price: float
    realized_pnl: float
    market_price: float | None
    unrealized_pnl: float
