"""Developer tooling: local servers for development and tests (not used at run time)."""
