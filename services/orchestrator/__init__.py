"""Orchestrator: trading cycles (signals, then orders) and the order-event consumer."""
