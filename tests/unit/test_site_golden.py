"""A site without routes renders exactly as it did before routes existed: the nginx site and the Caddyfile are
compared, byte for byte, with the files those versions wrote (tests/unit/golden/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from operations.caddy import caddyfile_text
from operations.certbot import CertFiles, Issuer
from operations.nginx import site_text
from operations.sites import Login, Site

GOLDEN = Path(__file__).parent / "golden"
BCRYPT = "$2a$14$" + "a" * 53
PLAIN = Site("shop", ("shop.example.com", "www.shop.example.com"), 5001)
LIMITED = Site("shop", ("shop.example.com",), 5001, max_body_size="25m", rate_limit="10r/s", rate_burst=5)
CERT = CertFiles("/etc/letsencrypt/live/shop/fullchain.pem", "/etc/letsencrypt/live/shop/privkey.pem")

NGINX = {
    "nginx-http-only.conf": lambda: site_text(PLAIN, None),
    "nginx-tls.conf": lambda: site_text(PLAIN, CERT, "", 63072000),
    "nginx-tls-static-limits-ipv4.conf": lambda: site_text(LIMITED, CERT, "/srv/apps/shop/src/static", 63072000, ipv6=False),
    "nginx-tls-no-hsts-http2-on.conf": lambda: site_text(PLAIN, CERT, "", 0, http2_on=True),
}
CADDY = {
    "Caddyfile-letsencrypt": lambda: caddyfile_text(
        [PLAIN, Site("memo", ("memo.example.com",), 5003, api_upstream="127.0.0.1:5010", basic_auth=Login("alice", BCRYPT))],
        Issuer(email="ops@example.com", acme_server="https://acme.example.test/dir", acme_ca_bundle="/etc/ssl/acme.pem"),
    ),
    "Caddyfile-selfsigned-no-hsts": lambda: caddyfile_text([PLAIN], Issuer(mode="selfsigned"), hsts_max_age=0),
}


@pytest.mark.parametrize("name", [*NGINX, *CADDY])
def test_a_site_without_routes_renders_as_before(name):
    assert {**NGINX, **CADDY}[name]() == (GOLDEN / name).read_text()


if __name__ == "__main__":  # rewrite the golden files (only when a change of output is meant)
    for name, make in {**NGINX, **CADDY}.items():
        (GOLDEN / name).write_text(make())
