"""Publish: commit, PR bundle and forge, when green (run in ``pytest_sessionfinish``)."""
