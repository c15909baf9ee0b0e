"""Phase 4, Plan: planners turn the command into a plan (run in ``pytest_collection``)."""
