"""What distributing the schema by `organization_id` with Citus would require, read from the
database's own catalog (pg_catalog) after migrations: the schema there is the truth, not the
models (hand-written migrations, partitioned tables and unique indexes live only there).

Every table with an `organization_id` column is a distributed table (distribution column
`organization_id`); every other table is a reference table (copied to every node). Citus then
needs, per distributed table:
  - pk:     the primary key contains organization_id;
  - unique: every unique index/constraint and exclusion constraint contains organization_id
            (Citus enforces uniqueness shard by shard);
  - fks:    every foreign key to another distributed table pairs organization_id with
            organization_id (a composite key), so both rows live on the same shard;
and per reference table:
  - no_fk_to_distributed: it has no foreign key to a distributed table (Citus refuses those).

Only a check (docs/SCALING.md): no product code calls it. `manage.py citus_readiness` prints
the report; tests/test_citus_readiness.py holds today's state to tests/fixtures/citus_baseline.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

DISTRIBUTION_COLUMN = "organization_id"
DISTRIBUTED_RULES = ("pk", "unique", "fks")
REFERENCE_RULES = ("no_fk_to_distributed",)
BASELINE_PATH = Path(__file__).resolve().parent.parent / "tests/fixtures/citus_baseline.json"

# Tables of the public schema, without partitions (their parent carries the constraints) and
# without tables an extension owns (PostGIS's spatial_ref_sys: Citus handles those itself).
_TABLES = """
SELECT c.oid, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND NOT EXISTS (
    SELECT 1 FROM pg_depend d
    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY c.relname
"""

_COLUMNS = """
SELECT attrelid, attnum, attname FROM pg_attribute
WHERE attrelid = ANY(%s::oid[]) AND attnum > 0 AND NOT attisdropped
"""

# Constraints: p(rimary), f(oreign), x (exclusion). conkey/confkey are the column numbers.
_CONSTRAINTS = """
SELECT conrelid, conname, contype, conkey, confrelid, confkey FROM pg_constraint
WHERE conrelid = ANY(%s::oid[]) AND contype IN ('p', 'f', 'x')
"""

# Unique indexes that are not the primary key, with their key columns only (INCLUDE columns do
# not take part in uniqueness); 0 stands for an expression.
_UNIQUE_INDEXES = """
SELECT i.indrelid, c.relname, (i.indkey::int2[])[0:i.indnkeyatts - 1]
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = ANY(%s::oid[]) AND i.indisunique AND NOT i.indisprimary
"""


@dataclass
class TableReadiness:
    name: str
    distributed: bool
    primary_key: list[str] = field(default_factory=list)
    bad_uniques: list[str] = field(default_factory=list)  # "name (columns)"
    bad_fks: list[str] = field(default_factory=list)  # "name: (cols) -> table(cols)"
    fks_to_distributed: list[str] = field(default_factory=list)  # from a reference table

    @property
    def kind(self) -> str:
        return "distributed" if self.distributed else "reference"

    def rules(self) -> dict[str, bool]:
        if not self.distributed:
            return {"no_fk_to_distributed": not self.fks_to_distributed}
        return {
            # A table without a primary key has nothing to change for Citus.
            "pk": not self.primary_key or DISTRIBUTION_COLUMN in self.primary_key,
            "unique": not self.bad_uniques,
            "fks": not self.bad_fks,
        }

    def changes(self) -> list[str]:
        """What would make this table distributable, in words."""
        todo = []
        rules = self.rules()
        if not rules.get("pk", True):
            todo.append(
                f"primary key ({', '.join(self.primary_key)}) -> "
                f"({DISTRIBUTION_COLUMN}, {', '.join(self.primary_key)}) (CompositePrimaryKey)"
            )
        todo += [f"add {DISTRIBUTION_COLUMN} to unique {u}" for u in self.bad_uniques]
        todo += [
            f"make foreign key composite with {DISTRIBUTION_COLUMN}: {f}" for f in self.bad_fks
        ]
        todo += [
            f"add {DISTRIBUTION_COLUMN} (distribute it) or drop the foreign key: {f}"
            for f in self.fks_to_distributed
        ]
        return todo


def read_schema(connection) -> list[TableReadiness]:
    """One TableReadiness per table of the connected database's public schema."""
    with connection.cursor() as cursor:
        cursor.execute(_TABLES)
        tables = dict(cursor.fetchall())  # oid -> name
        oids = list(tables)
        cursor.execute(_COLUMNS, [oids])
        columns: dict[int, dict[int, str]] = {}
        for relid, attnum, attname in cursor.fetchall():
            columns.setdefault(relid, {})[attnum] = attname
        cursor.execute(_CONSTRAINTS, [oids])
        constraints = cursor.fetchall()
        cursor.execute(_UNIQUE_INDEXES, [oids])
        unique_indexes = cursor.fetchall()

    def names(relid: int, attnums) -> list[str]:
        return [columns[relid].get(n, "<expression>") if n else "<expression>" for n in attnums]

    distributed = {oid for oid in oids if DISTRIBUTION_COLUMN in columns[oid].values()}
    reports = {
        oid: TableReadiness(name=tables[oid], distributed=oid in distributed) for oid in oids
    }
    for relid, index_name, attnums in unique_indexes:
        if relid in distributed and DISTRIBUTION_COLUMN not in names(relid, attnums):
            reports[relid].bad_uniques.append(f"{index_name} ({', '.join(names(relid, attnums))})")
    for relid, name, kind, conkey, confrelid, confkey in constraints:
        report, own = reports[relid], names(relid, conkey)
        if kind == "p":
            report.primary_key = own
        elif kind == "x" and relid in distributed and DISTRIBUTION_COLUMN not in own:
            report.bad_uniques.append(f"{name} ({', '.join(own)}) [exclusion]")
        elif kind == "f" and confrelid in distributed:
            target = names(confrelid, confkey)
            text = f"({', '.join(own)}) -> {tables.get(confrelid)}({', '.join(target)})"
            if relid not in distributed:
                report.fks_to_distributed.append(text)
            elif (DISTRIBUTION_COLUMN, DISTRIBUTION_COLUMN) not in zip(own, target, strict=True):
                report.bad_fks.append(text)
    return sorted(reports.values(), key=lambda r: (not r.distributed, r.name))


# ---------------------------------------------------------------------------------------------
# Baseline: the rules each table kept when it was recorded
# ---------------------------------------------------------------------------------------------


def baseline_of(reports: list[TableReadiness], previous: dict | None = None) -> dict:
    """Today's rules per table, and the rules a table added later must keep: the previous
    baseline's choice if there is one, else the rules most recorded tables of a kind keep (the
    norm today; a rule only few keep, like a composite primary key, waits for the migration
    docs/SCALING.md describes)."""
    baseline = {
        "distributed": {r.name: r.rules() for r in reports if r.distributed},
        "reference": {r.name: r.rules() for r in reports if not r.distributed},
    }
    if previous and "new_tables_must_keep" in previous:
        baseline["new_tables_must_keep"] = previous["new_tables_must_keep"]
    else:
        baseline["new_tables_must_keep"] = {
            kind: [rule for rule in rules if _kept_by_most(baseline[kind].values(), rule)]
            for kind, rules in (("distributed", DISTRIBUTED_RULES), ("reference", REFERENCE_RULES))
        }
    return baseline


def _kept_by_most(tables, rule: str) -> bool:
    kept = [bool(t.get(rule)) for t in tables]
    return bool(kept) and sum(kept) * 2 > len(kept)


def write_baseline(baseline: dict, path: Path = BASELINE_PATH) -> None:
    # One line per table, so a diff of the file reads as "this table changed".
    lines = []
    for key in sorted(baseline):
        rows = [
            f'    "{name}": {json.dumps(value)}' for name, value in sorted(baseline[key].items())
        ]
        lines.append(f'  "{key}": {{\n' + ",\n".join(rows) + "\n  }")
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")


def load_baseline(path: Path = BASELINE_PATH) -> dict:
    return json.loads(path.read_text())


def regressions(reports: list[TableReadiness], baseline: dict) -> list[str]:
    """What breaks the baseline: (1) a table not recorded (or recorded as the other kind) that
    breaks a rule new tables must keep; (2) a recorded table that broke a rule it kept.
    Empty when the schema is as ready as it was."""
    problems = []
    for report in reports:
        recorded = baseline[report.kind].get(report.name)
        if recorded is None:
            required = baseline["new_tables_must_keep"][report.kind]
            reason = f"every new {report.kind} table must"
        else:
            required = [rule for rule, kept in recorded.items() if kept]
            reason = "it kept it in the baseline"
        rules = report.rules()
        broken = [rule for rule in required if not rules.get(rule, True)]
        if broken:
            what = "; ".join(report.changes()) or ", ".join(broken)
            problems.append(
                f"{report.name} ({report.kind}) breaks {', '.join(broken)} ({reason}): {what}"
            )
    return problems


# ---------------------------------------------------------------------------------------------
# The readable report
# ---------------------------------------------------------------------------------------------


def _mark(ok: bool | None) -> str:
    return "-" if ok is None else ("ok" if ok else "NO")


def render(reports: list[TableReadiness]) -> str:
    distributed = [r for r in reports if r.distributed]
    reference = [r for r in reports if not r.distributed]
    width = max(len(r.name) for r in reports) if reports else 10
    lines = [
        f"Distributed by {DISTRIBUTION_COLUMN}: {len(distributed)} tables; "
        f"reference tables: {len(reference)}",
        "",
        f"{'table':<{width}}  {'kind':<11}  pk   uniques  fks  to change",
    ]
    for report in reports:
        rules = report.rules()
        fks = rules["fks"] if report.distributed else rules["no_fk_to_distributed"]
        todo = report.changes()
        lines.append(
            f"{report.name:<{width}}  {report.kind:<11}  {_mark(rules.get('pk')):<3}  "
            f"{_mark(rules.get('unique')):<7}  {_mark(fks):<3}  {todo[0] if todo else ''}"
        )
        lines += [f"{'':<{width + 35}}{more}" for more in todo[1:]]
    ready = sum(all(r.rules().values()) for r in reports)
    lines += ["", f"ready as they are: {ready} of {len(reports)} tables"]
    return "\n".join(lines)
