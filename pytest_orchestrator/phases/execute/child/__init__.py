"""Execute code loaded into the inner test runs' interpreters (``-p``)."""
