"""Market data: a simulated feed into Redis (latest price, history, pub/sub) and WS quotes."""
