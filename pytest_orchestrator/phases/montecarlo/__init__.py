"""Phase 3, Monte Carlo: base vs candidate by simulation (run in ``pytest_collection``)."""
