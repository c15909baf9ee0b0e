"""Phase 1, Map: candidate files and their ranked slices (run in ``pytest_collection``)."""
