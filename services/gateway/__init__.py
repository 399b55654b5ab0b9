"""Execution gateway: validate, risk-check, persist, route to the broker, book the fill."""
