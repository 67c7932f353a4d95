"""The rulebooks Tianping ships (one sub-directory each)."""
