"""Rows of the bulk tables (commits, shipped-commit links) encoded for the database in one pass.

A local-git ingest writes 10⁵ commits and as many links. Going through the general write path
(a dict per row, a column per field, each value through its type's bind processor, then the
driver's own per-value dumping) cost more Python time than reading the commits from git; here
each row is turned into what the database receives directly:

- PostgreSQL: the stream of a `COPY … FROM STDIN (FORMAT BINARY)`, in the binary format the
  COPY reference documents ("Binary Format"): a signature and header, then per row a 16-bit
  field count and each field as a 32-bit length (-1 for NULL) and its bytes; a 16-bit -1 ends
  it. Values take the binary form of their column type: `bigint` 8 bytes big-endian,
  `varchar`/`text`/`json` their UTF-8 text, `timestamptz` 8 bytes of microseconds since
  2000-01-01 UTC. The stored values are the ones psycopg's own binary dumpers send for the
  same row (tests compare the two).
- SQLite: the parameter tuples of an executemany, with times as the naive-UTC text SQLAlchemy
  stores (`insights.store.repository._sqlite_utc`) and parents as their JSON text.

Rows are `insights.model.CommitRow` tuples, already valid (see `CommitRows`).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable, Sequence

from insights.model import CommitRow

COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
COPY_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_PG_EPOCH = 946_684_800  # 2000-01-01T00:00:00Z in Unix seconds: where PostgreSQL's times count
_length = struct.Struct("!i").pack

# the COPY column lists the streams below are written for
COMMIT_COLUMNS = (
    "tenant_id",
    "service_id",
    "sha",
    "authored_at",
    "committed_at",
    "author",
    "message",
    "parents",
)
LINK_COLUMNS = ("tenant_id", "deployment_id", "sha")


def parents_json(parents: bytes) -> bytes:
    """The JSON text of git's `%P` (parent shas separated by one space), as `json.dumps`
    writes the list of them (nothing in a hex sha needs escaping)."""
    return b'["' + parents.replace(b" ", b'", "') + b'"]' if parents else b"[]"


def postgres_commits(tenant_id: int, service_id: int, rows: Iterable[CommitRow]) -> bytes:
    """The binary COPY stream of `rows` for the columns `COMMIT_COLUMNS`."""
    head = struct.pack("!hiqiq", len(COMMIT_COLUMNS), 8, tenant_id, 8, service_id)
    # the sha and both times in one pack: (length, sha, 8, authored µs, 8, committed µs)
    leads: dict[int, Callable[..., bytes]] = {}
    parts = [COPY_SIGNATURE]
    add = parts.extend
    for sha, parents, author, authored, committed, message in rows:
        lead = leads.get(len(sha))
        if lead is None:
            lead = leads[len(sha)] = struct.Struct(f"!i{len(sha)}siqiq").pack
        parents_text = parents_json(parents)
        add(
            (
                head,
                lead(
                    len(sha),
                    sha,
                    8,
                    (authored - _PG_EPOCH) * 1_000_000,
                    8,
                    (committed - _PG_EPOCH) * 1_000_000,
                ),
                _NULL if author is None else _length(len(author)) + author,
                _NULL if message is None else _length(len(message)) + message,
                _length(len(parents_text)),
                parents_text,
            )
        )
    parts.append(COPY_TRAILER)
    return b"".join(parts)


def postgres_links(tenant_id: int, links: Iterable[tuple[int, Sequence[str]]]) -> bytes:
    """The binary COPY stream for the columns `LINK_COLUMNS` of each (deployment id, shas)."""
    parts = [COPY_SIGNATURE]
    add = parts.extend
    for deployment_id, shas in links:
        head = struct.pack("!hiqiq", len(LINK_COLUMNS), 8, tenant_id, 8, deployment_id)
        for sha in shas:
            sha_bytes = sha.encode()
            add((head, _length(len(sha_bytes)), sha_bytes))
    parts.append(COPY_TRAILER)
    return b"".join(parts)


def sqlite_time(seconds: int) -> str:
    """A Unix time as SQLAlchemy stores an aware time in SQLite: naive UTC text with
    microseconds (`_sqlite_utc(datetime.fromtimestamp(seconds, UTC))`)."""
    return "%04d-%02d-%02d %02d:%02d:%02d.000000" % time.gmtime(seconds)[:6]  # noqa: UP031


def sqlite_commits(
    tenant_id: int, service_id: int, rows: Iterable[CommitRow]
) -> list[tuple[object, ...]]:
    """Parameter tuples for (service_id, sha, authored_at, committed_at, author, message,
    parents, tenant_id)."""
    return [
        (
            service_id,
            sha.decode(),
            sqlite_time(authored),
            sqlite_time(committed),
            None if author is None else author.decode(),
            None if message is None else message.decode(),
            parents_json(parents).decode(),
            tenant_id,
        )
        for sha, parents, author, authored, committed, message in rows
    ]
