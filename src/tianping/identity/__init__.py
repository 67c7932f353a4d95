"""Identity, access and privacy: parties, KYC, authentication, consent and the personal-data vault."""
