"""Phase 7, Review: the post-change checks (run in ``pytest_runtestloop``)."""
