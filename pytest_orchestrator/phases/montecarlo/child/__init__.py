"""Monte Carlo code that runs in child interpreters, not in the orchestrator."""
