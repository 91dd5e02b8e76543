"""The normal forms (app.diff.forms) of an environment's stored resources: made when its
snapshot is stored, read when a comparison with another environment loads it, and made
there, once, for what was stored under other vars or rules."""

from __future__ import annotations

from app.config import Config
from app.db.models import Snapshot
from app.diff.forms import FormMaker, context_for
from app.diff.heap import cycle_collection_paused
from app.diff.model import ResourceColumns
from app.snapshots.repository import SourceRecord
from app.snapshots.store import DocumentStore
from collectors import registry


class EnvironmentForms:
    """Makes one environment's normal forms, one maker per source type (the types differ
    in their volatile paths)."""

    def __init__(self, config: Config, environment: str) -> None:
        self.environment = environment
        self.environments = {name: dict(env.vars) for name, env in config.environments.items()}
        self.vars = dict(vars_of(config, environment))
        self._makers: dict[str, FormMaker] = {}

    def maker(self, source_type: str) -> FormMaker:
        maker = self._makers.get(source_type)
        if maker is None:
            volatile = volatile_paths(source_type)
            context = context_for(self.environments, self.environment, self.vars, volatile)
            maker = self._makers[source_type] = FormMaker(context)
        return maker

    def prepare(self, records: list[SourceRecord]) -> EnvironmentForms:
        """Works out the forms of these records' resources ahead, outside any transaction:
        storing them then only writes what is already known."""
        for record in records:
            maker = self.maker(record.type)
            for r in record.encoded:
                maker.form(r.key, r.digest, r.attributes)
        return self


def volatile_paths(source_type: str) -> tuple[str, ...]:
    """The attribute paths of a source type that change on their own; none for a type no
    collector has (only that type's own module is imported)."""
    cls = registry.find(source_type)
    return tuple(cls.volatile_paths) if cls is not None else ()


def vars_of(config: Config, environment: str) -> dict[str, str]:
    """An environment's vars: as declared, or only its name for one no longer declared."""
    declared = config.environments.get(environment)
    return dict(declared.vars) if declared else {"env": environment}


def stored_resources(
    store: DocumentStore, snapshot: Snapshot, forms: EnvironmentForms | None
) -> tuple[ResourceColumns, dict[str, str]]:
    """A snapshot's resources as the engine takes them, without their attributes (the
    engine fetches what it must compare), with their normal forms when `forms` is given;
    and, by source, the digest of the context those forms were made under. Made with the
    cyclic collector paused: a side of a million resources is several million objects in
    no cycle, and the collector's full passes over a heap growing by them took 14 s of a
    45 s diff at a million per side."""
    with cycle_collection_paused():
        return _stored_resources(store, snapshot, forms)


def _stored_resources(
    store: DocumentStore, snapshot: Snapshot, forms: EnvironmentForms | None
) -> tuple[ResourceColumns, dict[str, str]]:
    sources = [(s.name, s.type, s.manifest) for s in snapshot.sources if s.manifest]
    chunk_lists = store.chunk_lists(sorted({manifest for _, _, manifest in sources}))
    resources = ResourceColumns(with_forms=forms is not None)
    contexts: dict[str, str] = {}
    # A side's categories and resource types are a handful of strings, each decoded once per
    # row: one copy of each is kept (a million rows, two strings each, about 120 MB saved).
    names: dict[str, str] = {}
    one = names.setdefault
    for name, source_type, manifest in sources:
        chunks = chunk_lists[manifest]
        if forms is None:
            for batch in store.chunk_batches(chunks):
                for _, rows in batch:
                    resources.extend(name, rows, one)
            continue
        maker = forms.maker(source_type)
        context = contexts[name] = maker.context.digest
        store.make_forms(maker, chunks)
        for batch in store.chunk_batches(chunks):
            by_chunk = store.form_rows(context, [chunk for chunk, _ in batch])
            for chunk, rows in batch:
                resources.extend_formed(name, rows, by_chunk[chunk], one)
    return resources, contexts
