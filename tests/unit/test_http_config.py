"""``[http]``: the table's checks, and XML-RPC call parsing (no superd runs)."""

from __future__ import annotations

import sys

import pytest

from supervisor import config
from supervisor.config.http import HTTP_KEYS, HttpSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.timeout(30)


def parse(text: str):
    return config.parse(tomllib.loads(text), None, {}, base_dir="/srv")


def problems(text: str) -> str:
    with pytest.raises(config.ConfigError) as err:
        parse(text)
    return str(err.value)


def test_no_table_no_http():
    assert parse('[program.a]\ncommand = "true"\n').http is None


@pytest.mark.parametrize("listen, host, port", [
    ("127.0.0.1:9001", "127.0.0.1", 9001), ("localhost:9001", "127.0.0.1", 9001),
    ("[::1]:9001", "::1", 9001), ("tcp://127.0.0.2:80", "127.0.0.2", 80),
])
def test_loopback_listen_needs_no_credentials(listen, host, port):
    http = parse(f'[http]\nlisten = "{listen}"\n').http
    assert (http.kind, http.host, http.port, http.username) == ("tcp", host, port, None)


def test_unix_listen_is_made_absolute():
    http = parse('[http]\nlisten = "unix://run/http.sock"\n').http
    assert (http.kind, http.path) == ("unix", "/srv/run/http.sock")


@pytest.mark.parametrize("listen", ["0.0.0.0:9001", "*:9001", ":9001", "10.1.2.3:9001", "[::]:9001"])
def test_a_public_address_needs_credentials(listen):
    assert "is not a loopback address" in problems(f'[http]\nlisten = "{listen}"\n')
    http = parse(f'[http]\nlisten = "{listen}"\nusername = "u"\npassword = "p"\n').http
    assert http.username == "u" and not http.loopback


@pytest.mark.parametrize("table, message", [
    ('listen = "example.com:80"', "http.listen"),
    ('listen = "127.0.0.1"', "http.listen"),
    ('listen = "127.0.0.1:0"', "http.listen"),
    ("listen = 9001", "http.listen"),
    ('port = 9001', "http.port: unknown key"),
    ('listen = "127.0.0.1:9001"\nusername = "u"', "http.password: missing"),
    ('listen = "127.0.0.1:9001"\npassword = "p"', "http.username: missing"),
    ('listen = "127.0.0.1:9001"\nusername = "a:b"\npassword = "p"', "http.username"),
    ('listen = "127.0.0.1:9001"\nusername = "u"\npassword = "{SHA}xyz"', "40 hex digits"),
    ('username = "u"\npassword = "p"', "http.listen: missing"),
])
def test_bad_tables_are_refused(table, message):
    assert message in problems("[http]\n" + table + "\n")


def test_sha_password_form():
    digest = "a" * 40
    http = parse(f'[http]\nlisten = "127.0.0.1:1"\nusername = "u"\npassword = "{{SHA}}{digest}"\n').http
    assert http.sha_password


def test_http_only_in_the_main_file():
    assert set(HTTP_KEYS) == {"listen", "username", "password"}
    assert HttpSettings(listen="x").kind == "tcp"


# --------------------------------------------------------------------------
# calls on the wire


def test_calls_parse_and_doctypes_are_refused():
    import xmlrpc.client

    from supervisor.http.xmlrpc import BadRequest, clean, dumps_fault, parse_call

    body = xmlrpc.client.dumps(("web", True), "supervisor.startProcess").encode()
    assert parse_call(body) == ("supervisor.startProcess", ("web", True))
    for bad in (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><methodCall><methodName>&a;</methodName>'
                b"</methodCall>", b"<methodCall>", b"", b"<methodCall><params/></methodCall>",
                b"<methodResponse><fault><value><struct/></value></fault></methodResponse>"):
        with pytest.raises(BadRequest):
            parse_call(bad)
    assert clean({"a": None, "b": "x\x1b[1m", "c": 2**40, "d": (1,)}) == {"a": "", "b": "x\ufffd[1m",
                                                                        "c": float(2**40), "d": [1]}
    assert b"<int>10</int>" in dumps_fault(10, "BAD_NAME: x")
