"""Phase 5, Optimise: tune the plans by simulation (run in ``pytest_collection``)."""
