"""Phase 6, Execute: the plan's steps, then the gate (run in ``pytest_runtestloop``)."""
