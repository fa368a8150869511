"""The client's address: forwarded headers believed only through trusted proxies
(learnplat/client_address.py), the setting that names them, and the one value the
middleware keeps for rate limits, the audit log and the logs."""

from __future__ import annotations

import logging
from pathlib import Path

import falcon
import pytest
import testnotes
from corehelpers import build_runtime

from learnplat import hookimpl
from learnplat.auth import PUBLIC
from learnplat.client_address import (
    MAX_HOPS,
    TrustedProxies,
    client_address,
    parse_address,
    parse_trusted,
    rate_limit_key,
)
from learnplat.http.app import create_app
from learnplat.http.endpoint import endpoint
from learnplat.logs import RequestIdFilter
from learnplat.registry import Route
from learnplat.settings import ConfigError, load_settings
from learnplat.testing import use_runtime

PROXIES = parse_trusted(["10.0.0.0/8", "fd00::/8"])
PEER = "10.0.0.2"  # our proxy


def xff(value: str | None, peer: str = PEER, trusted: TrustedProxies = PROXIES) -> str:
    return client_address(peer, value, trusted, "x-forwarded-for")


def fwd(value: str | None, peer: str = PEER, trusted: TrustedProxies = PROXIES) -> str:
    return client_address(peer, value, trusted, "forwarded")


# -- parsing one address -------------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    ("192.0.2.1", "192.0.2.1"),
    (" 192.0.2.1 ", "192.0.2.1"),
    ("192.0.2.1:4711", "192.0.2.1"),
    ("2001:db8::1", "2001:db8::1"),
    ("2001:DB8:0::1", "2001:db8::1"),
    ("[2001:db8::1]", "2001:db8::1"),
    ("[2001:db8::1]:4711", "2001:db8::1"),
    ('"[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"),
    ("fe80::1%eth0", "fe80::1"),
    ("[fe80::1%25eth0]:80", "fe80::1"),
    ("::ffff:192.0.2.1", "192.0.2.1"),
    ("[::ffff:192.0.2.1]:80", "192.0.2.1"),
])
def test_addresses_as_proxies_write_them(text, expected):
    assert str(parse_address(text)) == expected


@pytest.mark.parametrize("text", [
    "", "   ", "unknown", "_hidden", "garbage", "256.0.0.1", "192.0.2", "192.0.2.1:port",
    "192.0.2.1:99999999", "[2001:db8::1", "[2001:db8::1]x", "[2001:db8::1]:", "[]",
    "2001:db8::1::2", "\u0661\u0669\u0662.0.2.1", "\uff11.\uff12.\uff13.\uff14",
    "192.0.2.1\x00", "x" * 500, '"', '""', "<script>", "192.0.2.1/24",
])
def test_garbage_is_no_address(text):
    assert parse_address(text) is None


# -- the setting ------------------------------------------------------------------------------


def test_trusted_proxies_setting_is_validated_at_start():
    s = load_settings(environ={"LEARNPLAT_SERVER_TRUSTED_PROXIES": "10.0.0.5, 10.1.0.0/16 unix",
                               "LEARNPLAT_SERVER_FORWARDED_HEADER": "Forwarded"})
    assert s.server.trusted_proxies == ("10.0.0.5", "10.1.0.0/16", "unix")
    assert s.server.forwarded_header == "forwarded"
    assert load_settings(environ={}).server.trusted_proxies == ()  # nobody is believed
    s = load_settings(environ={"LEARNPLAT_SERVER_TRUSTED_PROXIES": '["fd00::/8"]'})
    assert s.server.trusted_proxies == ("fd00::/8",)
    for bad, named in (("10.0.0.1/8", "host bits set"), ("proxy.example", "proxy.example"),
                       ("10.0.0.0/33", "10.0.0.0/33"), ("*", "'*'")):
        with pytest.raises(ConfigError) as info:
            load_settings(environ={"LEARNPLAT_SERVER_TRUSTED_PROXIES": bad})
        message = str(info.value)
        assert "server.trusted_proxies" in message and named in message, message
        assert "LEARNPLAT_SERVER_TRUSTED_PROXIES" in message
    with pytest.raises(ConfigError, match=r"server\.forwarded_header"):
        load_settings(environ={"LEARNPLAT_SERVER_FORWARDED_HEADER": "X-Real-IP"})


def test_trusted_proxies_match_by_network_and_family():
    trusted = parse_trusted(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"])
    assert trusted.trusts(parse_address("10.200.3.4"))
    assert trusted.trusts(parse_address("192.0.2.7"))
    assert not trusted.trusts(parse_address("192.0.2.8"))
    assert trusted.trusts(parse_address("2001:db8:1::5"))
    assert not trusted.trusts(parse_address("::ffff:11.0.0.1"))
    assert trusted.trusts(parse_address("::ffff:10.0.0.1"))  # a dual-stack socket's view
    assert not trusted.trusts(None) and parse_trusted(["unix"]).trusts(None)
    assert not parse_trusted([]) and parse_trusted(["unix"])


# -- X-Forwarded-For --------------------------------------------------------------------------


def test_nothing_is_believed_by_default():
    nobody = parse_trusted([])
    assert xff("203.0.113.9", peer="10.0.0.2", trusted=nobody) == "10.0.0.2"
    assert fwd("for=203.0.113.9", peer="10.0.0.2", trusted=nobody) == "10.0.0.2"
    assert xff(None, peer="192.0.2.1", trusted=nobody) == "192.0.2.1"


def test_an_untrusted_peer_cannot_forge_its_address():
    assert xff("203.0.113.9", peer="198.51.100.7") == "198.51.100.7"
    assert xff("10.0.0.1", peer="198.51.100.7") == "198.51.100.7"


def test_right_most_untrusted_hop_is_the_client():
    assert xff("203.0.113.9") == "203.0.113.9"
    assert xff("203.0.113.9, 10.0.0.3") == "203.0.113.9"  # two proxies of ours
    # Whatever the client wrote on the left, our proxy appended its real address last.
    assert xff("1.1.1.1, 2.2.2.2, 203.0.113.9") == "203.0.113.9"
    assert xff("garbage, 203.0.113.9") == "203.0.113.9"
    assert xff("10.0.0.1, 203.0.113.9, 10.0.0.4") == "203.0.113.9"
    # Every hop trusted: the request began at the left-most (an internal client).
    assert xff("10.9.9.9, 10.0.0.3") == "10.9.9.9"


def test_header_lines_and_list_syntax():
    assert xff("203.0.113.9,,") == "203.0.113.9"  # empty list elements are ignored
    assert xff(" , 203.0.113.9 , ") == "203.0.113.9"
    assert xff("") == PEER and xff(",,") == PEER and xff(None) == PEER


def test_unparsable_trusted_hops_fall_back_to_the_connection():
    assert xff("203.0.113.9, garbage") == PEER
    assert xff("unknown") == PEER
    assert xff("203.0.113.9, 10.0.0.3:port") == PEER


def test_ipv6_ports_brackets_and_zones_in_the_chain():
    assert xff("[2001:db8::7]:4711", peer="fd00::1") == "2001:db8::7"
    assert xff("2001:db8::7, fd00::3", peer="fd00::1") == "2001:db8::7"
    assert xff("fe80::9%eth0", peer="fd00::1") == "fe80::9"
    assert xff("203.0.113.9:5555", peer="[fd00::1]:8000") == "203.0.113.9"
    assert xff("203.0.113.9", peer="::ffff:10.0.0.2") == "203.0.113.9"


def test_many_hops_are_served_but_not_believed():
    ours = ", ".join(["10.0.0.9"] * (MAX_HOPS + 5))
    assert xff(f"203.0.113.9, {ours}") == PEER
    assert xff(", ".join(["10.0.0.9"] * (MAX_HOPS - 1))) == "10.0.0.9"
    # A client's long forged prefix costs nothing: the walk stops at the first untrusted hop.
    forged = ", ".join(f"198.51.100.{i % 250}" for i in range(2000))
    assert xff(f"{forged}, 203.0.113.9") == "203.0.113.9"


def test_unix_socket_peer():
    unix = parse_trusted(["unix"])
    assert client_address("", "203.0.113.9", unix) == "203.0.113.9"
    assert client_address("", "203.0.113.9", PROXIES) == ""  # not trusted: reported as it is
    assert client_address(None, None, PROXIES) == ""


# -- RFC 7239 Forwarded -----------------------------------------------------------------------


def test_forwarded_header():
    assert fwd("for=203.0.113.9") == "203.0.113.9"
    assert fwd("for=203.0.113.9;proto=https;by=10.0.0.2") == "203.0.113.9"
    assert fwd('For="[2001:db8:cafe::17]:4711"') == "2001:db8:cafe::17"
    assert fwd("for=192.0.2.43, for=203.0.113.9, for=10.0.0.3") == "203.0.113.9"
    assert fwd("proto=https;for=203.0.113.9;host=school.example") == "203.0.113.9"
    # A client's half-quoted garbage does not swallow what our proxy appended after it.
    assert fwd('for="1.1.1.1, for=203.0.113.9') == "203.0.113.9"
    # Obfuscated or unknown identifiers, or no for=: no address to believe.
    assert fwd("for=_hidden") == PEER and fwd("for=unknown") == PEER
    assert fwd("proto=https") == PEER and fwd("for") == PEER and fwd(";;;") == PEER
    # Only the configured header is read.
    assert client_address(PEER, "for=203.0.113.9", PROXIES, "x-forwarded-for") == PEER


def test_rate_limit_key_groups_an_ipv6_network():
    assert rate_limit_key("203.0.113.9") == "203.0.113.9"
    assert rate_limit_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert rate_limit_key("2001:db8:1:2:ffff::9") == rate_limit_key("2001:db8:1:2::1")
    assert rate_limit_key("2001:db8:1:3::1") != rate_limit_key("2001:db8:1:2::1")
    assert rate_limit_key("") == "" and rate_limit_key("odd") == "odd"


# -- the middleware: one value per request ----------------------------------------------------


class WhoAmI:
    @endpoint(permission=PUBLIC, summary="The client address as the core resolved it")
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> dict[str, str]:
        logging.getLogger("learnplat.test.whoami").warning("who am i")
        return {"client_addr": req.context.client_addr,
                "env": req.env["learnplat.client_addr"]}


class WhoAmIPlugin:
    @hookimpl
    def register_routes(self, runtime):
        return [Route("/whoami", WhoAmI(), tenant_scoped=False)]


def _app(tmp: Path, core_database, **server):
    rt = build_runtime(tmp, core_database, plugins=[("testnotes", testnotes),
                                                   ("whoami", WhoAmIPlugin())],
                       do_migrate=False, server=server)
    return rt, create_app(rt)


def test_middleware_resolves_once_for_everyone(tmp_path, core_database, core_runtime):
    rt, app = _app(tmp_path, core_database, trusted_proxies=["127.0.0.1", "10.0.0.0/8"])
    client = falcon.testing.TestClient(app)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep()
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("learnplat.test.whoami")
    logger.addHandler(handler)
    try:
        with use_runtime(rt):
            def who(peer, **headers):
                r = client.simulate_get("/whoami", remote_addr=peer, headers=headers)
                assert r.status_code == 200, r.text
                assert r.json["client_addr"] == r.json["env"]
                return r.json["client_addr"]

            assert who("10.0.0.2", **{"X-Forwarded-For": "203.0.113.9"}) == "203.0.113.9"
            assert who("198.51.100.7", **{"X-Forwarded-For": "203.0.113.9"}) == "198.51.100.7"
            # Forwarded is not the configured header: a client cannot use it to slip past.
            assert who("10.0.0.2", Forwarded="for=203.0.113.9") == "10.0.0.2"
            assert who("10.0.0.2", **{"X-Forwarded-For": "\x7f garbage ;;, ,"}) == "10.0.0.2"
            assert who("10.0.0.2", **{"X-Forwarded-For": "[2001:db8::5]:80"}) == "2001:db8::5"
    finally:
        logger.removeHandler(handler)
    # Log lines written while the request ran carry its client address.
    assert [r.client_addr for r in records][:2] == ["203.0.113.9", "198.51.100.7"]


def test_middleware_reads_forwarded_when_configured(tmp_path, core_database, core_runtime):
    rt, app = _app(tmp_path, core_database, trusted_proxies=["10.0.0.2"],
                   forwarded_header="forwarded")
    client = falcon.testing.TestClient(app)
    with use_runtime(rt):
        r = client.simulate_get("/whoami", remote_addr="10.0.0.2", headers={
            "Forwarded": 'for="[2001:db8::9]";proto=https', "X-Forwarded-For": "6.6.6.6"})
        assert r.json["client_addr"] == "2001:db8::9"
