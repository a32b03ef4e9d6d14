"""Database dumps taken by ``failover replicate``, kept on the target's storage, and how
the newest one stands.

A dump of one database:

- runs the engine's own tool (:mod:`failover.databases`) against the database's DSN
  (config ``databases.<name>.dsn``, resolved from the environment now and never stored):
  PostgreSQL ``pg_dump -Fc``; MySQL and MariaDB ``mysqldump --single-transaction
  --routines --triggers --databases``, gzipped here as it streams. The password goes in
  the tool's environment or a 0600 file that lives as long as the tool runs, never on the
  command line;
- streams the tool's output straight into the target storage (``upload_stream``), hashing
  and counting it on the way: no temporary copy of the whole dump on this machine;
- stores it in the dumps container (``container_prefix + "failover-dumps"``) under
  ``<database>/<UTC time><the engine's suffix>`` (``failover.naming``), where
  ``restore-databases`` finds the newest;
- deletes the partial object when the tool fails (a wrong password, a lost connection)
  and reports the tool's last line of error, the password removed;
- verifies what the target stored (size, and MD5 where the target states one), records
  the dump (``StateStore.save_dump``), then deletes the older dumps of that database
  beyond the newest ``keep`` (:func:`prune`) and marks their records pruned.

Keys have one-second resolution. A second dump of a database within the same second
waits for the next second rather than overwrite the first (and refuses if that key is
taken too), so no dump is ever silently replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from failover.config import resolve_secrets
from failover.databases.base import Engine, engine_for
from failover.dsn import Dsn, parse_dsn, redacted
from failover.errors import InputError, OperationFailed, Problem
from failover.manifest import now_iso
from failover.naming import DUMPS_BUCKET, dump_key, dump_prefix, parse_dump_key
from failover.ports import ObjectInfo, StorageTarget
from failover.state import DumpRecord, StateStore, new_id

CHUNK_SIZE = 1024 * 1024
SAME_SECOND_TRIES = 2  # the key of now, then of the next second
STDERR_TAIL = 4096  # bytes of the tool's error output read back for the message

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


# -- the DSN ------------------------------------------------------------------------------------


def database_dsn(spec: Any, *, file: str, name: str) -> Dsn:
    """The DSN of config ``databases.<name>``, its ``${env:NAME}`` secrets resolved now.
    ConfigError for an unset variable, InputError for a DSN that does not parse; neither
    repeats the DSN (it holds the password)."""
    where = f"databases.{name}.dsn"
    text = resolve_secrets(spec.dsn, file=file, field=where)
    try:
        return parse_dsn(text)
    except InputError as exc:
        raise InputError([Problem(file=file, field=where, message=problem.message) for problem in exc.problems]) from None


def check_dsn(dsn: Dsn, engine: str, *, file: str, name: str) -> None:
    """InputError when the DSN cannot be dumped as ``engine``: another engine's, or one the
    engine cannot use (MySQL: no database)."""
    found = engine_for(engine)
    where = f"databases.{name}.dsn"
    if found is None:
        raise InputError([Problem(file=file, field=f"databases.{name}",
                                  message=f"engine {engine} has no dump format (failover dumps PostgreSQL, MySQL and MariaDB)")])
    if dsn.family != found.name:
        raise InputError([Problem(file=file, field=where,
                                  message=f"database {name} is {engine}: the dsn must be a {found.name} one")])
    problem = found.dsn_problem(dsn)
    if problem is not None:
        raise InputError([Problem(file=file, field=where, message=problem)])


# -- the dump tools -----------------------------------------------------------------------------


def _output(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read1(CHUNK_SIZE):
        yield chunk


class _Metered:
    """The dump's bytes on their way to the target: counted, MD5-hashed, progress reported."""

    def __init__(self, chunks: Iterable[bytes], progress: Callable[[int], None] | None) -> None:
        self._chunks = iter(chunks)
        self._md5 = hashlib.md5()
        self._progress = progress
        self.size = 0

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()

    def __iter__(self) -> _Metered:
        return self

    def __next__(self) -> bytes:
        chunk = next(self._chunks)
        self._md5.update(chunk)
        self.size += len(chunk)
        if self._progress is not None:
            self._progress(self.size)
        return chunk


# -- one dump -----------------------------------------------------------------------------------


class DumpFailed(OperationFailed):
    """The dump tool failed, or what the target stored is not what was sent; nothing is kept."""


@dataclass
class DumpResult:
    """A verified dump on the target. ``taken_at``: when the tool started (the key's time)."""

    database: str
    engine: str
    container: str
    key: str
    taken_at: str
    finished_at: str
    bytes: int
    md5: str
    elapsed_s: float
    pruned: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def dump_database(
    storage: StorageTarget,
    store: StateStore,
    *,
    service: str,
    target_name: str,
    database: str,
    engine: str,
    dsn: Dsn,
    progress: Callable[[int], None] | None = None,
    clock: Clock = utc_now,
    sleep: Callable[[float], None] = time.sleep,
) -> DumpResult:
    """Dump ``database`` (its name in the manifest) from ``dsn`` straight into the dumps
    container, verify and record it. DumpFailed (the partial object deleted) when the tool
    fails or the stored object is not what was sent."""
    found, started, container, taken_at, key = _begin(storage, database, engine, clock, sleep)
    with tempfile.TemporaryDirectory(prefix="failover-dump-") as workdir, tempfile.TemporaryFile() as errors:
        command, env = found.dump_command(dsn, Path(workdir))
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors, env=env)
        sent = _Metered(found.dump_stream(_output(process.stdout)), progress)
        try:
            uploaded = _upload(storage, key, sent, found)
            status = process.wait()
            if status != 0:
                message = redacted(_last_line(errors), dsn.secrets)
                raise DumpFailed(
                    f"{found.dump_tool} of {database} ({dsn.describe()}) failed (exit {status}): {message or 'no message'}"
                )
            _verify(storage, container, key, uploaded, sent)
        except BaseException:
            if process.poll() is None:
                process.kill()  # the upload stopped early: do not leave the tool blocked on a full pipe
            process.wait()
            _discard(storage, key)
            raise
        finally:
            process.stdout.close()
    return _recorded(store, service, target_name, database, engine, container, key, taken_at, sent, started)


def store_dump(
    storage: StorageTarget,
    store: StateStore,
    *,
    service: str,
    target_name: str,
    database: str,
    engine: str,
    chunks: Iterable[bytes],
    clock: Clock = utc_now,
    sleep: Callable[[float], None] = time.sleep,
) -> DumpResult:
    """Store a dump made elsewhere (``chunks``, already in the engine's dump format) as
    :func:`dump_database` stores one: under the key of now in the dumps container,
    verified, recorded. DumpFailed (the partial object deleted) when the stored object is
    not what was sent."""
    found, started, container, taken_at, key = _begin(storage, database, engine, clock, sleep)
    sent = _Metered(chunks, None)
    try:
        _verify(storage, container, key, _upload(storage, key, sent, found), sent)
    except BaseException:
        _discard(storage, key)
        raise
    return _recorded(store, service, target_name, database, engine, container, key, taken_at, sent, started)


def _begin(
    storage: StorageTarget, database: str, engine: str, clock: Clock, sleep: Callable[[float], None],
) -> tuple[Engine, float, str, datetime, str]:
    """The engine of a dump about to be stored, when it started, the dumps container (made if
    missing), and the dump's time and key (of now, never one taken already)."""
    found = engine_for(engine)
    if found is None:
        raise ValueError(f"no dump format for engine {engine!r}")
    started = time.monotonic()
    container = storage.ensure_container(DUMPS_BUCKET)
    taken_at, key = _free_key(storage, database, engine, clock, sleep)
    return found, started, container, taken_at, key


def _upload(storage: StorageTarget, key: str, sent: _Metered, engine: Engine) -> ObjectInfo:
    uploaded = storage.upload_stream(DUMPS_BUCKET, key, sent, content_type=engine.dump_content_type)
    if next(sent, None) is not None:  # an upload must take the stream to its end
        raise DumpFailed(f"the upload of {key} stopped before the end of the dump")
    return uploaded


def _recorded(
    store: StateStore, service: str, target_name: str, database: str, engine: str, container: str, key: str,
    taken_at: datetime, sent: _Metered, started: float,
) -> DumpResult:
    """Record a verified dump in the state store; its result."""
    finished_at = now_iso()
    store.save_dump(DumpRecord(
        id=new_id("dump"), service=service, target=target_name, database=database, engine=engine,
        container=container, key=key, started_at=_iso(taken_at), finished_at=finished_at, bytes=sent.size, md5=sent.md5,
    ))
    return DumpResult(
        database=database, engine=engine, container=container, key=key, taken_at=_iso(taken_at),
        finished_at=finished_at, bytes=sent.size, md5=sent.md5, elapsed_s=round(time.monotonic() - started, 3),
    )


def _free_key(storage: StorageTarget, database: str, engine: str, clock: Clock, sleep: Callable[[float], None]) -> tuple[datetime, str]:
    """The key of a dump taken now; within the second of an existing dump, the next second's."""
    for _ in range(SAME_SECOND_TRIES):
        taken_at = clock().astimezone(UTC)
        key = dump_key(database, engine, taken_at)
        if storage.get_object(DUMPS_BUCKET, key) is None:
            return taken_at.replace(microsecond=0), key
        sleep(1 - taken_at.microsecond / 1_000_000)
    raise DumpFailed(f"a dump of {database} is already stored as {key}: refusing to replace it")


def _verify(storage: StorageTarget, container: str, key: str, uploaded: ObjectInfo, sent: _Metered) -> None:
    where = f"dump {container}/{key}"
    if uploaded.size != sent.size or (uploaded.md5 is not None and uploaded.md5 != sent.md5):
        raise DumpFailed(f"{where}: the upload took {uploaded.size} bytes of the {sent.size} read from the tool")
    stored = storage.get_object(DUMPS_BUCKET, key)
    if stored is None:
        raise DumpFailed(f"{where} is not on the target after its upload")
    if stored.size != sent.size:
        raise DumpFailed(f"{where}: the target stored {stored.size} bytes, {sent.size} were sent")
    if stored.md5 is not None and stored.md5 != sent.md5:
        raise DumpFailed(f"{where}: the target's MD5 {stored.md5} is not the MD5 of what was sent ({sent.md5})")


def _discard(storage: StorageTarget, key: str) -> None:
    """Delete a partial or unverified dump; a failure to do so must not hide the first error."""
    with contextlib.suppress(Exception):
        storage.delete_object(DUMPS_BUCKET, key)


def _last_line(errors: IO[bytes]) -> str:
    errors.seek(0, 2)
    errors.seek(max(0, errors.tell() - STDERR_TAIL))
    lines = [line.strip() for line in errors.read().decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# -- keeping the newest N ---------------------------------------------------------------------


def dumps_on_target(storage: StorageTarget, database: str, engine: str) -> list[tuple[datetime, str, ObjectInfo]]:
    """The dumps of ``database`` in its engine's format on the target, newest first."""
    owner = engine_for(engine)
    if owner is None or not storage.container_exists(DUMPS_BUCKET):
        return []
    found = []
    with warnings.catch_warnings():  # local disk lists by prefix the slow way, and warns about it each time
        warnings.filterwarnings("ignore", message=".*native object filtering.*")
        items = list(storage.iter_objects(DUMPS_BUCKET, prefix=dump_prefix(database)))
    for item in items:
        parsed = parse_dump_key(item.key)
        if parsed is not None and parsed.database == database and parsed.suffix == owner.dump_suffix:
            found.append((parsed.taken_at, item.key, item))
    return sorted(found, key=lambda entry: (entry[0], entry[1]), reverse=True)


def prune(
    storage: StorageTarget, store: StateStore, *, service: str, target_name: str, database: str, engine: str, keep: int,
) -> list[str]:
    """Delete the dumps of ``database`` older than its newest ``keep`` and mark their records
    pruned; the keys deleted, oldest last. Only after a verified dump: never the last ones."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    gone = [key for _, key, _ in dumps_on_target(storage, database, engine)[keep:]]
    for key in gone:
        storage.delete_object(DUMPS_BUCKET, key)
    ids = [record.id for record in store.dumps(service, target_name, database) if record.key in set(gone)]
    store.mark_dumps_pruned(ids, now_iso())
    return gone
