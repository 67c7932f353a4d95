"""The `cn` rulebook (People's Republic of China)."""
