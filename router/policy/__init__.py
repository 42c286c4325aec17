"""Routing policies: their types, loading and checks (model.py), and the YAML reader that keeps line
numbers and refuses duplicate keys (yamldoc.py)."""
