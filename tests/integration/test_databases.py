# SPDX-License-Identifier: Apache-2.0
"""Issue 5, the databases, against the real servers from Debian's packages, each started once per
module on 127.0.0.1 with its own data directory, the agent started before any client connects:
- redis-server: redis-cli commands (one an error), a pipeline of 100 commands in one write (one an
  error), pub/sub subscribers in RESP2 and RESP3 whose pushed messages must not become spans;
- PostgreSQL: psql (SSLRequest refused, then the simple protocol; one SQL error) and pgbench with
  --protocol=extended (a pipeline, one with an error) and --protocol=prepared;
- MariaDB: a Connector/C client (text queries, prepared statements, an error, several result
  sets) and the mariadb client;
- memcached: set/get/multi-get/delete/incr/..., a value longer than the capture, errors.
Every operation gives one CLIENT span in the client and one SERVER span in the server, each with
the database conventions' attributes; counts are exact."""

import glob
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from mt_agent import busy_note, read_jsonl, stat
from mt_otlp import free_port
from mt_peers import stop_proc, wait_port
from mt_report import figure
from mt_spans import a

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "peer_db_client.py")
sys.path.insert(0, HERE)
import peer_db_client  # noqa: E402  (the plans the peer follows)

SERVER_TIMEOUT = 30


def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root and BPF: run as root")


def need(path, package):
    if not path or not os.access(path, os.X_OK):
        pytest.skip(f"{package} missing: run 'sudo make deps'")
    return path


def run(args, timeout=60, check=True, **kw):
    p = subprocess.run(args, stdin=kw.pop("stdin", subprocess.DEVNULL), capture_output=True,
                       text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {p.returncode}: {p.stderr}{p.stdout}")
    return p


def log_tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


class Server:
    """A server process on 127.0.0.1:port, in its own directory."""

    name = "server"

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"mt-{self.name}-")
        os.chmod(self.dir, 0o755)
        self.log = os.path.join(self.dir, "server.log")
        self.proc = None

    def wait_ready(self):
        deadline = time.monotonic() + SERVER_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n"
                                     f"{log_tail(self.log)}")
            try:
                wait_port(self.port, timeout=0.5)
                return self
            except AssertionError:
                pass
        raise AssertionError(f"{self.name} not listening on {self.port}:\n{log_tail(self.log)}")

    def stop(self):
        stop_proc(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis(Server):
    name = "redis"

    def start(self):
        exe = need(shutil.which("redis-server"), "redis-server")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--logfile", self.log],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self.wait_ready()


class Memcached(Server):
    name = "memcached"

    def start(self):
        exe = need(shutil.which("memcached") or "/usr/bin/memcached", "memcached")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [exe, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-u", "root", "-t", "2"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        return self.wait_ready()


class Postgres(Server):
    """initdb as the postgres user into a fresh directory, then postgres on 127.0.0.1:port."""
    name = "postgres"

    def start(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
        need(bins[-1] if bins else None, "postgresql")
        self.bin = os.path.dirname(bins[-1])
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("no postgres user: run 'sudo make deps' (postgresql)")
        self.data = os.path.join(self.dir, "data")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        # PostgreSQL refuses to run as root: its own user, with no wrapper in between, so that
        # stop() signals the postmaster itself
        as_pg = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [], "cwd": self.dir}
        run([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"], timeout=120, **as_pg)
        with open(self.log, "wb") as log:
            os.chown(self.log, pw.pw_uid, pw.pw_gid)
            self.proc = subprocess.Popen(
                [os.path.join(self.bin, "postgres"), "-D", self.data, "-p", str(self.port),
                 "-k", self.dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                 "-c", "full_page_writes=off", "-c", "synchronous_commit=off"] +
                self.server_args(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, **as_pg)
        self.wait_ready()
        for _ in range(50):  # listening is not accepting: wait for the first login to work
            if self.psql("postgres", "SELECT 1", check=False).returncode == 0:
                break
            time.sleep(0.1)
        self.psql("postgres", "CREATE DATABASE shop")
        self.psql("shop", "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric);"
                          "INSERT INTO items VALUES (1, 'apple', 1.50), (2, 'pear', 2.00)")
        return self

    def server_args(self):
        return []

    def tool(self, name):
        return os.path.join(self.bin, name)

    def psql(self, db, sql, check=True):
        return run([self.tool("psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(self.port),
                    "-U", "postgres", "-d", db, "-c", sql], check=check, env=pg_env())

    def stop(self):
        stop_proc(self.proc, signal.SIGINT)  # fast shutdown
        shutil.rmtree(self.dir, ignore_errors=True)


def pg_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "10"
    return env


class MariaDB(Server):
    """mariadb-install-db into a fresh directory, then mariadbd on 127.0.0.1:port with a user
    that logs in over TCP with a password (mysql_native_password)."""
    name = "mariadb"
    user, password = "mt", "secret"

    def start(self):
        mariadbd = need(shutil.which("mariadbd") or "/usr/sbin/mariadbd", "mariadb-server")
        install = need(shutil.which("mariadb-install-db"), "mariadb-server")
        self.data = os.path.join(self.dir, "data")
        run([install, "--no-defaults", f"--datadir={self.data}", "--user=root",
             "--auth-root-authentication-method=normal", "--skip-test-db"], timeout=120)
        init = os.path.join(self.dir, "init.sql")
        with open(init, "w") as f:
            f.write(f"CREATE DATABASE IF NOT EXISTS shop;\n"
                    f"CREATE USER IF NOT EXISTS '{self.user}'@'127.0.0.1' IDENTIFIED BY "
                    f"'{self.password}';\n"
                    f"GRANT ALL ON *.* TO '{self.user}'@'127.0.0.1';\n"
                    f"CREATE TABLE IF NOT EXISTS shop.items (id INT PRIMARY KEY, "
                    f"name VARCHAR(64), price DECIMAL(10,2));\n"
                    f"INSERT IGNORE INTO shop.items VALUES (1, 'apple', 1.50), (2, 'pear', 2.00);\n")
        self.proc = subprocess.Popen(
            [mariadbd, "--no-defaults", f"--datadir={self.data}", "--user=root",
             f"--port={self.port}", "--bind-address=127.0.0.1",
             f"--socket={os.path.join(self.dir, 'mysqld.sock')}", "--skip-name-resolve",
             f"--init-file={init}", f"--pid-file={os.path.join(self.dir, 'mysqld.pid')}",
             f"--log-error={self.log}", "--innodb-buffer-pool-size=16M",
             "--innodb-flush-log-at-trx-commit=0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self.wait_ready()


@pytest.fixture(scope="module")
def servers():
    """Started on first use, once per module; stopped at its end."""
    need_root()
    made = {}

    def get(kind):
        if kind not in made:
            made[kind] = {"redis": Redis, "memcached": Memcached, "postgres": Postgres,
                          "mariadb": MariaDB}[kind]().start()
        return made[kind]

    yield get
    for s in made.values():
        s.stop()


# ------------------------------------------------------------------ checks


def start_agent(agent, receiver, tmp_path, *args):
    """The agent, exporting to the receiver and to a JSONL file. The file has every span even
    when other traffic on the node (a benchmark in another session) overflows the export queue;
    the queue is made large for the same reason."""
    jsonl = tmp_path / "spans.jsonl"
    ag = agent(["--jsonl", str(jsonl)] + list(args), env={"OTEL_BSP_MAX_QUEUE_SIZE": "262144"},
               receiver=receiver)
    return ag, jsonl


def finish(ag, receiver, jsonl, port):
    """Stops the agent. Returns (stats, spans from the JSONL file); the spans of the connections
    to port that reached the OTLP receiver are checked to be the same, attribute for attribute,
    unless the agent had to drop some for want of queue room."""
    stats = ag.stop()
    spans = read_jsonl(jsonl)
    ours = {s["span_id"]: s for s in spans if a(s, "server.port") == port}
    otlp = {s["span_id"]: s for s in receiver.spans() if a(s, "server.port") == port}
    if not busy_note(stats):
        assert set(otlp) == set(ours), \
            f"OTLP and JSONL disagree: only OTLP {len(set(otlp) - set(ours))}, only JSONL " \
            f"{len(set(ours) - set(otlp))}"
        for sid, s in ours.items():
            assert otlp[sid]["attributes"] == s["attributes"], (otlp[sid], s)
            assert otlp[sid]["name"] == s["name"] and otlp[sid]["status"] == s["status"]
    return stats, spans


def spans_at(spans, kind, port):
    """The spans of one side of the connections to 127.0.0.1:port, in time order."""
    out = [s for s in spans if s["kind"] == kind and a(s, "server.port") == port]
    return sorted(out, key=lambda s: s["start_unix_nano"])


def brief(s):
    at = s["attributes"]
    return (f"{s['kind']} {s['name']} op={at.get('db.operation.name')} "
            f"ns={at.get('db.namespace')} q={at.get('db.query.text')!r} "
            f"code={at.get('db.response.status_code')} status={s['status']} "
            f"pid={s['resource'].get('process.pid')}")


def dump(spans):
    return "\n  " + "\n  ".join(brief(s) for s in spans) if spans else " (none)"


def check_db_span(s, system, op, ns=None, query=None, code=None):
    """One span against what the test issued. code: the expected db.response.status_code (the
    span is then an error), "" for an error without one, None for success."""
    at = s["attributes"]
    want = {"db.system.name": system, "db.operation.name": op}
    if ns is not None:
        want["db.namespace"] = ns
    if query is not None:
        want["db.query.text"] = query
    got = {k: at.get(k) for k in want}
    assert got == want, f"{brief(s)}: {got} != {want}"
    assert s["name"] == op, brief(s)
    assert "http.request.method" not in at and "url.full" not in at, at
    assert at.get("network.peer.address") == "127.0.0.1", at
    assert isinstance(at.get("network.peer.port"), int), at
    if code is None:
        assert s["status"] != "ERROR", f"not an error: {brief(s)}"
        assert "db.response.status_code" not in at and "error.type" not in at, brief(s)
    else:
        assert s["status"] == "ERROR", f"an error: {brief(s)}"
        if code:
            assert at.get("db.response.status_code") == code, brief(s)
            assert at.get("error.type") == code, brief(s)
        else:
            assert at.get("error.type") == "_OTHER", brief(s)


def check_sides(request, label, spans, port, expected, system, stats, ns=None):
    """Both sides of every operation: expected is [(op, query, code)] in the order issued."""
    busy = busy_note(stats)
    results = {}
    for kind in ("CLIENT", "SERVER"):
        got = spans_at(spans, kind, port)
        results[kind] = len(got)
        assert len(got) == len(expected), \
            f"{label}: {len(got)} {kind} spans for {len(expected)} operations{busy}:{dump(got)}"
        for s, (op, query, code) in zip(got, expected):
            check_db_span(s, system, op, ns=ns, query=query, code=code)
    # Both ends on this node: each SERVER span is the child of its CLIENT span (the parsers
    # give each request the TCP sequence number of its first byte, which both ends share).
    assert linked(spans, port) == len(expected), \
        f"{label}: {linked(spans, port)} of {len(expected)} SERVER spans linked to their client"
    figure(request, f"{label}: {len(expected)} operations issued, CLIENT spans "
                    f"{results['CLIENT']}, SERVER spans {results['SERVER']} "
                    f"({linked(spans, port)} SERVER spans children of their CLIENT span); "
                    f"parser {parser_stats(stats, system)}")


def linked(spans, port):
    """How many SERVER spans at port have a CLIENT span at port for parent (same-node linking)."""
    clients = {s["span_id"] for s in spans_at(spans, "CLIENT", port)}
    return sum(1 for s in spans_at(spans, "SERVER", port) if s["parent_span_id"] in clients)


# ------------------------------------------------------------------ Redis


def popen_pid(args):
    """Runs args to completion; returns (stdout, pid)."""
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, f"{' '.join(args)} exited {p.returncode}: {err}"
    return out, p.pid


def of_pid(spans, pid):
    return sorted((s for s in spans if s["resource"].get("process.pid") == pid),
                  key=lambda s: s["start_unix_nano"])


def test_redis(request, receiver, agent, servers, tmp_path):
    srv = servers("redis")
    cli = need(shutil.which("redis-cli"), "redis-tools")
    # The pipeline is 100 commands in one write (~2.5 kB): capture it whole. At the default
    # 512 bytes only the commands in the first 512 bytes can be known (the unit tests cover it).
    ag, jsonl = start_agent(agent, receiver, tmp_path, "--capture-bytes", "4096")

    def rcli(*args):
        out, pid = popen_pid([cli, "-h", "127.0.0.1", "-p", str(srv.port)] + list(args))
        return out.strip(), pid

    ops = []  # every command issued, as (op, error code or None)
    single = [(("SET", "user:1", "alice"), "OK", None), (("GET", "user:1"), "alice", None),
              (("INCR", "user:1"), "ERR", "ERR"), (("HSET", "user:1", "f", "v"), "WRONGTYPE",
                                                    "WRONGTYPE")]
    cli_pids = []
    for args, reply, code in single:
        out, pid = rcli(*args)
        assert reply in out, (args, out)
        cli_pids.append((pid, args[0], code))
        ops.append((args[0], code))

    out, pipe_pid = popen_pid([sys.executable, PEER, "redis-pipeline", str(srv.port), "100"])
    plan = [(args[0], "WRONGTYPE" if i == 42 else None)
            for i, (args, _) in enumerate(peer_db_client.pipeline_plan(100))]
    assert json.loads(out)["replies"][42] == "-"
    ops += plan

    subscribers = []
    for proto in (2, 3):
        sub = subprocess.Popen([sys.executable, PEER, "redis-sub", str(srv.port), str(proto), "3"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        try:
            assert sub.stdout.readline().strip() == "subscribed", sub.stderr.read()
            for i in range(3):
                assert rcli("PUBLISH", "news", f"hello {i}")[0] == "1"
                ops.append(("PUBLISH", None))
            sub_out, sub_err = sub.communicate(timeout=20)
        finally:
            stop_proc(sub)
        assert sub.returncode == 0, sub_err
        result = json.loads(sub_out)
        assert result["messages"] == [f"hello {i}" for i in range(3)]
        subscribers.append((sub.pid, result["sent"]))
        ops += [(op, None) for op in result["sent"]]

    out, db2_pid = rcli("-n", "2", "SET", "in:db2", "x")  # SELECT 2, then SET
    assert out == "OK"
    ops += [("SELECT", None), ("SET", None)]

    stats, spans = finish(ag, receiver, jsonl, srv.port)
    busy = busy_note(stats)
    counts = {}
    for kind in ("CLIENT", "SERVER"):
        got = spans_at(spans, kind, srv.port)
        counts[kind] = len(got)
        assert sorted(s["name"] for s in got) == sorted(op for op, _ in ops), \
            f"{kind}: {len(got)} spans for {len(ops)} commands{busy}:{dump(got)}"
        for s in got:
            check_db_span(s, "redis", s["name"], code=a(s, "db.response.status_code"))
            assert "db.query.text" not in s["attributes"], "Redis arguments are values"
        errors = sorted((s["name"], a(s, "db.response.status_code")) for s in got
                        if s["status"] == "ERROR")
        assert errors == sorted((op, code) for op, code in ops if code), errors
        in_db2 = [(s["name"], a(s, "db.namespace")) for s in got if a(s, "db.namespace")]
        assert in_db2 == [("SELECT", "2"), ("SET", "2")], in_db2

    assert linked(spans, srv.port) == len(ops), f"{linked(spans, srv.port)} of {len(ops)} linked"
    client = spans_at(spans, "CLIENT", srv.port)
    for pid, op, code in cli_pids:
        mine = of_pid(client, pid)
        assert [(s["name"], a(s, "db.response.status_code")) for s in mine] == [(op, code)], \
            dump(mine)
    mine = of_pid(client, pipe_pid)
    assert [(s["name"], a(s, "db.response.status_code")) for s in mine] == plan, dump(mine)
    for pid, sent in subscribers:
        # its commands only: the three pushed messages are not replies
        mine = of_pid(client, pid)
        assert [s["name"] for s in mine] == sent, dump(mine)
    figure(request, f"redis: {len(ops)} commands issued (100 in one pipelined write, 2 "
                    f"subscribers, RESP2 and RESP3, 6 pushed messages), CLIENT spans "
                    f"{counts['CLIENT']}, SERVER spans {counts['SERVER']} "
                    f"({linked(spans, srv.port)} SERVER spans children of their CLIENT span); "
                    f"parser {parser_stats(stats, 'redis')}")


def parser_stats(stats, proto):
    """The agent's counters for one protocol's parsers, wherever its stats line keeps them."""
    for path in (("user", "l7", proto), ("l7", proto), ("conn", "l7", proto)):
        v = stat(stats, *path)
        if v is not None:
            return v
    return "n/a"


# ------------------------------------------------------------------ PostgreSQL

PGBENCH_SCRIPTS = {
    "ok": "\\set id 1\n"
          "SELECT name FROM items WHERE id = :id;\n"
          "UPDATE items SET price = price + 1 WHERE id = :id;\n"
          "\\startpipeline\n"
          "SELECT 1;\n"
          "SELECT name FROM items WHERE id = :id;\n"
          "SELECT count(*) FROM items;\n"
          "\\endpipeline\n",
    "error": "\\startpipeline\nSELECT 1;\nSELECT 1/0;\nSELECT 2;\n\\endpipeline\n",
    "prepared": "\\set id 2\nSELECT name FROM items WHERE id = :id;\n",
}
SEL = "SELECT name FROM items WHERE id = $1;"


def test_postgres(request, receiver, agent, servers, tmp_path):
    srv = servers("postgres")
    ag, jsonl = start_agent(agent, receiver, tmp_path)
    expected = []  # (op, sanitised query, code)

    # psql: SSLRequest answered 'N', StartupMessage, the simple protocol
    srv.psql("shop", "INSERT INTO items VALUES (3, 'fig', 0.5)")
    expected.append(("INSERT", "INSERT INTO items VALUES (?, ?, ?)", None))
    srv.psql("shop", "SELECT name FROM items WHERE id = 1")
    expected.append(("SELECT", "SELECT name FROM items WHERE id = ?", None))
    p = srv.psql("shop", "SELECT * FROM nosuchtable", check=False)
    assert p.returncode != 0 and "nosuchtable" in p.stderr, p.stderr
    expected.append(("SELECT", "SELECT * FROM nosuchtable", "42P01"))

    def pgbench(name, protocol, transactions=1, ok=True):
        path = tmp_path / f"{name}.sql"
        path.write_text(PGBENCH_SCRIPTS[name])
        p = run([srv.tool("pgbench"), "-n", "-h", "127.0.0.1", "-p", str(srv.port), "-U",
                 "postgres", "-t", str(transactions), "-f", str(path), f"--protocol={protocol}",
                 "shop"], check=ok, env=pg_env())
        assert ok or p.returncode != 0, p.stdout

    # the extended protocol: P B D E per statement, three of them in one pipeline (one Sync)
    pgbench("ok", "extended")
    expected += [("SELECT", SEL, None),
                 ("UPDATE", "UPDATE items SET price = price + ? WHERE id = $1;", None),
                 ("SELECT", "SELECT ?;", None), ("SELECT", SEL, None),
                 ("SELECT", "SELECT count(*) FROM items;", None)]
    # an error in a pipeline: the server skips the rest of it (an error with no code)
    pgbench("error", "extended", ok=False)
    expected += [("SELECT", "SELECT ?;", None), ("SELECT", "SELECT ?/?;", "22012"),
                 ("SELECT", "SELECT ?;", "")]
    # named statements, parsed once (a Sync of their own: PREPARE), executed twice
    pgbench("prepared", "prepared", transactions=2)
    expected += [("PREPARE", SEL, None), ("SELECT", SEL, None), ("SELECT", SEL, None)]

    stats, spans = finish(ag, receiver, jsonl, srv.port)
    check_sides(request, "postgresql", spans, srv.port, expected, "postgresql", stats, ns="shop")


# ------------------------------------------------------------------ MariaDB


@pytest.fixture(scope="module")
def peer_mysql(tmp_path_factory):
    """tests/integration/peer_mysql.c, built against the system's MariaDB Connector/C."""
    config = shutil.which("mariadb_config")
    cc = shutil.which("cc") or shutil.which("gcc")
    if not config or not cc:
        pytest.skip("mariadb_config or cc missing: run 'sudo make deps' (libmariadb-dev)")
    flags = run([config, "--cflags", "--libs"]).stdout.split()
    out = str(tmp_path_factory.mktemp("peer") / "peer_mysql")
    run([cc, "-O1", "-Wall", "-Werror", "-o", out, os.path.join(HERE, "peer_mysql.c")] + flags)
    return out


MYSQL_SESSION = [
    # (line for peer_mysql, its answer, (op, sanitised query, code) or None: no exchange)
    ("Q INSERT INTO items VALUES (3, 'fig', 0.50)", "ok",
     ("INSERT", "INSERT INTO items VALUES (?, ?, ?)", None)),
    ("Q SELECT id, name FROM items WHERE name = 'apple' OR id > 1", "rows 3",
     ("SELECT", "SELECT id, name FROM items WHERE name = ? OR id > ?", None)),
    ("Q SELECT * FROM nosuchtable", "err 1146", ("SELECT", "SELECT * FROM nosuchtable", "1146")),
    ("P SELECT name, price FROM items WHERE id = ?", "stmt 0",
     ("PREPARE", "SELECT name, price FROM items WHERE id = ?", None)),
    ("E 0 1", "rows 1", ("SELECT", "SELECT name, price FROM items WHERE id = ?", None)),
    ("E 0 2", "rows 1", ("SELECT", "SELECT name, price FROM items WHERE id = ?", None)),
    ("P UPDATE items SET price = price + 1 WHERE id = ?", "stmt 1",
     ("PREPARE", "UPDATE items SET price = price + ? WHERE id = ?", None)),
    ("E 1 1", "ok", ("UPDATE", "UPDATE items SET price = price + ? WHERE id = ?", None)),
    ("C 0", "ok", None),  # COM_STMT_CLOSE: no response, no span
    ("Q SELECT 1; SELECT 2", "rows 1\nrows 1", ("SELECT", "SELECT ?; SELECT ?", None)),
    # a 3000-byte value: the row is longer than the capture; the span still ends
    ("Q SELECT REPEAT('x', 3000)", "rows 1", ("SELECT", "SELECT REPEAT(?, ?)", None)),
]


def test_mariadb(request, receiver, agent, servers, peer_mysql, tmp_path):
    srv = servers("mariadb")
    ag, jsonl = start_agent(agent, receiver, tmp_path)
    peer = subprocess.Popen([peer_mysql, "127.0.0.1", str(srv.port), srv.user, srv.password,
                             "shop"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert peer.stdout.readline().strip() == "ready", peer.stderr.read()
        expected = []
        for line, answer, x in MYSQL_SESSION:
            peer.stdin.write(line + "\n")
            peer.stdin.flush()
            got = "\n".join(peer.stdout.readline().strip() for _ in answer.split("\n"))
            assert got == answer, f"{line}: {got!r} != {answer!r}"
            if x:
                expected.append(x)
        peer.stdin.close()
        assert peer.wait(10) == 0, peer.stderr.read()
    finally:
        stop_proc(peer)
    mariadb = shutil.which("mariadb") or shutil.which("mysql")
    if mariadb:
        out = run([mariadb, "-h", "127.0.0.1", "-P", str(srv.port), "-u", srv.user,
                   f"-p{srv.password}", "-N", "-e", "SELECT COUNT(*) FROM items", "shop"])
        assert out.stdout.strip() == "3", out.stdout
        expected.append(("SELECT", "SELECT COUNT(*) FROM items", None))
    stats, spans = finish(ag, receiver, jsonl, srv.port)
    check_sides(request, "mariadb", spans, srv.port, expected, "mysql", stats, ns="shop")


# ------------------------------------------------------------------ memcached


def test_memcached(request, receiver, agent, servers, tmp_path):
    srv = servers("memcached")
    ag, jsonl = start_agent(agent, receiver, tmp_path)
    run([sys.executable, PEER, "memcached", str(srv.port)])
    expected = [(op, None, err or None) for _req, _want, op, err in peer_db_client.MEMCACHED]
    stats, spans = finish(ag, receiver, jsonl, srv.port)
    check_sides(request, "memcached", spans, srv.port, expected, "memcached", stats)
    for s in spans_at(spans, "CLIENT", srv.port) + spans_at(spans, "SERVER", srv.port):
        assert "db.query.text" not in s["attributes"] and "db.namespace" not in s["attributes"]
