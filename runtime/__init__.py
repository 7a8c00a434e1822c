"""Code that runs inside the connectors: container runtimes and the SCF handler."""
