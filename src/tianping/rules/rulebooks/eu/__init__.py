"""The `eu` rulebook (PSD2 strong customer authentication, GDPR Art. 22, CCD2)."""
