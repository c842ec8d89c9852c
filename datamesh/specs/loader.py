"""Load every domain's ``products.yaml`` into validated, frozen :class:`DataProduct` values.

A domain folder holds only declarations: ``products.yaml``, the ``.avsc`` schemas it names and
``.sql`` files of processors. Anything wrong raises :class:`SpecError` naming the file, the field,
the line and the fix — at definitions load, not when a pipeline runs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from datamesh.avro_schema import parse_record
from datamesh.errors import SpecError
from datamesh.specs.declaration import CleanupPolicy, DomainDecl, ProductDecl
from datamesh.specs.durations import parse_duration, retention_ms
from datamesh.specs.problems import first_error, problem_of
from datamesh.specs.processors import as_mapping
from datamesh.specs.product import CdcSource, DataProduct, SinkSettings, Slo, TopicSettings
from datamesh.specs.rules import Located, check_all
from datamesh.specs.source_map import SourceMap, field_path

DECLARATION_FILE = "products.yaml"
# libyaml when PyYAML was built with it (same results, line marks included), else pure Python
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_products(domains_dir: Path) -> tuple[DataProduct, ...]:
    """Load and validate all domains under ``domains_dir`` (one folder per domain)."""
    files = sorted(domains_dir.glob(f"*/{DECLARATION_FILE}"))
    if not files:
        raise SpecError(
            str(domains_dir),
            "domains",
            "no domain declarations found",
            f"create {domains_dir}/<domain>/{DECLARATION_FILE}",
        )
    source_map = SourceMap()
    located: list[Located] = []
    for file in files:
        decl = _read_domain(file, source_map)
        for index, product in enumerate(decl.products):
            located.append(Located(_resolve(file, decl, index, product, source_map), file, index))
    check_all(located, source_map)
    return settle_sinks(tuple(item.product for item in located))


def settle_sinks(products: tuple[DataProduct, ...]) -> tuple[DataProduct, ...]:
    """Sinks with their key (declared, else the input's) and mode (upsert when keyed)."""
    by_id = {p.id: p for p in products}
    return tuple(_settle(p, by_id) for p in products)


def _settle(p: DataProduct, by_id: dict[str, DataProduct]) -> DataProduct:
    if not p.is_sink or p.sink is None:
        return p
    key = p.key or by_id[p.inputs[0]].key
    mode = p.sink.mode or ("upsert" if key else "append")
    table = p.sink.table or f"public.{p.name}"
    return replace(p, key=key, sink=replace(p.sink, mode=mode, table=table))


def _read_domain(file: Path, source_map: SourceMap) -> DomainDecl:
    text = file.read_text()
    try:
        root, data = _parse(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = f"not valid YAML: {exc}"
        raise SpecError(str(file), "(yaml)", problem, "fix the syntax", line) from None
    if root is None or not isinstance(data, dict):
        raise SpecError(
            str(file),
            "(top level)",
            "expected a mapping with domain, owners and products",
            "see mesh_assets/domains/studio/products.yaml",
            1,
        )
    source_map.add(file, root)
    try:
        decl = DomainDecl.model_validate(data)
    except ValidationError as exc:
        raise _spec_error(file, exc, source_map) from None
    if decl.domain != file.parent.name:
        raise SpecError(
            str(file),
            "domain",
            f"domain {decl.domain!r} is declared in folder {file.parent.name!r}",
            "name the folder after the domain",
            source_map.line(file, ["domain"]),
        )
    return decl


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data, from one libyaml parse: composing and
    loading with the pure-Python loader parsed each file twice, a fifth of the definitions load
    time of 1,000 products (bench area control_plane)."""
    loader = _LOADER(text)
    try:
        root = loader.get_single_node()
        return root, loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()


def _spec_error(file: Path, exc: ValidationError, source_map: SourceMap) -> SpecError:
    loc, problem, fix = problem_of(first_error(exc.errors()), DomainDecl)
    return SpecError(str(file), field_path(loc), problem, fix, source_map.line(file, loc))


def _resolve(
    file: Path, decl: DomainDecl, index: int, p: ProductDecl, source_map: SourceMap
) -> DataProduct:
    loc: list[str | int] = ["products", index]
    schema = _read_schema(file, p, loc, source_map) if p.schema_file else None
    sql = _read_file(file, p.sql, [*loc, "sql"], source_map) if p.sql else None
    source = None
    if p.source:
        table_schema, table = p.source.table.split(".", 1)
        source = CdcSource(p.source.database, table_schema, table)
    return DataProduct(
        domain=decl.domain,
        name=p.name,
        kind=p.kind,
        description=p.description,
        owners=tuple(p.owners if p.owners is not None else decl.owners),
        access=p.access,
        tier=p.tier,
        slo=_slo(p),
        key=tuple(p.key),
        inputs=tuple(p.inputs),
        value_schema=schema,
        topic=_topic(p),
        compatibility=p.compatibility,
        declared_in=file,
        source=source,
        sql=sql,
        consumes={k: tuple(v) for k, v in p.consumes.items()},
        tags=dict(p.tags),
        sql_file=file.parent / p.sql if p.sql else None,
        processor=as_mapping(p.processor) if p.processor else None,
        flink=p.flink.model_dump(),
        sink=_sink(p),
        allow=tuple(p.allow),
        retired=p.retired,
        repair=p.repair,
        audit_every=parse_duration(p.audit.every) if p.audit else None,
        heartbeat=parse_duration(p.heartbeat.every) if p.heartbeat else None,
    )


def _sink(p: ProductDecl) -> SinkSettings | None:
    """The declared sink settings (mode and table settled once all products are known)."""
    if p.kind not in ("iceberg_sink", "postgres_sink"):
        return None if p.sink is None else SinkSettings(mode="upsert")  # refused by the rules
    d = p.sink
    if d is None:
        return SinkSettings(mode=None)  # type: ignore[arg-type]
    return SinkSettings(
        mode=d.mode,  # type: ignore[arg-type]
        partition_by=tuple(d.partition_by),
        on_bad_record=d.on_bad_record,
        database=d.database or "serving",
        table=d.table or "",
    )


def _slo(p: ProductDecl) -> Slo:
    if p.slo is None:
        return Slo()
    freshness = parse_duration(p.slo.freshness) if p.slo.freshness else None
    latency = parse_duration(p.slo.latency_p99) if p.slo.latency_p99 else None
    return Slo(freshness=freshness, max_lag=p.slo.max_lag, latency_p99=latency)


def _topic(p: ProductDecl) -> TopicSettings | None:
    if p.kind not in ("cdc", "processor"):
        return None
    # CDC topics are keyed change logs: compaction keeps the latest row per key (Debezium's
    # recommendation); processor outputs default to time-based retention.
    default_policy: CleanupPolicy = "compact" if p.kind == "cdc" else "delete"
    return TopicSettings(
        partitions=p.topic.partitions,
        replication_factor=p.topic.replication_factor,
        retention_ms=retention_ms(p.topic.retention),
        cleanup_policy=p.topic.cleanup_policy or default_policy,
    )


def _read_file(file: Path, name: str, loc: list[str | int], source_map: SourceMap) -> str:
    path = file.parent / name
    if not path.is_file():
        raise SpecError(
            str(file),
            field_path(loc),
            f"file {name!r} does not exist",
            f"create {path} or correct the name",
            source_map.line(file, loc),
        )
    return path.read_text()


def _read_schema(
    file: Path, p: ProductDecl, loc: list[str | int], source_map: SourceMap
) -> dict[str, Any]:
    assert p.schema_file is not None
    text = _read_file(file, p.schema_file, [*loc, "schema"], source_map)
    try:
        return parse_record(text)
    except ValueError as exc:
        raise SpecError(
            str(file.parent / p.schema_file),
            f"products[{loc[1]}].schema",
            str(exc),
            "correct the Avro schema (https://avro.apache.org/docs/)",
            source_map.line(file, [*loc, "schema"]),
        ) from None
