"""Which responses the engines treat as a password prompt (an ``error`` row on both Chromium
builds): a 401 asking for a scheme Chromium answers itself, not any 401."""

from __future__ import annotations

from engines.page import is_challenge


def test_a_401_asking_for_basic_or_digest_is_a_password_prompt() -> None:
    assert is_challenge(401, {"WWW-Authenticate": 'Basic realm="x"'})
    assert is_challenge(401, {"www-authenticate": 'Digest realm="x", nonce="y"'})
    assert is_challenge(401, {"WWW-Authenticate": 'Bearer realm="api"\nNegotiate'})
    assert is_challenge(401, {"WWW-Authenticate": 'Bearer realm="api", NTLM'})


def test_other_401s_and_other_statuses_are_pages() -> None:
    assert not is_challenge(401, {"WWW-Authenticate": 'Bearer realm="api"'})
    assert not is_challenge(401, {"Content-Type": "text/html"})
    assert not is_challenge(401, None)
    assert not is_challenge(200, {"WWW-Authenticate": "Basic"})
    assert not is_challenge(407, {"WWW-Authenticate": "Basic"})
