"""Phase 2, Logic: keep the slices the command needs (run in ``pytest_collection``)."""
