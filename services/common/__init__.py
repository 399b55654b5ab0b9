"""Plumbing shared by every service: settings, Postgres, Redis, faults, telemetry glue."""
