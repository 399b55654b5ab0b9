"""The signal inventory: what the running stack really exposes, recorded, and checked.

``record`` snapshots series names and label keys from a real Prometheus and from collector
telemetry endpoints; ``model`` holds and diffs the committed snapshot
(``tests/fixtures/signal_inventory.json``); ``queries`` gathers every PromQL expression we
ship; ``promql`` checks those expressions against the inventory; ``matrix`` is the fault
table that drives each alert on the real stack, and ``run`` executes it.
"""
