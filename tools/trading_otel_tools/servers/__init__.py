"""Launchers for the local servers (one module per server), shared by the stack and tests."""
