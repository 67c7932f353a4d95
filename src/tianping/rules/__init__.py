"""Regulation as code: dated, cited rulebooks evaluated at enforcement points."""
