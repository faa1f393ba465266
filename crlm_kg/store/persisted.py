"""The graph built once into an on-disk Oxigraph store, with its data version, reused while the inputs are unchanged.

At 100x the evidence, loading the Turtle files, materialising the RDFS entailments and computing the data
version (canonical SHA-256 of 5 M quads) took minutes at every ``crlm-kg serve``. Here they are done once, by
``crlm-kg build`` or by the first ``serve`` after a change, into ``<store_dir>/<key>/``:

* ``oxigraph/``: the dataset (RocksDB), opened read-only by the server and by every SPARQL worker, which
  then share it through the page cache instead of each holding a copy in memory;
* ``version.json``: the fingerprint (``graphs.fingerprint``, the same function as for an in-memory store,
  so the same data version) and the key it was built for.

The key is a SHA-256 of every input byte (the ontology and every evidence file, with their paths) and of the
code that turns them into the dataset (``graphs.py``, this module's ``LAYOUT``, pyoxigraph's version): any change
to any of them names another directory, so a stale store is never opened. A directory appears under its key
only complete (built under a temporary name, renamed last), and on opening, a missing or unreadable
``version.json``, a store RocksDB cannot open, or a quad count that differs from the one hashed means the
entry is removed and rebuilt, never served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import uuid
from pathlib import Path

import pyoxigraph as ox

from .. import graphs, paths

log = logging.getLogger(__name__)

#: Bump when the directory layout or what ``version.json`` holds changes.
LAYOUT = "crlm-kg-store/1"
_VERSION_FILE = "version.json"
_DATA_DIR = "oxigraph"


class StoreCacheError(Exception):
    """The on-disk store could not be built (the message says where and why)."""


def input_digest() -> str:
    """SHA-256 over the inputs of the dataset (file paths and contents) and the code that builds it."""
    digest = hashlib.sha256()
    code = Path(graphs.__file__).read_bytes()
    for part in (LAYOUT, ox.__version__, paths.GRAPH_ONTOLOGY, paths.GRAPH_EVIDENCE, paths.GRAPH_INFERRED):
        digest.update(part.encode() + b"\0")
    digest.update(hashlib.sha256(code).digest())
    files = [paths.ONTOLOGY_TTL] + list(paths.evidence_files())
    for path in files:
        try:
            name = path.relative_to(paths.ROOT).as_posix()
        except ValueError:
            name = path.as_posix()
        with open(path, "rb") as handle:  # a missing file: the load would fail the same way
            content = hashlib.file_digest(handle, "sha256").digest()
        digest.update(name.encode() + b"\0" + content)
    return digest.hexdigest()


def entry_dir(store_dir: Path, digest: str) -> Path:
    return store_dir / digest[:32]


def _read_entry(entry: Path, digest: str) -> tuple[ox.Store, dict] | None:
    """The store and fingerprint of a complete entry built for ``digest``; None if it is absent or unusable."""
    if not entry.is_dir():
        return None
    try:
        meta = json.loads((entry / _VERSION_FILE).read_text())
        ok = (isinstance(meta, dict) and meta.get("layout") == LAYOUT and meta.get("input_digest") == digest
              and isinstance(meta.get("triples"), int) and isinstance(meta.get("sha256"), str) and len(meta["sha256"]) == 64)
    except (OSError, ValueError):
        ok = False
    if not ok:
        log.warning("the on-disk store %s has no valid %s: rebuilding it", entry, _VERSION_FILE)
        return None
    try:
        store = ox.Store.read_only(str(entry / _DATA_DIR))
        count = len(store)
    except (OSError, RuntimeError, ValueError) as exc:
        log.warning("the on-disk store %s cannot be read (%s): rebuilding it", entry, exc)
        return None
    if count != meta["triples"]:
        log.warning("the on-disk store %s holds %d quads, %d were hashed: rebuilding it", entry, count, meta["triples"])
        return None
    return store, {"triples": meta["triples"], "sha256": meta["sha256"]}


def build_entry(target: Path, digest: str) -> None:
    """Load the repository into a new on-disk store at ``target`` (absent) and write its fingerprint."""
    memory = ox.Store()
    graphs.load_repository(memory)  # in memory first: far faster than loading and querying through RocksDB
    fingerprint = graphs.fingerprint(memory)
    disk = ox.Store(str(target / _DATA_DIR))
    disk.bulk_load(memory.dump(format=ox.RdfFormat.N_QUADS), format=ox.RdfFormat.N_QUADS)
    del memory
    disk.flush()
    disk.optimize()
    del disk  # closes RocksDB: the store is only ever opened read-only from now on
    meta = {"layout": LAYOUT, "input_digest": digest, **fingerprint}
    (target / _VERSION_FILE).write_text(json.dumps(meta, indent=1))


def _build_in_child(conn, target: str, digest: str) -> None:  # pragma: no cover - runs in a child
    try:
        build_entry(Path(target), digest)
    except graphs.DataFileError as exc:
        conn.send(("data", str(exc.path), exc.reason, exc.line))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    else:
        conn.send(("ok",))


def _build(store_dir: Path, digest: str) -> Path:
    """Build the entry for ``digest`` under a temporary name and rename it into place; returns its path.
    The build runs in a child process: its peak memory (the whole graph in memory, its canonical form)
    is returned to the system when it exits, instead of staying with the server."""
    store_dir.mkdir(parents=True, exist_ok=True)
    tmp = store_dir / f".building-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_build_in_child, args=(sender, str(tmp), digest), name="crlm-kg-store-build")
        child.start()
        sender.close()
        try:
            outcome = receiver.recv()
        except EOFError:  # killed (out of memory?) before it could say why
            outcome = ("error", "the build process died")
        child.join()
        if outcome[0] == "data":  # a broken data file: the same error, naming file and line, as an in-memory load
            raise graphs.DataFileError(Path(outcome[1]), outcome[2], outcome[3])
        if outcome[0] != "ok" or child.exitcode != 0 or not (tmp / _VERSION_FILE).is_file():
            raise StoreCacheError(f"building the on-disk store in {tmp} failed (exit code {child.exitcode}): {outcome[-1]}")
        entry = entry_dir(store_dir, digest)
        if entry.exists():  # a stale or broken entry, or one another process just finished
            shutil.rmtree(entry, ignore_errors=True)
        try:
            os.rename(tmp, entry)
        except OSError:
            if not entry.is_dir():
                raise
        return entry
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale(store_dir: Path, keep: Path) -> None:
    """Entries for inputs that changed: a few hundred MB each at 100x the evidence."""
    for entry in store_dir.iterdir():
        if entry != keep and entry.is_dir() and not entry.name.startswith(".") and (entry / _VERSION_FILE).exists():
            shutil.rmtree(entry, ignore_errors=True)


def open_persisted(store_dir: Path) -> tuple[ox.Store, dict, Path]:
    """The repository's dataset, read-only from ``store_dir`` (built first if absent, stale or broken):
    (store, fingerprint, path of the Oxigraph directory)."""
    digest = input_digest()
    entry = entry_dir(store_dir, digest)
    found = _read_entry(entry, digest)
    if found is None:
        log.warning("building the on-disk store for these data files in %s (once per change of the inputs)", entry)
        entry = _build(store_dir, digest)
        found = _read_entry(entry, digest)
        if found is None:
            raise StoreCacheError(f"the on-disk store just built in {entry} cannot be read")
        _remove_stale(store_dir, entry)
    store, fingerprint = found
    return store, fingerprint, entry / _DATA_DIR
