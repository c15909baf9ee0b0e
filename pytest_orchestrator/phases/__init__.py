"""The default implementation of each phase, one module per phase."""
