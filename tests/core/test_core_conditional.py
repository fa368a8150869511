"""learnplat.http.conditional: entity tags and the If-None-Match / If-Match rules of RFC 9110
(§8.8.3 entity tags, §13.1.1 If-Match with the strong comparison, §13.1.2 If-None-Match with the
weak one), without a server."""

from __future__ import annotations

import pytest

from learnplat.errors import BadRequest, LearnplatError
from learnplat.http.conditional import (
    PreconditionFailed,
    Tagged,
    etag_of,
    if_match,
    none_match,
    parse_tags,
)

TAG = etag_of(b'{"id":1}')


def test_the_etag_is_a_quoted_strong_hash_of_the_bytes():
    assert TAG.startswith('"') and TAG.endswith('"') and not TAG.startswith("W/")
    assert TAG == etag_of(b'{"id":1}')
    assert TAG != etag_of(b'{"id":2}')
    assert len(TAG) == 24
    assert parse_tags(TAG) == [(False, TAG)]  # a valid entity-tag on the wire
    assert Tagged.of(b'{"id":1}') == (b'{"id":1}', TAG)


@pytest.mark.parametrize(("header", "parsed"), [
    ('"xyzzy"', [(False, '"xyzzy"')]),
    ('W/"xyzzy"', [(True, '"xyzzy"')]),
    ('"xyzzy", "r2d2xxxx", "c3piozzzz"', [(False, '"xyzzy"'), (False, '"r2d2xxxx"'),
                                           (False, '"c3piozzzz"')]),
    ('W/"a" ,"b"', [(True, '"a"'), (False, '"b"')]),
    ('""', [(False, '""')]),  # an empty opaque tag is valid
    (' , "a",, ', [(False, '"a"')]),  # empty list elements (RFC 9110 §5.6.1)
    ("*", "*"),
    (" * ", "*"),
])
def test_valid_values(header, parsed):
    assert parse_tags(header) == parsed


@pytest.mark.parametrize("header", [
    "xyzzy",  # unquoted: the usual client bug
    '"a" "b"',  # no comma between tags
    'w/"a"',  # the weak prefix is case-sensitive
    '"a',  # unterminated
    '"a"b',
    '"a b"',  # a space is not an etagc
    '"a""',
    '*, "a"',  # "*" stands alone
])
def test_invalid_values(header):
    assert parse_tags(header) is None


def test_if_none_match_uses_the_weak_comparison():
    assert none_match(TAG, TAG)
    assert none_match(f"W/{TAG}", TAG)  # W/"x" matches "x" for If-None-Match
    assert none_match(f'"other", {TAG}', TAG)
    assert none_match("*", TAG)
    assert not none_match('"other"', TAG)
    assert not none_match(None, TAG)
    assert not none_match("", TAG)
    # A value we cannot read is ignored: the full answer is sent, never a wrong 304.
    assert not none_match(TAG[1:-1], TAG)


def test_if_match_uses_the_strong_comparison():
    computed = []

    def current() -> str:
        computed.append(1)
        return TAG

    assert if_match(TAG, current) is None
    assert if_match(f'"old", {TAG}', current) is None
    assert if_match('"old"', current) == TAG  # stale: the current tag, for the 412
    assert if_match(f"W/{TAG}", current) == TAG  # a weak tag never matches If-Match
    computed.clear()
    assert if_match("*", current) is None
    assert computed == []  # "*" needs no representation built


def test_a_malformed_if_match_is_a_400_not_a_412():
    with pytest.raises(BadRequest, match="double quotes"):
        if_match(TAG[1:-1], lambda: TAG)


def test_precondition_failed_carries_the_current_etag():
    exc = PreconditionFailed(TAG)
    assert isinstance(exc, LearnplatError)
    assert (exc.status, exc.code) == (412, "precondition_failed")
    assert exc.headers["ETag"] == TAG
    problem = exc.to_problem()
    assert problem["etag"] == TAG and problem["status"] == 412
    assert problem["type"] == "urn:learnplat:problem:precondition_failed"
    assert "GET it again" in problem["detail"]
