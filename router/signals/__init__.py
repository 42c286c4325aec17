"""Signals the gateway reads from a request before routing it: latency, sensitivity."""
