"""Personal data, secrets and instructions to stay inside: every detector the privacy gate runs, and
which strings of a request it reads (units.py)."""
