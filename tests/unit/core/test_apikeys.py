"""API keys: their shape (a prefix and a checksum) and their scopes."""

import pytest

from core import apikeys


def test_a_key_has_the_prefix_and_a_checksum_scanners_can_check():
    key = apikeys.new_key()
    assert key.startswith("fpa_") and len(key) == 42
    assert apikeys.well_formed(key)
    changed = key[:10] + ("a" if key[10] != "a" else "b") + key[11:]
    assert not apikeys.well_formed(changed)
    assert not apikeys.well_formed(key + "x")
    assert apikeys.new_key() != key


def test_scopes_nest_and_unknown_ones_are_refused():
    assert apikeys.granted(["read"]) == {"read"}
    assert apikeys.granted(["write"]) == {"read", "write"}
    assert apikeys.granted(["admin", "read"]) == {"read", "write", "admin"}
    assert apikeys.parse_scopes(" read , write,read") == ("read", "write")
    for bad in ("", "root", "read,,write"):
        with pytest.raises(ValueError, match="scopes"):
            apikeys.parse_scopes(bad)
