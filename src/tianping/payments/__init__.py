"""Digital payments: wallets, bank rails through a clearing house, P2P, merchant QR, refunds,
real-time risk, anti-money-laundering and client-money safeguarding. See README.md."""
