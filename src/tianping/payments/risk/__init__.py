"""Real-time payment risk: online features, explicit rules, a versioned LightGBM model and the
scorer that turns them into allow / challenge / deny with reason codes. See README.md."""
