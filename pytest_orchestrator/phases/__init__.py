"""The default implementation of each phase, one package per phase."""
