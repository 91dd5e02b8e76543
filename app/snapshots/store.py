"""Content-addressed storage of resources: documents, chunks and manifests, each stored once.

A source's resources are written as three levels of documents, each kept once under the
SHA-256 of its canonical JSON:

- one **attributes document** per distinct attribute tree;
- **chunks**: the source's resources sorted by identity, each row
  `[category, resource_type, key, attributes_hash]`, cut where the hash of an identity
  says so (content-defined), so adding or changing one resource rewrites one chunk;
- one **manifest** per source: the list of its chunk hashes.

A source that collected exactly what it collected last time writes nothing at all (its
manifest exists), and one changed resource costs one attributes document, one chunk
and one manifest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.db.models import Document, Evaluation, NormalForms, SnapshotSource
from app.db.upsert import insert_or_ignore
from app.diff.forms import Form, FormMaker
from app.snapshots.canonical import canonical_json, content_hash

# A chunk ends after an identity whose hash is 0 modulo this: 64 rows on average.
_CUT_MODULUS = 64
_MAX_CHUNK = 512
_BATCH = 5000
_BATCH_CHARS = 2 << 20  # characters of documents written in one statement
_FORM_CHUNKS = 200  # chunks whose forms are made and written in one statement
T = TypeVar("T")


@dataclass
class StoredResource:
    """A stored resource; its attributes are decoded from `body` only when asked for."""

    category: str
    resource_type: str
    key: str
    hash: str  # of the canonical attributes document
    body: str  # the canonical attributes document itself

    @cached_property
    def attributes(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


Row = tuple[str, str, str, str]  # category, resource_type, key, attributes hash
Resource = tuple[str, str, str, dict[str, Any]]  # category, resource_type, key, attributes


@dataclass(frozen=True)
class Encoded:
    """A resource to store with its canonical attributes document and that document's
    hash, worked out once for both its normal form and its write."""

    category: str
    resource_type: str
    key: str
    attributes: dict[str, Any]
    body: str
    digest: str


class Staged(Protocol):
    """A source's resources on their way to storage: their rows, and their attribute
    documents (canonical bodies, or decoded) by content hash."""

    rows: list[Row]

    def bodies(self, hashes: set[str]) -> Iterable[tuple[str, str]]: ...

    def documents(self, hashes: set[str]) -> Mapping[str, Any]: ...


class InMemory:
    """Encoded resources, held whole (a scan's)."""

    def __init__(self, resources: Sequence[Encoded]) -> None:
        self.resources = resources
        self.rows = [(r.category, r.resource_type, r.key, r.digest) for r in resources]

    def bodies(self, hashes: set[str]) -> Iterator[tuple[str, str]]:
        for r in self.resources:
            if r.digest in hashes:
                yield r.digest, r.body

    def documents(self, hashes: set[str]) -> dict[str, Any]:
        return {r.digest: r.attributes for r in self.resources if r.digest in hashes}


def encode(resources: Iterable[Resource]) -> list[Encoded]:
    out = []
    for category, resource_type, key, attributes in resources:
        body = canonical_json(attributes)
        out.append(Encoded(category, resource_type, key, attributes, body, content_hash(body)))
    return out


def _cut_here(resource_type: str, key: str) -> bool:
    digest = hashlib.blake2b(f"{resource_type}\0{key}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % _CUT_MODULUS == 0


def _chunks(rows: list[Row]) -> list[list[Row]]:
    out: list[list[Row]] = []
    current: list[Row] = []
    for row in rows:
        current.append(row)
        if len(current) >= _MAX_CHUNK or _cut_here(row[1], row[2]):
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


class DocumentStore:
    """Reads and writes content-addressed documents within the caller's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _in(self, column: str, batch: list[str]) -> tuple[str, tuple[Any, ...]]:
        """`column IN (?, ?, ...)` and its parameters on SQLite; on PostgreSQL one array
        parameter, `column = ANY(%s)`: the same statement text for every batch, so the server
        does not parse a new statement of thousands of placeholders each time."""
        if self.session.connection().dialect.name == "postgresql":
            return f"{column} = ANY(%s)", (batch,)
        return f"{column} IN ({', '.join(['?'] * len(batch))})", tuple(batch)

    def _select(self, columns: str, hashes: list[str]) -> Iterator[Sequence[Any]]:
        """`SELECT columns FROM documents WHERE hash IN (...)`, in batches, straight to the
        driver: thousands of bound values are not worth SQLAlchemy compiling each one."""
        connection = self.session.connection()
        for batch in batched(hashes):
            where, values = self._in("hash", batch)
            statement = f"SELECT {columns} FROM documents WHERE {where}"
            yield from connection.exec_driver_sql(statement, values)

    def existing(self, hashes: Iterable[str]) -> set[str]:
        return {row[0] for row in self._select("hash", list(hashes))}

    def put(self, documents: dict[str, str]) -> int:
        """Inserts the documents not stored yet; returns how many were new."""
        missing = set(documents) - self.existing(documents)
        if not missing:
            return 0
        connection = self.session.connection()
        # Straight to the driver's executemany, as `_select` reads: a push writes a hundred
        # thousand documents, and SQLAlchemy compiling a statement per row of them cost
        # about as much as the database writing them. Another writer may store the same
        # document at the same moment: same content, so the second insert is skipped.
        if connection.dialect.name == "postgresql":
            statement = "INSERT INTO documents (hash, body) VALUES (%s, %s) ON CONFLICT DO NOTHING"
        else:
            statement = "INSERT OR IGNORE INTO documents (hash, body) VALUES (?, ?)"
        rows = [(h, documents[h]) for h in sorted(missing)]
        for batch in batched(rows):
            connection.exec_driver_sql(statement, batch)
        return len(missing)

    def get(self, hashes: Iterable[str]) -> dict[str, str]:
        return {row[0]: row[1] for row in self._select("hash, body", sorted(set(hashes)))}

    def write_manifest(
        self, resources: Iterable[Resource], forms: FormMaker | None = None
    ) -> tuple[str, int]:
        """Stores one source's resources, and their normal forms under `forms`' context;
        returns the manifest hash and the resource count."""
        return self.write_encoded(encode(resources), forms)

    def write_encoded(
        self, resources: Sequence[Encoded], forms: FormMaker | None = None
    ) -> tuple[str, int]:
        """`write_manifest` for resources already encoded."""
        return self.write_staged(InMemory(resources), forms)

    def write_staged(self, staged: Staged, forms: FormMaker | None = None) -> tuple[str, int]:
        """`write_manifest` for a source's rows whose documents `staged` gives."""
        rows = sorted(staged.rows, key=lambda r: (r[1], r[2], r[0]))
        chunk_bodies = {}
        chunk_rows: dict[str, list[Row]] = {}
        for chunk in _chunks(rows):
            body = canonical_json(chunk)
            digest = content_hash(body)
            chunk_bodies[digest] = body
            chunk_rows[digest] = chunk
        manifest_body = canonical_json({"chunks": list(chunk_bodies), "count": len(rows)})
        manifest_hash = content_hash(manifest_body)
        if forms is not None:
            self.ensure_forms(
                forms, chunk_rows, staged.documents, keep=False, written=staged.bodies
            )
        if self.existing([manifest_hash]):
            return manifest_hash, len(rows)
        new_chunks = set(chunk_bodies) - self.existing(chunk_bodies)
        needed = {row[3] for digest in new_chunks for row in chunk_rows[digest]}
        # Attribute documents first, then chunks, then the manifest: whatever is stored
        # is complete, so a stored manifest or chunk proves everything below it exists.
        for batch in _batches(staged.bodies(needed)):
            self.put(batch)
        self.put({h: chunk_bodies[h] for h in new_chunks})
        self.put({manifest_hash: manifest_body})
        return manifest_hash, len(rows)

    # ------------------------------------------------------------------ normal forms
    def forms(self, context: str, chunks: Sequence[str]) -> dict[str, list[Form]]:
        """The stored normal forms of the given chunks under one context, by chunk."""
        return {
            chunk: [Form(k, d, p == 1) for k, d, p in rows]
            for chunk, rows in self.form_rows(context, chunks).items()
        }

    def form_rows(self, context: str, chunks: Sequence[str]) -> dict[str, list[list[Any]]]:
        """`forms` as stored: each chunk's `[normalized key, digest, 0 or 1]` lists."""
        return {
            chunk: json.loads(body) for chunk, body in self._forms("chunk, body", context, chunks)
        }

    def _forms(self, columns: str, context: str, chunks: Sequence[str]) -> Iterator[Sequence[Any]]:
        """`SELECT columns FROM normal_forms` of the given chunks under one context, in
        batches, straight to the driver (as `_select`)."""
        connection = self.session.connection()
        marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
        for batch in batched(sorted(set(chunks))):
            where, values = self._in("chunk", batch)
            statement = f"SELECT {columns} FROM normal_forms WHERE context = {marker} AND {where}"
            yield from connection.exec_driver_sql(statement, (context, *values))

    def ensure_forms(
        self,
        maker: FormMaker,
        chunk_rows: Mapping[str, Sequence[Row]],
        documents: Callable[[set[str]], Mapping[str, Any]],
        keep: bool = True,
        written: Callable[[set[str]], Iterable[tuple[str, str]]] | None = None,
    ) -> dict[str, list[Form]]:
        """The normal forms of the given chunks under `maker`'s context: those stored, and
        the others worked out and stored (`documents` gives the attributes of the resources
        they list, by content hash); only those stored before unless `keep`. Another writer
        storing the same forms at the same moment is harmless.

        The normalized documents of the plain forms stored here are stored too, as
        documents under their digests: those the maker holds (`made`), and those `written`
        gives (a push spools them as it reads)."""
        context = maker.context.digest
        found = self.forms(context, list(chunk_rows))
        missing = {chunk: rows for chunk, rows in chunk_rows.items() if chunk not in found}
        if not missing:
            return found
        # Documents whose forms the maker already knows (worked out as they were stored) are
        # not read again.
        unknown = {row[3] for rows in missing.values() for row in rows if not maker.knows(row[3])}
        docs = documents(unknown) if unknown else {}
        statement = insert_or_ignore(self.session, NormalForms)
        elsewhere: set[str] = set()  # normalized documents to store that the maker let go
        # Made and written a few hundred chunks at a time: a push of a million resources
        # never holds all their forms (or normalized documents) at once.
        for names in batched(sorted(missing), _FORM_CHUNKS):
            new = {
                chunk: [maker.form(row[2], row[3], docs.get(row[3])) for row in missing[chunk]]
                for chunk in names
            }
            values = [
                {
                    "context": context,
                    "chunk": chunk,
                    "body": canonical_json([[f.key, f.digest, int(f.plain)] for f in forms]),
                }
                for chunk, forms in new.items()
            ]
            self.session.execute(statement, values)
            wanted = {f.digest for forms in new.values() for f in forms if f.plain}
            here = wanted & maker.made.keys()
            self.put({digest: maker.made.pop(digest) for digest in here})
            elsewhere |= wanted - here
            if keep:
                found.update(new)
        if written is not None and elsewhere:
            for batch in _batches(written(elsewhere)):
                self.put(batch)
        return found

    def chunk_lists(self, manifests: Sequence[str]) -> dict[str, list[str]]:
        """Each manifest's chunk hashes, in order."""
        bodies = self.get(manifests)
        return {h: json.loads(bodies[h])["chunks"] for h in manifests}

    def chunk_batches(self, chunks: Sequence[str]) -> Iterator[list[tuple[str, list[Row]]]]:
        """The rows of the given chunks (no attributes read), in order, a few hundred chunks
        at a time: a side of a million resources is never all decoded rows at once. (Each
        row stays the list JSON decoded it to: indexed as a Row, never compared.)"""
        for batch in batched(list(chunks), _FORM_CHUNKS):
            bodies = self.get(batch)
            yield [(chunk, json.loads(bodies[chunk])) for chunk in batch]

    def formed(self, context: str, chunks: Sequence[str]) -> set[str]:
        """Those of the given chunks whose normal forms under `context` are stored."""
        return {row[0] for row in self._forms("chunk", context, chunks)}

    def make_forms(self, maker: FormMaker, chunks: Sequence[str]) -> None:
        """Works out and stores, a few hundred chunks at a time, the normal forms under
        `maker`'s context of the given chunks that have none (stored under other vars or
        rules, or before forms were)."""
        missing = sorted(set(chunks) - self.formed(maker.context.digest, chunks))
        for batch in self.chunk_batches(missing):
            self.ensure_forms(maker, dict(batch), self.attributes, keep=False)

    def attributes(self, hashes: Iterable[str]) -> dict[str, Any]:
        """Decoded attribute documents by content hash."""
        return {h: json.loads(body) for h, body in self.get(hashes).items()}

    def read_manifests(self, manifests: Sequence[str]) -> dict[str, list[StoredResource]]:
        """The resources listed by each manifest, attributes included."""
        manifest_bodies = self.get(manifests)
        chunk_lists = {h: json.loads(manifest_bodies[h])["chunks"] for h in manifests}
        chunk_bodies = self.get(h for chunks in chunk_lists.values() for h in chunks)
        rows_by_chunk = {h: json.loads(body) for h, body in chunk_bodies.items()}
        attribute_hashes = {row[3] for rows in rows_by_chunk.values() for row in rows}
        bodies = self.get(attribute_hashes)
        out: dict[str, list[StoredResource]] = {}
        for manifest, chunks in chunk_lists.items():
            out[manifest] = [
                StoredResource(row[0], row[1], row[2], row[3], bodies[row[3]])
                for chunk in chunks
                for row in rows_by_chunk[chunk]
            ]
        return out


def _batches(pairs: Iterable[tuple[str, str]]) -> Iterator[dict[str, str]]:
    """Documents by hash, read from `pairs` as they come: `_BATCH` at a time, or fewer when
    they are large (about `_BATCH_CHARS`)."""
    batch: dict[str, str] = {}
    size = 0
    for digest, body in pairs:
        batch[digest] = body
        size += len(body)
        if len(batch) >= _BATCH or size >= _BATCH_CHARS:
            yield batch
            batch = {}
            size = 0
    if batch:
        yield batch


def batched(items: list[T], size: int = _BATCH) -> Iterator[list[T]]:
    """Slices of at most `size` (5,000): what one statement's IN list or executemany is
    given."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def collect_garbage(session: Session) -> int:
    """Deletes every document no manifest, chunk, normal form or stored report refers to any
    more (a removed snapshot's, or what a rescrub replaced)."""
    store = DocumentStore(session)
    manifests = {m for m in session.scalars(select(SnapshotSource.manifest)) if m is not None}
    reachable = set(manifests)
    manifest_bodies = store.get(manifests)
    chunks = {h for body in manifest_bodies.values() for h in json.loads(body)["chunks"]}
    reachable |= chunks
    for body in store.get(chunks).values():
        reachable.update(row[3] for row in json.loads(body))
    for report, resources in session.execute(select(Evaluation.report, Evaluation.resources)):
        reachable.update((report, resources))
    # The normalized documents of the plain forms of chunks that stay.
    for chunk, body in session.execute(select(NormalForms.chunk, NormalForms.body)):
        if chunk in chunks:
            reachable.update(digest for _, digest, plain in json.loads(body) if plain)
    every = set(session.scalars(select(Document.hash)))
    garbage = sorted(every - reachable)
    for batch in batched(garbage):
        session.execute(delete(Document).where(Document.hash.in_(batch)))
    # Normal forms go with their chunk.
    formed = set(session.scalars(select(NormalForms.chunk).distinct()))
    for batch in batched(sorted(formed - chunks)):
        session.execute(delete(NormalForms).where(NormalForms.chunk.in_(batch)))
    return len(garbage)
