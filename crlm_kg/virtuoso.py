"""A throwaway Virtuoso server holding the repository graph, for integration tests.

``running_virtuoso()`` starts Debian's ``virtuoso-t`` in a scratch directory
under the system temporary directory, on free HTTP and SQL ports found at run
time, loads the ontology and the curated evidence into their named graphs
(``paths.GRAPH_ONTOLOGY``, ``paths.GRAPH_EVIDENCE`` and their RDFS entailments in ``paths.GRAPH_INFERRED``) and yields a
``VirtuosoInstance`` whose ``store()`` is a ``RemoteStore`` querying exactly
those graphs. On leaving the block, normally or on an exception, the server
process it started is terminated (killed if it does not stop) and the scratch
directory removed::

    from crlm_kg.virtuoso import running_virtuoso, virtuoso_available

    ok, reason = virtuoso_available()
    with running_virtuoso() as v:
        rows = v.store().select("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")

Nothing here touches a system-wide Virtuoso: the configuration is a copy of
``/etc/virtuoso-opensource-7/virtuoso.ini`` with every database path rewritten
into the scratch directory, the ports replaced, ``DirsAllowed`` extended with
the scratch directory (so the bulk loader may read the dump), ``VectorSize``
set to 1 (Virtuoso 7.2 mis-evaluates ``*`` property paths in vectored batches)
and the SPARQL result-row and execution-time limits raised so that no answer is
silently truncated. ``VIRTUOSO_BIN``, ``VIRTUOSO_ISQL`` and ``VIRTUOSO_INI`` override the
binary, the SQL client and the template configuration.
"""

from __future__ import annotations

import configparser
import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import httpx
import pyoxigraph as ox

from . import paths
from .graphs import repository_quads
from .store import RemoteStore, VirtuosoDialect
from .settings import VirtuosoSettings

DEFAULT_INI = Path("/etc/virtuoso-opensource-7/virtuoso.ini")
PACKAGED_DB_DIR = "/var/lib/virtuoso-opensource-7/db"
INSTALL_HINT = "install Debian's virtuoso-opensource (make test does)"
START_TIMEOUT = 90.0  # seconds until /sparql must answer
LOAD_TIMEOUT = 180.0  # seconds for the bulk load
REPOSITORY_GRAPHS = (paths.GRAPH_ONTOLOGY, paths.GRAPH_EVIDENCE, paths.GRAPH_INFERRED)


class VirtuosoError(RuntimeError):
    """Virtuoso could not be started, loaded or reached; the message says why."""


def _binary() -> str | None:
    return shutil.which(VirtuosoSettings().bin)


def _isql() -> str | None:
    return shutil.which(VirtuosoSettings().isql) or shutil.which("isql")


def _template() -> Path:
    return VirtuosoSettings().ini or DEFAULT_INI


def virtuoso_available() -> tuple[bool, str]:
    """Whether a throwaway Virtuoso can be started here; when not, the reason (with the fix)."""
    if _binary() is None:
        return False, f"virtuoso-t not found: {INSTALL_HINT}"
    if _isql() is None:
        return False, f"isql-vt (Virtuoso's SQL client) not found: {INSTALL_HINT}"
    if not _template().is_file():
        return False, f"{_template()} not found (the configuration template): {INSTALL_HINT}"
    return True, ""


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(directory: Path, http_port: int, sql_port: int, template: Path | None = None,
                 buffers: int | None = None, allowed: Iterable[Path] = ()) -> Path:
    """Copy the packaged ``virtuoso.ini`` into ``directory`` with paths, ports and limits rewritten.

    ``buffers`` sets ``NumberOfBuffers`` (8 KiB pages held in memory; the packaged 10 000 make a
    5 M-triple load crawl) and ``MaxDirtyBuffers`` to three quarters of it; ``allowed`` are more
    directories the bulk loader may read."""
    text = (template or _template()).read_text(encoding="utf-8", errors="replace")
    text = text.replace(PACKAGED_DB_DIR + "/", str(directory) + "/").replace(PACKAGED_DB_DIR, str(directory))
    ini = configparser.RawConfigParser(strict=False, inline_comment_prefixes=(";",), allow_no_value=True)
    ini.optionxform = str  # Virtuoso's keys are case-sensitive in spirit; keep them as written
    ini.read_string(text)

    def put(section: str, key: str, value: str) -> None:
        if not ini.has_section(section):
            ini.add_section(section)
        ini.set(section, key, value)

    db = directory
    put("Database", "DatabaseFile", str(db / "virtuoso.db"))
    put("Database", "ErrorLogFile", str(db / "virtuoso.log"))
    put("Database", "LockFile", str(db / "virtuoso.lck"))
    put("Database", "TransactionFile", str(db / "virtuoso.trx"))
    put("Database", "xa_persistent_file", str(db / "virtuoso.pxa"))
    put("TempDatabase", "DatabaseFile", str(db / "virtuoso-temp.db"))
    put("TempDatabase", "TransactionFile", str(db / "virtuoso-temp.trx"))
    put("Parameters", "ServerPort", str(sql_port))
    put("HTTPServer", "ServerPort", str(http_port))
    put("URIQA", "DefaultHost", f"localhost:{http_port}")
    dirs = [d.strip() for d in (ini.get("Parameters", "DirsAllowed", fallback=".") or ".").split(",") if d.strip()]
    put("Parameters", "DirsAllowed", ", ".join(dirs + [str(directory)] + [str(d) for d in allowed]))
    if buffers:
        put("Parameters", "NumberOfBuffers", str(buffers))
        put("Parameters", "MaxDirtyBuffers", str(buffers * 3 // 4))
    put("Parameters", "CheckpointInterval", "0")  # a throwaway database needs no periodic checkpoints
    # the packaged limits would cut answers at 10 000 rows or 60 s without an error status
    # Virtuoso 7.2's vectored transitive operator loses rows when a batch of inputs
    # meets the same target: `?s a/rdfs:subClassOf* crlm:Study ; crlm:hasEligibility ?e`
    # answered 1 row of 4. One row per batch evaluates property paths correctly
    # (a production Virtuoso serving this graph needs the same setting).
    put("Parameters", "VectorSize", "1")
    put("Parameters", "AdjustVectorSize", "0")
    put("SPARQL", "ResultSetMaxRows", "10000000")
    put("SPARQL", "MaxQueryExecutionTime", "0")
    put("SPARQL", "MaxQueryCostEstimationTime", "0")
    if ini.has_section("Plugins"):  # the wiki plugins are irrelevant and slow the start
        ini.remove_section("Plugins")
    path = directory / "virtuoso.ini"
    with path.open("w", encoding="utf-8") as handle:
        ini.write(handle)
    return path


def dump_repository(directory: Path, quads: Iterable | None = None) -> Path:
    """Write the repository graph (or ``quads``) as one N-Quads file in ``directory``."""
    target = directory / "load" / "repository.nq"
    target.parent.mkdir(parents=True, exist_ok=True)
    ox.serialize(list(quads) if quads is not None else repository_quads(), output=str(target), format=ox.RdfFormat.N_QUADS)
    return target


@dataclass
class VirtuosoInstance:
    """A running throwaway server: where to query it and which graphs hold the repository."""

    sparql_url: str
    graph_uri: str
    graphs: tuple[str, ...]
    http_port: int
    sql_port: int
    directory: Path
    process: subprocess.Popen = field(repr=False)
    triples: int = 0
    load_seconds: float = 0.0  # the bulk load and its checkpoint

    @property
    def graph_env(self) -> str:
        """The value of ``CRLM_KG_GRAPH`` that selects the repository graphs."""
        return ",".join(self.graphs)

    def store(self, timeout: float = 60.0):
        """A ``RemoteStore`` over this server's repository graphs, in Virtuoso's dialect."""
        return RemoteStore(self.sparql_url, graph=self.graph_env, timeout=timeout, dialect=VirtuosoDialect())

    def isql(self, sql: str, timeout: float = LOAD_TIMEOUT) -> str:
        """Run SQL statements through isql-vt as dba; raise VirtuosoError on any error."""
        return _run_isql(self.sql_port, sql, timeout)

    def log_tail(self, lines: int = 30) -> str:
        return _log_tail(self.directory, lines)


def _run_isql(sql_port: int, sql: str, timeout: float) -> str:
    isql = _isql()
    if isql is None:
        raise VirtuosoError(f"isql-vt not found: {INSTALL_HINT}")
    try:
        proc = subprocess.run([isql, f"127.0.0.1:{sql_port}", "dba", "dba", "VERBOSE=OFF", "BANNER=OFF", "PROMPT=OFF",
                               "ERRORS=STDOUT", "ECHO=OFF"], input=sql + "\nEXIT;\n", capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise VirtuosoError(f"isql-vt did not finish within {timeout:.0f} s") from None
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 or "*** Error" in output:
        raise VirtuosoError(f"isql-vt failed (exit {proc.returncode}): {output.strip()[-1500:]}")
    return proc.stdout


def _log_tail(directory: Path, lines: int = 30) -> str:
    log = directory / "virtuoso.log"
    try:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no virtuoso.log)"


def _wait_for_sparql(url: str, process: subprocess.Popen, directory: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise VirtuosoError(f"virtuoso-t exited with status {process.returncode} before {url} answered; "
                                f"its log ends:\n{_log_tail(directory)}")
        try:
            response = httpx.get(url, params={"query": "ASK { }"}, headers={"Accept": "application/sparql-results+json"},
                                 timeout=5.0)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.5)
    raise VirtuosoError(f"{url} did not answer within {timeout:.0f} s (last: {last}); virtuoso.log ends:\n{_log_tail(directory)}")


def _stop(process: subprocess.Popen, grace: float = 15.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _start(directory: Path, start_timeout: float, buffers: int | None = None,
           allowed: Iterable[Path] = ()) -> tuple[subprocess.Popen, int, int]:
    """Start virtuoso-t on free ports; a port taken between choice and bind gets one more try."""
    binary = _binary()
    if binary is None:
        raise VirtuosoError(f"virtuoso-t not found: {INSTALL_HINT}")
    error: VirtuosoError | None = None
    for _attempt in range(2):
        http_port, sql_port = free_port(), free_port()
        while sql_port == http_port:
            sql_port = free_port()
        config = write_config(directory, http_port, sql_port, buffers=buffers, allowed=allowed)
        with (directory / "virtuoso.stdout").open("ab") as out:
            process = subprocess.Popen([binary, "+configfile", str(config), "+foreground"], cwd=directory,
                                       stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            _wait_for_sparql(f"http://127.0.0.1:{http_port}/sparql", process, directory, start_timeout)
            return process, http_port, sql_port
        except BaseException as exc:
            _stop(process)
            if not isinstance(exc, VirtuosoError):
                raise
            error = exc
            for name in ("virtuoso.db", "virtuoso.trx", "virtuoso.lck", "virtuoso-temp.db", "virtuoso-temp.trx"):
                (directory / name).unlink(missing_ok=True)
    assert error is not None
    raise error


def load_nquads(sql_port: int, directory: Path, timeout: float = LOAD_TIMEOUT, pattern: str = "*.nq") -> None:
    """Bulk-load the ``pattern`` files of ``directory`` (which must be in DirsAllowed) into their named graphs."""
    _run_isql(sql_port, "\n".join([
        f"ld_dir('{directory}', '{pattern}', '{paths.GRAPH_EVIDENCE}');",
        "rdf_loader_run();",
        "checkpoint;",
    ]), timeout)
    report = _run_isql(sql_port, "SELECT ll_file, ll_state, ll_error FROM DB.DBA.load_list WHERE ll_error IS NOT NULL;", 30)
    if "repository" in report or ".nq" in report:
        raise VirtuosoError(f"the bulk loader reported an error: {report.strip()[:1500]}")


@contextlib.contextmanager
def running_virtuoso(quads: Iterable | None = None, start_timeout: float = START_TIMEOUT,
                     keep_dir: bool = False, nquads: Path | None = None, buffers: int | None = None,
                     load_timeout: float = LOAD_TIMEOUT) -> Iterator[VirtuosoInstance]:
    """Start a throwaway Virtuoso, load the repository graph (or ``quads``) and yield it; always stop it.

    ``nquads`` is an N-Quads file of the repository graphs to load instead (a scaled graph's dump,
    read where it lies, not copied); ``buffers`` and ``load_timeout`` size the server and the wait
    for a large load (see ``write_config``).

    Raises ``VirtuosoError`` (with the reason and the end of Virtuoso's log) when
    the server is not installed, does not answer within ``start_timeout`` seconds
    or the load fails.
    """
    ok, reason = virtuoso_available()
    if not ok:
        raise VirtuosoError(reason)
    directory = Path(tempfile.mkdtemp(prefix="crlm-kg-virtuoso-"))
    process: subprocess.Popen | None = None
    try:
        quads = list(quads) if quads is not None else None
        allowed = [nquads.resolve().parent] if nquads is not None else []
        process, http_port, sql_port = _start(directory, start_timeout, buffers, allowed)
        started = time.perf_counter()
        if nquads is not None:
            load_nquads(sql_port, nquads.resolve().parent, load_timeout, pattern=nquads.name)
        else:
            load_nquads(sql_port, dump_repository(directory, quads).parent, load_timeout)
        load_seconds = time.perf_counter() - started
        graphs = tuple(sorted({str(q.graph_name.value) for q in quads})) if quads is not None else REPOSITORY_GRAPHS
        instance = VirtuosoInstance(
            sparql_url=f"http://127.0.0.1:{http_port}/sparql",
            graph_uri=graphs[0] if len(graphs) == 1 else ",".join(graphs),
            graphs=graphs,
            http_port=http_port,
            sql_port=sql_port,
            directory=directory,
            process=process,
            load_seconds=load_seconds,
        )
        instance.triples = instance.store().triple_count()
        if instance.triples == 0:
            raise VirtuosoError(f"nothing was loaded into {', '.join(graphs)}; virtuoso.log ends:\n{_log_tail(directory)}")
        yield instance
    finally:
        if process is not None:
            _stop(process)
        if not keep_dir:
            shutil.rmtree(directory, ignore_errors=True)
