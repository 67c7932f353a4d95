"""Every refusal the identity context can raise has a problem document: none becomes a 500."""

from __future__ import annotations

import tianping.identity.auth_service
import tianping.identity.onboarding
import tianping.identity.privacy_service
import tianping.identity.tokens  # noqa: F401 - imported for their error classes
from tianping.api.problems import PROBLEMS
from tianping.identity.errors import IdentityError

# Roots that group errors and are never raised themselves.
ABSTRACT_CODES = frozenset({"identity_error", "auth_error", "privacy_error", "vault_error"})


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_every_identity_error_code_has_a_problem() -> None:
    codes = {error.code for error in _subclasses(IdentityError)}
    assert len(codes) > 40  # the walk found the context's errors, not an empty set
    assert sorted(codes - ABSTRACT_CODES - set(PROBLEMS)) == []
