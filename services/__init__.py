"""The trading services that trading-otel instruments (see services/README.md)."""
