# SPDX-License-Identifier: Apache-2.0
"""Issue 14, TLS to databases: the same calls over TLS give the same spans as in plaintext.

Real servers and clients from Debian's packages, all linking the system's libssl dynamically:
- redis-server listening on a plaintext port and a TLS port (--tls-port), redis-cli --tls;
- PostgreSQL with ssl=on, psql with sslmode=require (SSLRequest answered 'S', the handshake,
  then the startup and the simple protocol inside TLS) and, as the control, sslmode=disable.
Each command is issued once over TLS and once in plaintext; both give one CLIENT span in the
client and one SERVER span in the server, the SERVER span the child of its CLIENT span, with the
same attributes (but for the ports and process ids)."""

import os
import pwd
import shutil
import subprocess

import pytest

from mt_agent import busy_note, stat
from mt_otlp import free_port
from mt_report import figure
from mt_spans import a
from test_databases import (Postgres, Redis, check_db_span, dump, finish, need, need_root,
                            of_pid, parser_stats, pg_env, popen_pid, spans_at,
                            start_agent)
from test_tls import Certs

IGNORED = {"network.peer.port", "server.port", "client.port", "network.local.port"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certs(str(tmp_path_factory.mktemp("pki")))


class TlsRedis(Redis):
    """redis-server on a plaintext port and a TLS port, the same keyspace behind both."""
    name = "redis-tls"

    def __init__(self, certs):
        super().__init__()
        self.certs = certs
        self.tls_port = free_port()

    def start(self):
        exe = need(shutil.which("redis-server"), "redis-server")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--tls-port", str(self.tls_port),
             "--tls-cert-file", self.certs.cert, "--tls-key-file", self.certs.key,
             "--tls-ca-cert-file", self.certs.ca, "--tls-auth-clients", "no",
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.dir,
             "--logfile", self.log],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_ready()
        port, self.port = self.port, self.tls_port
        try:
            self.wait_ready()
        finally:
            self.port = port
        return self


class TlsPostgres(Postgres):
    """PostgreSQL with ssl=on (its key and certificate copied into its directory, owned by the
    postgres user as the server demands)."""
    name = "postgres-tls"

    def __init__(self, certs):
        super().__init__()
        self.certs = certs

    def start(self):
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("no postgres user: run 'sudo make deps' (postgresql)")
        self.crt = os.path.join(self.dir, "server.crt")
        self.key = os.path.join(self.dir, "server.key")
        shutil.copy(self.certs.cert, self.crt)
        shutil.copy(self.certs.key, self.key)
        for p in (self.crt, self.key):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(self.key, 0o600)
        return super().start()

    def server_args(self):
        return ["-c", "ssl=on", "-c", f"ssl_cert_file={self.crt}", "-c",
                f"ssl_key_file={self.key}"]

    def psql_as(self, sslmode, db, sql, check=True):
        env = pg_env()
        env["PGSSLMODE"] = sslmode
        p = subprocess.Popen([self.tool("psql"), "-X", "-q", "-h", "127.0.0.1", "-p",
                              str(self.port), "-U", "postgres", "-d", db, "-c", sql],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
        out, err = p.communicate(timeout=60)
        assert not check or p.returncode == 0, f"psql ({sslmode}) exited {p.returncode}: {err}"
        return p, out, err


@pytest.fixture(scope="module")
def tls_servers(certs):
    need_root()
    made = {}

    def get(kind):
        if kind not in made:
            made[kind] = {"redis": TlsRedis, "postgres": TlsPostgres}[kind](certs).start()
        return made[kind]

    yield get
    for s in made.values():
        s.stop()


def children(spans, clients, port):
    """The SERVER spans at port whose parent is one of clients, in time order."""
    ids = {s["span_id"] for s in clients}
    return [s for s in spans_at(spans, "SERVER", port) if s["parent_span_id"] in ids]


def comparable(s):
    """A span's name, status and attributes, without what differs between two connections."""
    return (s["kind"], s["name"], s["status"],
            tuple(sorted((k, str(v)) for k, v in s["attributes"].items()
                         if k not in IGNORED and not k.endswith(".port"))))


def tls_covered(stats, conns):
    """The agent's TLS counters, checked: every one of the conns TLS connection ends (client
    and server) gave plaintext, none was left uncovered."""
    tls = stat(stats, "tls", default={}) or {}
    assert tls.get("plaintext_conns", 0) >= conns, tls
    assert tls.get("uncovered_conns") == 0, tls
    return tls


def test_redis_cli_tls(request, receiver, agent, tls_servers, tmp_path):
    srv = tls_servers("redis")
    cli = need(shutil.which("redis-cli"), "redis-tools")
    ag, jsonl = start_agent(agent, receiver, tmp_path)
    commands = [(("SET", "tls:1", "alice"), "OK", None), (("GET", "tls:1"), "alice", None),
                (("INCR", "tls:1"), "ERR", "ERR"),
                (("HSET", "tls:1", "f", "v"), "WRONGTYPE", "WRONGTYPE")]
    pids = {"tls": [], "plain": []}
    for mode in ("tls", "plain"):
        for args, reply, code in commands:
            argv = [cli, "-h", "127.0.0.1"]
            argv += (["--tls", "--cacert", srv.certs.ca, "-p", str(srv.tls_port)]
                     if mode == "tls" else ["-p", str(srv.port)])
            out, pid = popen_pid(argv + list(args))
            assert reply in out, (mode, args, out)
            pids[mode].append((pid, args[0], code))
    stats, spans = finish(ag, receiver, jsonl, srv.tls_port)
    busy = busy_note(stats)

    got = {}
    for mode, port in (("tls", srv.tls_port), ("plain", srv.port)):
        clients = spans_at(spans, "CLIENT", port)
        servers = spans_at(spans, "SERVER", port)
        paired = children(spans, clients, port)
        got[mode] = (clients, servers, paired)
        want = [(op, code) for _, op, code in pids[mode]]
        for kind, side in (("CLIENT", clients), ("SERVER", servers)):
            assert [(s["name"], a(s, "db.response.status_code")) for s in side] == want, \
                f"{mode} {kind}: {len(side)} spans for {len(want)} commands{busy}:{dump(side)}"
            for s in side:
                check_db_span(s, "redis", s["name"], code=a(s, "db.response.status_code"))
        assert len(paired) == len(want), \
            f"{mode}: {len(paired)} of {len(want)} SERVER spans children of their CLIENT span"
        for pid, op, code in pids[mode]:
            mine = of_pid(clients, pid)
            assert [(s["name"], a(s, "db.response.status_code")) for s in mine] == [(op, code)], \
                f"{mode} pid {pid}:{dump(mine)}"
    for i in (0, 1):
        assert [comparable(s) for s in got["tls"][i]] == [comparable(s) for s in got["plain"][i]]
    tls = tls_covered(stats, 2 * len(commands))
    figure(request, f"redis-cli --tls: {len(commands)} commands, CLIENT spans "
                    f"{len(got['tls'][0])}, SERVER spans {len(got['tls'][1])}, paired "
                    f"{len(got['tls'][2])}; plaintext control {len(got['plain'][0])}/"
                    f"{len(got['plain'][1])}/{len(got['plain'][2])}, same attributes; tls "
                    f"plaintext_conns {tls.get('plaintext_conns')}, calls {tls.get('calls')}, "
                    f"uncovered_conns {tls.get('uncovered_conns')}; parser "
                    f"{parser_stats(stats, 'redis')}")


def test_psql_sslmode_require(request, receiver, agent, tls_servers, tmp_path):
    srv = tls_servers("postgres")
    ag, jsonl = start_agent(agent, receiver, tmp_path)
    statements = [("INSERT INTO items VALUES (10, 'kiwi', 0.5)",
                   ("INSERT", "INSERT INTO items VALUES (?, ?, ?)", None)),
                  ("SELECT name FROM items WHERE id = 1",
                   ("SELECT", "SELECT name FROM items WHERE id = ?", None)),
                  ("SELECT * FROM nosuchtable", ("SELECT", "SELECT * FROM nosuchtable", "42P01"))]
    pids = {"require": [], "disable": []}
    for mode in ("require", "disable"):
        for i, (sql, want) in enumerate(statements):
            if mode == "disable" and sql.startswith("INSERT"):
                sql = sql.replace("(10,", "(11,")
            p, _, err = srv.psql_as(mode, "shop", sql, check=want[2] is None)
            assert want[2] is None or "nosuchtable" in err, err
            pids[mode].append((p.pid, want))
    stats, spans = finish(ag, receiver, jsonl, srv.port)
    busy = busy_note(stats)

    got = {}
    for mode in ("require", "disable"):
        clients, paired = [], []
        for pid, (op, query, code) in pids[mode]:
            mine = of_pid(spans_at(spans, "CLIENT", srv.port), pid)
            assert len(mine) == 1, f"psql {mode} pid {pid}: {len(mine)} CLIENT spans{busy}" \
                                   f"{dump(mine)}"
            check_db_span(mine[0], "postgresql", op, ns="shop", query=query, code=code)
            kids = children(spans, mine, srv.port)
            assert len(kids) == 1, f"psql {mode}: SERVER children {dump(kids)}{busy}"
            check_db_span(kids[0], "postgresql", op, ns="shop", query=query, code=code)
            clients += mine
            paired += kids
        got[mode] = (clients, paired)
    assert len(spans_at(spans, "SERVER", srv.port)) == 2 * len(statements), \
        dump(spans_at(spans, "SERVER", srv.port))
    for i in (0, 1):
        assert [comparable(s) for s in got["require"][i]] == \
            [comparable(s) for s in got["disable"][i]]
    tls = tls_covered(stats, 2 * len(statements))
    figure(request, f"psql sslmode=require: {len(statements)} statements, CLIENT spans "
                    f"{len(got['require'][0])}, SERVER spans paired {len(got['require'][1])}; "
                    f"sslmode=disable control {len(got['disable'][0])}/{len(got['disable'][1])}, "
                    f"same attributes; tls plaintext_conns {tls.get('plaintext_conns')}, "
                    f"uncovered_conns {tls.get('uncovered_conns')}; parser "
                    f"{parser_stats(stats, 'postgresql')}")
