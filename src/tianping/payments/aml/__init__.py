"""Anti-money-laundering: large-value reports, pattern detectors and the case queue.
See README.md."""
