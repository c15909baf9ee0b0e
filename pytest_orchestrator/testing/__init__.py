"""Test doubles for the orchestrator's tests and benchmarks; runtime code never imports them."""
