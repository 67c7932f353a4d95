"""Identity, access and privacy: parties, KYC, authentication, consent, the personal-data vault."""
