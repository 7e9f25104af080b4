"""Routes in, proxy config out: one route model rendered by the nginx site template and by the Caddyfile."""

from __future__ import annotations

from operations.caddy import caddyfile_text
from operations.certbot import CertFiles, Issuer
from operations.nginx import main_text, site_text
from operations.routes import Cors, Route, cache_control, caddy_size, security_headers, site_servers
from operations.sites import Login, Site

API, FRS = "127.0.0.1:5000", "127.0.0.1:8000"
ORIGIN = "https://learnup.example.test"
LEARNUP = Site(
    "learnup",
    ("learnup.example.test", "api.learnup.example.test"),
    3000,
    max_body_size="50m",
    headers=(("Content-Security-Policy", "default-src 'self'"), ("Referrer-Policy", "no-referrer")),
    zones=(("api", "10r/s"), ("general", "30r/s")),
    routes=(
        Route("/", domains=("api.learnup.example.test",), upstream=API, rate_limit="api", burst=20),
        Route("/api/", upstream=API, strip_prefix=True, rate_limit="api", burst=20, headers=(("X-Frame-Options", "DENY"),),
              cors=Cors((ORIGIN,))),
        Route("/socket.io/", upstream=API, websocket=True, read_timeout="24h"),
        Route("/face/", upstream=FRS, read_timeout="60s", rate_limit="general", burst=10),
        Route("/uploads/", static="/var/www/learnup/uploads", cache_control=cache_control("30d immutable")),
        Route("/health", upstream=API, headers=(("X-Content-Type-Options", ""),)),
    ),
)  # fmt: skip
CERT = CertFiles("/c/full.pem", "/c/key.pem")


def location(text: str, head: str) -> str:
    """The block that starts with the line ``head`` (nginx location or Caddy handle), up to its closing brace."""
    start = text.index("\n" + head + " {\n") + 1
    indent = head[: len(head) - len(head.lstrip())]
    return text[start : text.index("\n" + indent + "}\n", start)]


def test_domains_with_the_same_routes_share_a_server_block_and_the_app_port_serves_the_rest():
    main, api = site_servers(LEARNUP, 63072000)
    assert (main.domains, api.domains) == (("learnup.example.test",), ("api.learnup.example.test",))
    assert [r.path for r in main.routes] == ["/socket.io/", "/uploads/", "/health", "/face/", "/api/", "/"]
    assert main.routes[-1] == Route("/", upstream="127.0.0.1:3000", websocket=True, headers=main.routes[-1].headers,
                                    max_body_size="50m", key="1_6")  # fmt: skip
    assert api.routes[-1].upstream == API and api.routes[-1].rate_limit == "api"


def test_route_headers_are_the_sites_with_their_own_over_them():
    main, _ = site_servers(LEARNUP, 63072000)
    by_path = {r.path: dict(r.headers) for r in main.routes}
    assert by_path["/"] == {
        "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "SAMEORIGIN",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": "default-src 'self'",
    }
    assert by_path["/api/"]["X-Frame-Options"] == "DENY"
    assert "X-Content-Type-Options" not in by_path["/health"]
    assert next(r for r in main.routes if r.path == "/health").removed == ("X-Content-Type-Options",)
    assert by_path["/uploads/"]["Cache-Control"] == "public, max-age=2592000, immutable"


def test_small_conversions():
    assert cache_control("immutable") == "public, max-age=31536000, immutable"
    assert cache_control("1h") == "public, max-age=3600"
    assert (caddy_size("50m"), caddy_size("512k"), caddy_size("100")) == ("50MiB", "512KiB", "100B")
    assert security_headers(0, (("X-Frame-Options", ""),)) == (
        (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "strict-origin-when-cross-origin")),
        ("X-Frame-Options",),
    )


# -------------------------------------------------------------------------- nginx


def test_nginx_server_blocks_per_domain_group_with_json_logs():
    text = site_text(LEARNUP, CERT, "", 63072000)
    assert "    server_name learnup.example.test api.learnup.example.test;\n" in text  # the HTTP redirect: all names
    assert "    server_name learnup.example.test;\n" in text and "    server_name api.learnup.example.test;\n" in text
    assert text.count("access_log /var/log/nginx/learnup.access.log vpskit_json;") == 2
    assert text.count("client_max_body_size 50m;") == 2


def test_nginx_prefix_routes_strip_limit_and_answer_cors_preflights():
    api = location(site_text(LEARNUP, CERT, "", 63072000), "    location /api/")
    for line in [
        "limit_req zone=learnup.api burst=20 nodelay;",
        "limit_req_status 429;",
        'add_header X-Frame-Options "DENY" always;',
        'add_header Referrer-Policy "no-referrer" always;',
        "add_header Access-Control-Allow-Origin $cors_learnup_1_5 always;",
        'add_header Access-Control-Allow-Methods "GET, POST, PUT, PATCH, DELETE, OPTIONS" always;',
        'add_header Vary "Origin" always;',
        "if ($preflight_learnup_1_5) {\n            return 204;\n        }",
        "proxy_hide_header X-Frame-Options;",
        "proxy_pass http://127.0.0.1:5000/;",
        'proxy_set_header Connection "";',
        "proxy_read_timeout 3600s;",
    ]:
        assert line in api, line
    assert "Upgrade" not in api
    text = site_text(LEARNUP, CERT, "", 63072000)
    assert 'map $http_origin $cors_learnup_1_5 {\n    default "";\n    "https://learnup.example.test" $http_origin;\n}' in text
    assert (
        'map "$request_method $http_origin" $preflight_learnup_1_5 {\n    default 0;\n    "OPTIONS https://learnup.example.test" 1;\n}'
        in text
    )


def test_nginx_websockets_timeouts_static_files_and_exact_paths():
    text = site_text(LEARNUP, CERT, "", 63072000)
    socket = location(text, "    location /socket.io/")
    assert "proxy_set_header Upgrade $http_upgrade;" in socket and "proxy_set_header Connection $connection_upgrade;" in socket
    assert "proxy_read_timeout 24h;" in socket and "proxy_pass http://127.0.0.1:5000;" in socket
    assert "proxy_read_timeout 60s;" in location(text, "    location /face/")
    uploads = location(text, "    location /uploads/")
    assert "alias /var/www/learnup/uploads/;" in uploads
    assert 'add_header Cache-Control "public, max-age=2592000, immutable" always;' in uploads and "proxy_pass" not in uploads
    health = location(text, "    location = /health")
    assert "nosniff" not in health and "proxy_hide_header X-Content-Type-Options;" in health
    root = location(text.split("listen 443")[1], "    location /")
    assert "proxy_pass http://127.0.0.1:3000;" in root and "limit_req" not in root and "Upgrade $http_upgrade" in root


def test_nginx_zones_are_the_sites_own():
    """Declared in the site that uses them (a zone taken out of the config goes with the site that used it)."""
    text = site_text(LEARNUP, CERT, "", 63072000)
    assert "limit_req_zone $binary_remote_addr zone=learnup.api:10m rate=10r/s;\n" in text
    assert "limit_req_zone $binary_remote_addr zone=learnup.general:10m rate=30r/s;\n" in text
    assert "log_format vpskit_json escape=json" in main_text() and "limit_req_zone" not in main_text()


def test_nginx_site_headers_without_routes_replace_the_security_headers():
    text = site_text(Site("shop", ("shop.example.com",), 5001, headers=(("X-Frame-Options", "DENY"), ("Referrer-Policy", ""))), CERT)
    assert 'add_header X-Frame-Options "DENY" always;' in text and "Referrer-Policy" not in text.split("location /")[0]
    assert "proxy_hide_header X-Frame-Options;\n        proxy_hide_header Referrer-Policy;" in text


# -------------------------------------------------------------------------- Caddy

CADDY_LEARNUP = Site(
    LEARNUP.name, LEARNUP.domains, LEARNUP.port, max_body_size="50m", headers=LEARNUP.headers,
    routes=tuple(Route(**{**r.__dict__, "rate_limit": "", "burst": 0}) for r in LEARNUP.routes[1:])
    + (Route("/admin/", upstream=API, basic_auth=Login("admin", "$2a$14$" + "a" * 53)),),
)  # fmt: skip


def caddyfile() -> str:
    return caddyfile_text([CADDY_LEARNUP], Issuer(mode="selfsigned"))


def test_caddy_one_site_block_per_domain_group_and_no_site_wide_headers_but_the_server_banner():
    text = caddyfile()
    assert "\nlearnup.example.test, api.learnup.example.test {\n" in text  # no route names a domain: one block
    site_header = text.split("\tlog {")[0].rsplit("\theader {", 1)[1]
    assert site_header == "\n\t\t-Server\n\t}\n"


def test_caddy_routes_strip_prefixes_answer_preflights_and_defer_their_headers():
    api = location(caddyfile(), "\thandle_path /api/*")
    for line in [
        '\t\t\tX-Frame-Options "DENY"\n',
        '\t\t\tReferrer-Policy "no-referrer"\n',
        "\t\t\tdefer\n",
        '\t\theader @cors_1_6 {\n\t\t\tAccess-Control-Allow-Origin "{http.request.header.Origin}"',
        "\t\trespond @preflight_1_6 204\n",
        "\t\trequest_body {\n\t\t\tmax_size 50MiB\n\t\t}",
        "\t\treverse_proxy 127.0.0.1:5000 {\n\t\t\theader_up -Upgrade\n\t\t\ttransport http {\n\t\t\t\tread_timeout 3600s",
    ]:
        assert line in api, line
    assert "\t@preflight_1_6 {\n\t\tmethod OPTIONS\n\t\theader Origin https://learnup.example.test\n\t}" in caddyfile()


def test_caddy_websockets_static_files_exact_paths_and_basic_auth():
    text = caddyfile()
    socket = location(text, "\thandle /socket.io/*")
    assert "header_up -Upgrade" not in socket and "read_timeout 24h" in socket
    uploads = location(text, "\thandle_path /uploads/*")
    assert "root * /var/www/learnup/uploads\n\t\tfile_server" in uploads and "reverse_proxy" not in uploads
    assert 'Cache-Control "public, max-age=2592000, immutable"' in uploads
    health = location(text, "\thandle /health")
    assert "-X-Content-Type-Options" in health and "nosniff" not in health
    admin = location(text, "\thandle /admin/*")
    assert "basicauth {\n\t\t\tadmin $2a$14$" in admin
    root = location(text, "\thandle")
    assert "reverse_proxy 127.0.0.1:3000 {\n\t\t\ttransport" in root
