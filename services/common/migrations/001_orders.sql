-- Orders, fills and positions of the execution gateway.
CREATE TABLE IF NOT EXISTS orders (
    id               uuid PRIMARY KEY,
    client_order_id  text NOT NULL UNIQUE,
    account_hash     text NOT NULL,
    symbol           text NOT NULL,
    side             text NOT NULL CHECK (side IN ('buy', 'sell')),
    order_type       text NOT NULL CHECK (order_type IN ('market', 'limit')),
    quantity         double precision NOT NULL CHECK (quantity > 0),
    limit_price      double precision,
    status           text NOT NULL,
    rejection_reason text,
    broker_order_id  text,
    fill_price       double precision,
    trace_id         text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS fills (
    id           bigserial PRIMARY KEY,
    order_id     uuid NOT NULL REFERENCES orders (id),
    symbol       text NOT NULL,
    side         text NOT NULL,
    quantity     double precision NOT NULL,
    price        double precision NOT NULL,
    realized_pnl double precision NOT NULL DEFAULT 0,
    filled_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS fills_filled_at ON fills (filled_at);

CREATE TABLE IF NOT EXISTS positions (
    symbol       text PRIMARY KEY,
    quantity     double precision NOT NULL DEFAULT 0,
    avg_price    double precision NOT NULL DEFAULT 0,
    realized_pnl double precision NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
