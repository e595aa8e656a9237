"""Tile hashes kept on disk between runs, so `find_groups` reads each image once, not once per run.

Hashing the 192,556 Airbus images takes ~20 minutes; their hashes take up to ~75 MB. The cache is one
SQLite file (stdlib, no pickle): a row per (image file, hashing parameters) holding the file's
size and modification time (ns) when it was hashed, its tiles' hashes and a checksum.

- A row is used only when the file's size and mtime are unchanged and the parameters (hash
  size, grid, thresholds, version, image shape) are equal: an edited image or a changed
  algorithm is hashed anew, never answered from stale hashes.
- A row whose checksum or layout does not match (bit rot, a truncated write) is a miss, so a
  damaged cache can cost time but never give a wrong hash. A damaged cache file SQLite cannot
  read is replaced by an empty cache, with a warning; a file that is not recognisably a cache
  (a user's text file, another program's database) is never touched: the run goes on without.
- The cache is optional: a location that cannot be created or written warns once and the run
  goes on without (or without writing to) it.
- Several processes may share it: SQLite's write-ahead log lets readers work while one writes,
  and writers wait for each other (`BUSY_SECONDS`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

TABLE_PREFIX = "tile_hashes_"  # what makes a file recognisably our cache (`foreign_file`)
TABLE = f"{TABLE_PREFIX}v1"  # the row layout's version: a new layout gets a new table, old rows are ignored
NONE_TILE = 0xFF  # the length byte of an uninformative tile (None); real hashes are shorter
BUSY_SECONDS = 60.0  # how long a writer waits for another process's write to finish
TURN_OFF = "set data.group_cache to a writable file, or to \"\" to turn the cache off"

Tiles = list[bytes | None]


class FileKey(NamedTuple):
    """What identifies one version of an image file: its resolved path, size and mtime."""

    path: str
    size: int
    mtime_ns: int


def file_key(path: str | os.PathLike) -> FileKey | None:
    """The file's key, or None when it cannot be stat'ed (it is then read, and its error raised, as usual)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return FileKey(os.fspath(path), stat.st_size, stat.st_mtime_ns)


def encode_tiles(tiles: Sequence[bytes | None]) -> bytes:
    """Each tile as a length byte and its hash; NONE_TILE alone for None."""
    out = bytearray()
    for tile in tiles:
        if tile is None:
            out.append(NONE_TILE)
        elif len(tile) >= NONE_TILE:
            raise ValueError(f"tile hashes must be shorter than {NONE_TILE} bytes; got {len(tile)}")
        else:
            out.append(len(tile))
            out += tile
    return bytes(out)


def decode_tiles(blob: bytes) -> Tiles | None:
    """The tiles `encode_tiles` wrote, or None when the blob is not a whole encoding."""
    tiles: Tiles = []
    at = 0
    while at < len(blob):
        size = blob[at]
        if size == NONE_TILE:
            tiles.append(None)
            at += 1
            continue
        if at + 1 + size > len(blob):
            return None
        tiles.append(bytes(blob[at + 1:at + 1 + size]))
        at += 1 + size
    return tiles


def _checksum(key: FileKey, params: str, blob: bytes) -> int:
    return zlib.crc32(f"{key.path}\0{key.size}\0{key.mtime_ns}\0{params}\0".encode() + blob)


class TileHashCache:
    """Tile hashes of image files, for one set of hashing `params`; `path` None: no cache at all.

    Use as a context manager. `lookup` and `store` never raise for a cache problem: they warn
    once and carry on without the cache, so a run's result never depends on it.
    """

    def __init__(self, path: str | os.PathLike | None, params: str, tiles_per_image: int) -> None:
        self.path = Path(path).expanduser() if path is not None else None
        self.params = params
        self.tiles_per_image = tiles_per_image
        self.hits = self.misses = 0
        self._db: sqlite3.Connection | None = None
        self._writable = False
        self._warned_rows = False
        if self.path is not None:
            self._open()

    def __enter__(self) -> TileHashCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- opening ------------------------------------------------------------------------
    def _open(self) -> None:
        foreign = foreign_file(self.path)
        if foreign:  # a user's file at data.group_cache: never turned into (or mixed with) a cache
            warnings.warn(f"{self.path} {foreign}: it is left untouched, and images are hashed without a cache "
                          f"({TURN_OFF}).", stacklevel=4)
            return
        try:
            self._connect()
        except sqlite3.DatabaseError as exc:
            if _is_corrupt(exc):
                warnings.warn(f"Tile-hash cache {str(self.path)!r} is damaged ({exc}): starting it anew.",
                              stacklevel=4)
                self._rebuild()
            else:
                self._give_up(exc)
        except OSError as exc:
            self._give_up(exc)

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=BUSY_SECONDS)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")  # readers are not blocked while another process writes
        except sqlite3.OperationalError:
            pass  # a read-only file or a file system without shared memory: the default journal works too
        # No fsync per commit (with WAL, a power cut loses the last commits but corrupts nothing): on a
        # busy disk each fsync stalled a run for up to a second, more than its hashing saved.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (path TEXT NOT NULL, params TEXT NOT NULL, "
                         "size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, tiles BLOB NOT NULL, "
                         "checksum INTEGER NOT NULL, PRIMARY KEY (path, params)) WITHOUT ROWID")
        self._db.commit()
        self._writable = True

    def _rebuild(self) -> None:
        self.close()
        try:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self._connect()
        except (OSError, sqlite3.Error) as exc:
            self._give_up(exc)

    def _give_up(self, exc: Exception) -> None:
        warnings.warn(f"Tile-hash cache {str(self.path)!r} cannot be used ({exc}); images are hashed without it "
                      f"({TURN_OFF}).", stacklevel=5)
        self.close()

    # -- use ----------------------------------------------------------------------------
    def lookup(self, keys: Sequence[FileKey | None]) -> list[Tiles | None]:
        """The cached tiles of each file (None: not cached, changed since, or unreadable)."""
        found: list[Tiles | None] = [None] * len(keys)
        wanted = sorted({k.path for k in keys if k is not None})
        if self._db is not None and wanted:
            try:
                rows = self._db.execute(
                    f"SELECT path, size, mtime_ns, tiles, checksum FROM {TABLE} WHERE params = ? AND path IN "
                    f"({','.join('?' * len(wanted))})", [self.params, *wanted]).fetchall()
            except sqlite3.DatabaseError as exc:
                rows = []
                self._failed("read", exc)
            by_path = {row[0]: row[1:] for row in rows}
            for i, key in enumerate(keys):
                if key is not None and key.path in by_path:
                    found[i] = self._tiles_of(key, *by_path[key.path])
        self.hits += sum(f is not None for f in found)
        self.misses += sum(f is None for f in found)
        return found

    def _tiles_of(self, key: FileKey, size: int, mtime_ns: int, blob: bytes, checksum: int) -> Tiles | None:
        if (size, mtime_ns) != (key.size, key.mtime_ns):
            return None  # the file changed since it was hashed
        tiles = decode_tiles(blob) if _checksum(key, self.params, blob) == checksum else None
        if tiles is None or len(tiles) != self.tiles_per_image:
            if not self._warned_rows:
                warnings.warn(f"Tile-hash cache {str(self.path)!r} has damaged entries (e.g. for {key.path!r}): "
                              "those images are hashed again.", stacklevel=4)
                self._warned_rows = True
            return None
        return tiles

    def store(self, items: Sequence[tuple[FileKey, Tiles]]) -> None:
        """Remember the tiles of these file versions (replacing what was there), in one transaction."""
        if self._db is None or not self._writable or not items:
            return
        rows = []
        for key, tiles in items:
            blob = encode_tiles(tiles)
            rows.append((key.path, self.params, key.size, key.mtime_ns, blob, _checksum(key, self.params, blob)))
        try:
            with self._db:
                self._db.executemany(f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?)", rows)
        except sqlite3.DatabaseError as exc:
            self._failed("write", exc)

    def _failed(self, action: str, exc: sqlite3.DatabaseError) -> None:
        """A read or write went wrong mid-run: start a damaged file anew, else stop using the cache."""
        if _is_corrupt(exc):
            warnings.warn(f"Tile-hash cache {str(self.path)!r} is damaged ({exc}): starting it anew.", stacklevel=4)
            self._rebuild()
        elif action == "write":  # read-only file, disk full, a lock held too long: keep reading what is there
            warnings.warn(f"Tile-hash cache {str(self.path)!r} cannot be written ({exc}); new hashes are not kept "
                          f"({TURN_OFF}).", stacklevel=4)
            self._writable = False
        else:
            self._give_up(exc)


def foreign_file(path: Path) -> str | None:
    """Why the file at `path` is not one this cache may use or replace (None: absent, empty, or our cache).

    Our cache is an SQLite file whose tables are ours (or that has none yet); a damaged one is
    still recognised by its SQLite header and our table's name. Anything else (a text file, another
    program's database) is someone else's.
    """
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return None  # absent, or not a file: opening it says what is wrong
        with open(path, "rb") as file:
            head = file.read(1 << 16)
    except OSError:
        return None
    if not head.startswith(b"SQLite format 3\x00"):
        return "is not a tile-hash cache written by shiptoolkit (it is no SQLite file)"
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=BUSY_SECONDS)) as db:  # reading changes nothing
            tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    except sqlite3.DatabaseError:  # damaged: ours only if our table's name is still there to see
        wal = Path(f"{path}-wal")
        ours = TABLE_PREFIX.encode() in head or (wal.is_file() and TABLE_PREFIX.encode() in wal.read_bytes()[:1 << 16])
        return None if ours else "is a damaged SQLite file that is not a tile-hash cache written by shiptoolkit"
    theirs = [t for t in tables if not t.startswith(TABLE_PREFIX)]
    if theirs and len(theirs) == len(tables):
        return (f"is an SQLite database of something else (tables {', '.join(theirs[:3])}), not a tile-hash cache "
                "written by shiptoolkit")
    return None


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    return getattr(exc, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB")
