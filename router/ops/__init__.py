"""Operating the gateway: reports over the usage ledger, drift, the admin page."""
