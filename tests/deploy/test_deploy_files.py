"""The files of deploy/ checked against what the repository builds.

The nginx site runs in a real nginx (``nginx -t``, then on loopback in front of two ``bridge
serve`` processes); the compose file, the Kubernetes manifests, the Dockerfile and the systemd
unit are read and held to the bridge itself: its settings (derived from ``Settings`` now, not
listed here), its routes, its commands, its port and its limits. nginx and openssl must be
installed: without them these tests fail, they do not skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import tomllib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bridge.config import Settings, load_settings
from bridge.edges import cli
from bridge.edges.app import EDGE, make_app
from bridge.edges.pages import SECURITY_HEADERS
from harness import Node, signed_policy_file
from harness.nginx import SITE, Proxy, nginx_command, nginx_prefix, proxy_in_front

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
KUBERNETES = DEPLOY / "kubernetes"
UNIT = DEPLOY / "systemd" / "fier-bridge@.service"
DOCKERFILE = DEPLOY / "Dockerfile"


# -- what the repository builds ------------------------------------------------------------------


def setting_names() -> set[str]:
    """Every environment variable the bridge reads: ``BRIDGE_<FIELD>`` of ``Settings``."""
    return {f"BRIDGE_{f.name.upper()}" for f in fields(Settings)}


def project() -> tuple[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return meta["name"], meta["version"]


def image_name() -> str:
    """The image tag convention: the project's name, tagged with its version."""
    name, version = project()
    return f"{name}:{version}"


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The paths the bridge serves (the app is built, not started)."""
    app = make_app(load_settings(data_dir=tmp_path_factory.mktemp("routes")))
    return {route.resource.canonical for route in app.router.routes() if route.resource}


@pytest.fixture(scope="module")
def engineio(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """engine.io's server as the bridge configures it (ping interval and timeout, body limit)."""
    app = make_app(load_settings(data_dir=tmp_path_factory.mktemp("eio")))
    return app[EDGE].server.eio


def parse_command(argv: list[str]) -> None:
    """Fail unless ``argv`` (after the program name) is a valid ``bridge`` command line."""
    try:
        cli._parser().parse_args(argv)
    except SystemExit as exc:  # argparse's way of refusing
        raise AssertionError(f"not a bridge command: {shlex.join(argv)}") from exc


def bridge_commands(text: str) -> list[list[str]]:
    """Each ``bridge ...`` command in a shell text, up to ``;``, ``&&``, ``||`` or ``|``."""
    found = []
    for part in re.split(r";|&&|\|\||\|", text):
        words = shlex.split(part)
        for i, word in enumerate(words):
            if word == "bridge" or word.endswith("/bridge"):
                found.append(words[i + 1 :])
                break
    return found


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined, comments left out."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(ins.split(None, 1)[0].upper(), ins.split(None, 1)[1]) for ins in logical]


def exposed_port() -> int:
    [port] = [int(args) for ins, args in dockerfile() if ins == "EXPOSE"]
    return port


# -- nginx's configuration, read ----------------------------------------------------------------


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None

    def all(self, name: str) -> list[Directive]:
        return [d for d in self.block or [] if d.name == name]

    def one(self, name: str) -> Directive:
        [found] = self.all(name)
        return found

    def walk(self) -> Iterator[Directive]:
        for child in self.block or []:
            yield child
            yield from child.walk()


def nginx_parse(text: str) -> Directive:
    """nginx's configuration syntax: directives, quoted words and blocks (no includes read)."""
    tokens = re.findall(r"""'[^']*'|"[^"]*"|[{};]|[^\s{};'"#]+|#[^\n]*""", text)
    stack = [Directive("main", [], [])]
    words: list[str] = []
    for token in tokens:
        if token.startswith("#"):
            continue
        if token in ("{", ";"):
            directive = Directive(words[0], words[1:], [] if token == "{" else None)
            assert stack[-1].block is not None
            stack[-1].block.append(directive)
            if token == "{":
                stack.append(directive)
            words = []
        elif token == "}":
            assert not words, f"unterminated directive {words}"
            stack.pop()
        else:
            words.append(token[1:-1] if token[0] in "'\"" else token)
    assert len(stack) == 1 and not words
    return stack[0]


def size_bytes(value: str) -> int:
    units = {"k": 1024, "m": 1024 * 1024}
    return int(value[:-1]) * units[value[-1].lower()] if value[-1].isalpha() else int(value)


def seconds(value: str) -> float:
    return float(value[:-1]) if value.endswith("s") else float(value)


def site() -> Directive:
    return nginx_parse(SITE.read_text())


def servers() -> list[Directive]:
    return site().all("server")


def tls_server() -> Directive:
    [server] = [s for s in servers() if s.all("ssl_certificate")]
    return server


def location(server: Directive, path: str) -> Directive:
    [found] = [d for d in server.all("location") if d.args[-1] == path]
    return found


# -- nginx and openssl, run ---------------------------------------------------------------------


def includes_of_site() -> list[str]:
    return sorted({d.args[0] for d in site().walk() if d.name == "include"})


def test_the_site_passes_nginx_t_with_the_shipped_examples(tmp_path: Path) -> None:
    examples = SITE.parent / "fier-bridge"
    includes = {
        name.removeprefix("fier-bridge/"): (examples / f"{Path(name).name}.example").read_text()
        for name in includes_of_site()
    }
    conf = nginx_prefix(tmp_path / "nginx", includes)
    result = subprocess.run(nginx_command(conf, "-t"), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    assert "[warn]" not in result.stderr, result.stderr


# -- the site as read --------------------------------------------------------------------------


def test_the_site_includes_only_files_beside_it_and_ships_an_example_of_each() -> None:
    names = includes_of_site()
    assert names == [
        "fier-bridge/listen-http.conf",
        "fier-bridge/listen-https.conf",
        "fier-bridge/upstreams.conf",
    ]
    for name in names:
        assert (SITE.parent / f"{name}.example").is_file(), name
        assert (DEPLOY / "compose" / name).is_file(), name
    # Certificates relative to nginx's configuration directory, like the includes.
    server = tls_server()
    for directive in ("ssl_certificate", "ssl_certificate_key"):
        [path] = server.one(directive).args
        assert path.startswith("fier-bridge/"), path
    # Listening is left to the includes, so a site can move ports without an edit.
    assert not [d for d in site().walk() if d.name == "listen"]


def test_the_upstream_is_sticky_by_address_and_sets_nothing_on_the_device() -> None:
    tree = site()
    [upstream] = tree.all("upstream")
    assert upstream.one("hash").args == ["$binary_remote_addr", "consistent"]
    names = {d.name for d in tree.walk()}
    assert "sticky" not in names
    assert not {n for n in names if "cookie" in n}
    for d in tree.walk():
        assert "set-cookie" not in " ".join(d.args).lower(), d
    for server in tree.all("server"):
        proxied = [d for d in server.walk() if d.name == "proxy_pass"]
        assert all(d.args == [f"http://{upstream.args[0]}"] for d in proxied)


def test_the_site_logs_no_request_and_passes_the_client_address_as_set() -> None:
    tree = site()
    for server in tree.all("server"):
        assert server.one("access_log").args == ["off"]
        assert server.one("server_tokens").args == ["off"]
        level = server.one("error_log").args[-1]
        assert level in ("crit", "alert", "emerg"), "request-level lines name the client"
    assert len([d for d in tree.walk() if d.name == "access_log"]) == len(tree.all("server"))
    headers = {d.args[0].lower(): d.args[1:] for d in tls_server().all("proxy_set_header")}
    assert headers["x-forwarded-for"] == ["$remote_addr"]  # set, never appended
    assert "$proxy_add_x_forwarded_for" not in SITE.read_text()
    assert headers["upgrade"] == ["$http_upgrade"]


def test_the_site_limits_and_timeouts_agree_with_the_bridge(engineio: Any) -> None:
    server = tls_server()
    limit = size_bytes(server.one("client_max_body_size").args[0])
    assert limit == Settings().max_frame_bytes == engineio.max_http_buffer_size
    # Bodies stay in memory: the buffer holds the largest one.
    assert size_bytes(server.one("client_body_buffer_size").args[0]) >= limit
    assert server.one("proxy_max_temp_file_size").args == ["0"]
    socket_io = location(server, "/socket.io/")
    assert socket_io.one("proxy_buffering").args == ["off"]
    waiting = engineio.ping_interval + engineio.ping_timeout
    assert seconds(socket_io.one("proxy_read_timeout").args[0]) > waiting
    assert seconds(socket_io.one("proxy_send_timeout").args[0]) > waiting
    assert server.one("proxy_http_version").args == ["1.1"]


def test_the_site_adds_hsts_and_no_header_the_bridge_sets_itself() -> None:
    tree = site()
    for server in tree.all("server"):
        added = {d.args[0].lower(): d for d in server.all("add_header")}
        for name in SECURITY_HEADERS:
            if name.lower() in added:
                # Only as the fallback for nginx's own answers: empty when the bridge answered.
                variable = added[name.lower()].args[1]
                assert variable.startswith("$"), name
                [mapping] = [m for m in tree.all("map") if m.args[1] == variable]
                assert mapping.args[0] == "$upstream_http_content_security_policy"
                assert mapping.one("default").args == [""]
        assert all(d.args[-1] == "always" for d in server.all("add_header"))
    hsts = {d.args[0]: d.args[1] for d in tls_server().all("add_header")}
    assert re.fullmatch(r"max-age=\d{8,}.*", hsts["Strict-Transport-Security"])


# -- the site in front of two bridge nodes --------------------------------------------------------


@contextlib.asynccontextmanager
async def front(tmp_path: Path) -> AsyncIterator[tuple[Proxy, list[Node]]]:
    """Two bridge nodes over one data directory behind the shipped site."""
    data = tmp_path / "data"
    data.mkdir()
    env = {"BRIDGE_POLICY_FILE": str(await signed_policy_file(data))}
    nodes = [Node(data, name="a", env=env), Node(data, name="b", env=env)]
    try:
        # One after the other: the first makes the log key and migrates, the second finds both.
        for node in nodes:
            await node.start()
        async with proxy_in_front(tmp_path / "nginx", [n.port for n in nodes]) as proxy:
            yield proxy, nodes
    finally:
        for node in nodes:
            await node.stop()
        for node in nodes:
            assert "Traceback" not in node.errors()


async def _long_polling_session(http: aiohttp.ClientSession, proxy: Proxy) -> None:
    """One Socket.IO session over long-polling: open, send, receive; three requests that only
    the node that opened the session can answer."""
    base = proxy.https + "/socket.io/?EIO=4&transport=polling"
    async with http.get(base, ssl=proxy.tls) as response:
        assert response.status == 200
        opened = await response.text()
    assert opened.startswith("0"), opened
    sid = json.loads(opened[1:])["sid"]
    async with http.post(f"{base}&sid={sid}", data="40", ssl=proxy.tls) as response:
        assert response.status == 200, await response.text()  # 400 from a node without it
        assert await response.text() == "OK"
    async with http.get(f"{base}&sid={sid}", ssl=proxy.tls) as response:
        assert response.status == 200, await response.text()
        assert (await response.text()).startswith("4")  # the namespace's answer to the connect


@pytest.mark.slow
async def test_nginx_with_the_site_in_front_of_two_bridge_nodes(tmp_path: Path) -> None:
    async with front(tmp_path) as (proxy, nodes), aiohttp.ClientSession() as http:
        # Long-polling works: every request of a session reaches its node, every time.
        for _ in range(4):
            await _long_polling_session(http, proxy)

        # A websocket is upgraded through nginx, and engine.io opens on it.
        url = proxy.https.replace("https", "wss") + "/socket.io/?EIO=4&transport=websocket"
        async with http.ws_connect(url, ssl=proxy.tls) as ws:
            message = await ws.receive(timeout=10)
            assert message.type == aiohttp.WSMsgType.TEXT
            assert message.data.startswith("0{")

        # The bridge's security headers once each, HSTS added, nginx's version not told.
        async with http.get(proxy.https + "/healthz", ssl=proxy.tls) as response:
            assert response.status == 200
            for name, value in SECURITY_HEADERS.items():
                assert response.headers.getall(name) == [value], name
            assert response.headers.getall("Cache-Control") == ["no-store"]
            assert len(response.headers.getall("Strict-Transport-Security")) == 1
            assert response.headers["Server"] == "nginx"

        # The bridge's body limit and nginx's agree: a body of 64 KiB reaches the bridge (and is
        # not JSON), one byte more is refused by nginx in the bridge's error format.
        limit = Settings().max_frame_bytes
        for size, status, code in ((limit, 400, "invalid"), (limit + 1, 413, "too_large")):
            async with http.post(
                proxy.https + "/api/v1/conversations", data=b"x" * size, ssl=proxy.tls
            ) as response:
                assert response.status == status, size
                assert (await response.json())["error"]["code"] == code
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                assert response.headers["Cache-Control"] == "no-store"
                assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]

        # Metrics are not served to the public; the answer has the headers of nginx's own.
        async with http.get(proxy.https + "/metrics", ssl=proxy.tls) as response:
            assert response.status == 404
            assert (await response.json())["error"]["code"] == "not_found"
            assert len(response.headers.getall("Content-Security-Policy")) == 1

        # Plain HTTP only redirects.
        async with http.get(proxy.http + "/", allow_redirects=False) as response:
            assert response.status == 301
            assert response.headers["Location"].startswith("https://")

        # With both nodes gone: the bridge's error format, and nothing of the client logged.
        for node in nodes:
            await node.stop()
        texts = proxy.https + "/api/v1/consent-texts/report"
        async with http.get(texts, ssl=proxy.tls) as response:
            assert response.status == 503
            assert (await response.json())["error"]["code"] == "internal"

    assert (proxy.prefix / "access.log").read_text() == ""
    logged = proxy.logged()
    assert "client:" not in logged
    assert "/api/v1/" not in logged and "/socket.io/" not in logged


# -- compose -------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def bridge_services() -> dict[str, dict[str, Any]]:
    services = compose()["services"]
    return {
        name: spec
        for name, spec in services.items()
        if spec.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }


def test_compose_runs_postgres_redis_two_nodes_and_nginx_with_the_shipped_site(
    routes: set[str],
) -> None:
    services = compose()["services"]
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")
    bridges = bridge_services()
    nodes = {n: s for n, s in bridges.items() if "command" not in s}
    assert len(nodes) >= 2
    for name, spec in bridges.items():
        assert spec["image"] == image_name(), name
        assert spec["build"]["context"] == ".."
        assert (COMPOSE.parent / spec["build"]["context"] / spec["build"]["dockerfile"]).is_file()
        env = spec["environment"]
        assert env["BRIDGE_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert env["BRIDGE_REDIS_URL"].startswith("redis://")
        assert int(env.get("BRIDGE_PORT", Settings().port)) == exposed_port()
        if "command" in spec:
            commands = bridge_commands(" ".join(spec["command"]))
            assert commands, name
            for command in commands:
                parse_command(command)
    # Every node the same, and each waits for what it needs.
    first = next(iter(nodes.values()))
    for name, spec in nodes.items():
        assert spec["environment"] == first["environment"], name
        conditions = {k: v["condition"] for k, v in spec["depends_on"].items()}
        assert conditions["postgres"] == conditions["redis"] == "service_healthy"
        assert "service_completed_successfully" in conditions.values()
        path = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", " ".join(spec["healthcheck"]["test"]))
        assert path and int(path[1]) == exposed_port() and path[2] in routes
    # nginx: the shipped site verbatim, the upstream naming the nodes on the image's port.
    nginx = services["nginx"]
    mounts = dict(v.split(":")[:2] for v in nginx["volumes"])
    assert mounts["./nginx/fier-bridge.conf"].endswith("/fier-bridge.conf")
    conf = (COMPOSE.parent / "compose" / "nginx.conf").read_text()
    assert f"include {mounts['./nginx/fier-bridge.conf']};" in conf
    assert mounts["./compose/fier-bridge"] == "/etc/nginx/fier-bridge"
    upstreams = nginx_parse((DEPLOY / "compose" / "fier-bridge" / "upstreams.conf").read_text())
    servers = [d.args[0] for d in upstreams.all("server")]
    assert sorted(servers) == sorted(f"{n}:{exposed_port()}" for n in nodes)
    assert {k: v["condition"] for k, v in nginx["depends_on"].items()} == dict.fromkeys(
        nodes, "service_healthy"
    )
    for name in ("postgres", "redis", "nginx"):
        assert services[name]["healthcheck"]["test"], name


def test_compose_sets_only_real_settings_and_no_secret() -> None:
    names = setting_names()
    for name, spec in bridge_services().items():
        for variable in spec["environment"]:
            assert variable in names, f"{name}: {variable} is not a setting"
    text = COMPOSE.read_text()
    assert "${POSTGRES_PASSWORD:?" in text  # from deploy/.env, refused when missing
    assert "CHANGE-ME" in (DEPLOY / "compose" / "env.example").read_text()


# -- Kubernetes ----------------------------------------------------------------------------------


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in manifests() if doc["kind"] == kind]


def test_the_deployment_runs_the_image_on_its_port_with_probes_the_bridge_answers(
    routes: set[str],
) -> None:
    [deployment] = of_kind("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    [user] = [args for ins, args in dockerfile() if ins == "USER"]
    assert f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}" == user
    [bridge] = pod["containers"]
    for container in pod["containers"] + pod.get("initContainers", []):
        assert container["image"] == image_name()
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
    parse_command(bridge["args"][1:])
    [port] = bridge["ports"]
    assert port["containerPort"] == exposed_port()
    probes = {kind: bridge[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    for probe in [*probes.values(), bridge["startupProbe"]["httpGet"]]:
        assert probe["path"] in routes
        assert probe["port"] == port["name"]
    # The state directory is writable; the log key comes from a Secret.
    configmap = {doc["metadata"]["name"]: doc for doc in of_kind("ConfigMap")}
    data_dir = configmap[bridge["envFrom"][0]["configMapRef"]["name"]]["data"]["BRIDGE_DATA_DIR"]
    assert data_dir in {m["mountPath"] for m in bridge["volumeMounts"]}
    [init] = pod["initContainers"]
    assert init["command"][-1] == f"{data_dir}/{Settings().log_key_path.name}"


def test_the_manifests_set_only_real_settings_and_agree_with_each_other() -> None:
    names = setting_names()
    for doc in of_kind("ConfigMap") + of_kind("Secret"):
        for variable in {**doc.get("data", {}), **doc.get("stringData", {})}:
            assert variable in names, f"{doc['metadata']['name']}: {variable} is not a setting"
    [config] = of_kind("ConfigMap")
    assert int(config["data"]["BRIDGE_PORT"]) == exposed_port()
    [deployment] = of_kind("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    [service] = of_kind("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    [port] = service["spec"]["ports"]
    assert port["targetPort"] == "http" and port["port"] == exposed_port()
    [budget] = of_kind("PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    [job] = of_kind("Job")
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == image_name()
    parse_command(container["args"][1:])
    [ingress] = of_kind("Ingress")
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/upstream-hash-by"] == "$binary_remote_addr"
    body = size_bytes(notes["nginx.ingress.kubernetes.io/proxy-body-size"])
    assert body == Settings().max_frame_bytes
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (KUBERNETES / resource).is_file(), resource
    [image] = kustomization["images"]
    name, version = project()
    assert image["name"] == name and image["newTag"] == version
    assert image["newName"].rsplit("/", 1)[-1] == name


# -- the Dockerfile ------------------------------------------------------------------------------


def test_the_dockerfile_builds_the_assets_and_runs_bridge_serve_unprivileged(
    routes: set[str],
) -> None:
    instructions = dockerfile()
    text = DOCKERFILE.read_text()
    stages = [args for ins, args in instructions if ins == "FROM"]
    assert stages[0].startswith("node:") and stages[-1] == "python:3.11-slim"
    runs = " ".join(args for ins, args in instructions if ins == "RUN")
    assert "npm ci" in runs and "node build.mjs" in runs
    assert f"-t {image_name()} ." in text  # the tag convention compose and the manifests use
    name, version = project()
    labels = " ".join(args for ins, args in instructions if ins == "LABEL")
    assert f'org.opencontainers.image.title="{name}"' in labels
    assert f'org.opencontainers.image.version="{version}"' in labels
    [user] = [args for ins, args in instructions if ins == "USER"]
    assert int(user.split(":")[0]) != 0
    assert exposed_port() == Settings().port
    [health] = [args for ins, args in instructions if ins == "HEALTHCHECK"]
    [path] = re.findall(r"127\.0\.0\.1:%s(/\w+)", health)
    assert path == "/healthz" and path in routes
    [command] = [json.loads(args) for ins, args in instructions if ins == "CMD"]
    assert command[:2] == ["bridge", "serve"] and "0.0.0.0" in command
    parse_command(command[1:])
    env = " ".join(args for ins, args in instructions if ins == "ENV")
    for variable in re.findall(r"\b(BRIDGE_\w+)=", env):
        assert variable in setting_names(), variable
    # What it copies is in the repository, and the build context lets in nothing else.
    for ins, args in instructions:
        if ins == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
    ignore = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert ignore[0] == "*"
    assert not [line for line in ignore if line.startswith("!var")]


# -- the example settings and the systemd unit ---------------------------------------------------


def test_the_example_settings_load_and_agree_with_the_other_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    example = DEPLOY / "bridge.example.toml"
    settings = load_settings(config_file=example)
    assert settings.port == exposed_port()
    limit = size_bytes(tls_server().one("client_max_body_size").args[0])
    assert settings.max_frame_bytes == limit
    # Only `bridge serve` reads the file: what the other commands need too is not in it.
    written = tomllib.loads(example.read_text())
    assert not {"database_url", "redis_url", "data_dir", "log_origin"} & written.keys()
    # ... but in the environment file, whose names (given or shown) are real settings.
    shown = re.findall(r"^#? ?(BRIDGE_\w+)=", (DEPLOY / "bridge.env.example").read_text(), re.M)
    assert {"BRIDGE_DATABASE_URL", "BRIDGE_REDIS_URL", "BRIDGE_LOG_ORIGIN"} <= set(shown)
    assert set(shown) <= setting_names()


def test_the_state_directory_is_the_same_everywhere() -> None:
    """The log key is found at data_dir/log-key by every node and every command."""
    paths = set()
    env = " ".join(args for ins, args in dockerfile() if ins == "ENV")
    paths |= set(re.findall(r"BRIDGE_DATA_DIR=(\S+)", env))
    for spec in bridge_services().values():
        paths.add(spec["environment"]["BRIDGE_DATA_DIR"])
    [config] = of_kind("ConfigMap")
    paths.add(config["data"]["BRIDGE_DATA_DIR"])
    values = unit_values()
    paths.add(f"/var/lib/{values['StateDirectory'][0]}")  # %S of a system service
    admin = (DEPLOY / "systemd" / "fier-bridge-admin").read_text()
    paths |= set(re.findall(r"BRIDGE_DATA_DIR=(\S+)", admin))
    assert paths == {"/var/lib/fier-bridge"}


def unit() -> dict[str, list[tuple[str, str]]]:
    """A systemd unit file: its sections, each a list of (key, value), repeats kept."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def unit_values() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for key, value in unit()["Service"]:
        values.setdefault(key, []).append(value)
    return values


def test_the_systemd_unit_is_hardened_and_runs_bridge_serve() -> None:
    sections = unit()
    values = unit_values()
    expected = {
        "DynamicUser": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "MemoryDenyWriteExecute": "yes",
        "Restart": "on-failure",
    }
    for key, value in expected.items():
        assert values.get(key) == [value], key
    assert values["StateDirectory"] == ["fier-bridge"]
    assert set(values["RestrictAddressFamilies"][0].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert "@system-service" in values["SystemCallFilter"]
    assert values["EnvironmentFile"]
    environment = dict(
        item.split("=", 1) for line in values["Environment"] for item in shlex.split(line)
    )
    assert environment["BRIDGE_DATA_DIR"] == "%S/" + values["StateDirectory"][0]
    for name in environment:
        assert name in setting_names() or name.startswith("PYTHON"), name
    [start] = values["ExecStart"]
    argv = shlex.split(start.replace("%i", "8080"))
    assert argv[0].endswith("/bin/bridge") and argv[1] == "serve"
    parse_command(argv[1:])
    for pre in values.get("ExecStartPre", []):
        parse_command(shlex.split(pre)[1:])
    # A node never makes a log key of its own: it must find the shared one.
    asserts = dict(sections["Unit"])
    log_key = f"%S/{values['StateDirectory'][0]}/{Settings().log_key_path.name}"
    assert asserts["AssertPathExists"] == log_key
    assert dict(sections["Install"])["WantedBy"] == "multi-user.target"


def test_the_admin_command_runs_bridge_as_the_unit_does() -> None:
    """fier-bridge-admin runs a command with the unit's user, state and environment file."""
    values = unit_values()
    text = (DEPLOY / "systemd" / "fier-bridge-admin").read_text()
    words = shlex.split(text[text.index("exec systemd-run") :], comments=True)
    properties = dict(w.removeprefix("--property=").split("=", 1) for w in words if "=" in w)
    for key in ("DynamicUser", "User", "Group", "StateDirectory", "EnvironmentFile", "UMask"):
        assert properties[key] == values[key][0], key
    program = shlex.split(values["ExecStart"][0])[0]
    assert words[words.index(program) + 1 :] == ["$@"]
    assert os.access(DEPLOY / "systemd" / "fier-bridge-admin", os.X_OK)
