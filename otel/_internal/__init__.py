"""Private implementation of trading-otel. Nothing here is public API."""
