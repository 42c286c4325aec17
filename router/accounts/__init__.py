"""Keys, teams, their rate, concurrency and spend limits (local or shared on Redis), and the usage ledger."""
