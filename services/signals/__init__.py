"""Signal service: a small deterministic model over the latest prices in Redis."""
