"""Drift items from normalized resources: the differences of the pairs whose hashes differ
(found directly where they lie in mappings alone, by one DeepDiff over the pairs whose
differences reach lists), leaks, secrets reused across environments, the changes a leak
or a nested var explains; values as a report shows them. The engine (app.diff.engine) decides
which resources are compared and classifies what these give."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.diff.model import DriftItem, SideResource
from app.diff.normalize import SECRET_PLACEHOLDER, Leak, Path, render_path
from app.states import Change, SideName
from collectors.secrets import SECRET_PREFIX, SHOWN, is_secret_marker, show_markers

Identity = tuple[str, str]  # resource_type, normalized key
SECRET_SHOWN = SHOWN
SECRET_ROTATED = "secret rotated"
# One difference of a pair of documents: its path, the change, both values as shown, and a
# detail (a rotated secret).
Finding = tuple[Path, Change, Any, Any, "str | None"]


@dataclass
class Normalized:
    """One resource of a side as compared: its normalized document and that document's hash,
    the secrets in it (path -> marker) and the leaks normalization found."""

    resource: SideResource
    key: str
    doc: Any
    hash: str
    secrets: dict[Path, str] = field(default_factory=dict)
    leaks: list[Leak] = field(default_factory=list)


def drift_item(
    n: Normalized, parts: Path, change: Change, left: Any, right: Any, detail: str | None = None
) -> DriftItem:
    return DriftItem(
        category=n.resource.category,
        resource_type=n.resource.resource_type,
        key=shown(n.key),
        path=shown(render_path(parts)),
        change=change,
        left=left,
        right=right,
        detail=detail,
        parts=parts,
    )


def shown(value: Any) -> Any:
    """A value as a report shows it: secrets as `(secret)`, never their hash."""
    if isinstance(value, str):
        if value == SECRET_PLACEHOLDER or is_secret_marker(value):
            return SECRET_SHOWN
        value = show_markers(value)
        if SECRET_PLACEHOLDER in value:
            value = value.replace(SECRET_PLACEHOLDER, SECRET_SHOWN)
        return value
    if isinstance(value, dict):
        return {shown(k): shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shown(v) for v in value]
    return value


_REPORTS = {
    "dictionary_item_added": Change.ADDED,
    "dictionary_item_removed": Change.REMOVED,
    "values_changed": Change.CHANGED,
    "type_changes": Change.CHANGED,
    "iterable_item_added": Change.ADDED,
    "iterable_item_removed": Change.REMOVED,
}


def _prune(a: Any, b: Any) -> tuple[Any, Any]:
    """Both documents less the branches they share (a C-speed `==` per branch), so that
    DeepDiff walks only what differs; the paths it reports are unchanged."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return a, b
    left: dict[str, Any] = {}
    right: dict[str, Any] = {}
    for key in a.keys() | b.keys():
        if key not in b:
            left[key] = a[key]
        elif key not in a:
            right[key] = b[key]
        elif a[key] != b[key] or type(a[key]) is not type(b[key]):
            left[key], right[key] = _prune(a[key], b[key])
    return left, right


def _path_of(level: Any) -> list[str]:
    """The keys from the root to a DeepDiff tree level (what `level.path(output_format="list")`
    gives, without the string formatting that dominates its cost)."""
    parts = []
    node = level.all_up
    while node.down is not None:
        relation = node.t1_child_rel or node.t2_child_rel
        parts.append(str(relation.param))
        node = node.down
    return parts


def _holds_secret(value: Any) -> bool:
    return isinstance(value, str) and (SECRET_PREFIX in value or SECRET_PLACEHOLDER in value)


# What DeepDiff found between two normalized documents, by their hashes: (path parts,
# change, left, right, detail) per difference. A pure function of the two documents, so
# kept for the next comparison of the same pair (a server judges a pushed environment
# against others whose own drift did not change since the last push). Bounded by count.
_PAIRS: dict[tuple[str, str], list[Finding]] = {}
_PAIRS_KEPT = 20_000
_FINDINGS_KEPT = 50  # per pair


def changed_items(pairs: list[tuple[Normalized, Normalized]]) -> list[DriftItem]:
    """One DeepDiff over every resource whose hashes differ (one call, not one per resource:
    DeepDiff's set-up costs more than a small document's comparison), but for the pairs of
    documents it compared before."""
    if not pairs:
        return []
    found: dict[int, list[Finding]] = {}
    todo = []
    for n, (a, b) in enumerate(pairs):
        known = _PAIRS.get((a.hash, b.hash))
        if known is None:
            todo.append(n)
            found[n] = []
        else:
            found[n] = known
    if todo:
        _diff_pairs(pairs, todo, found)
        while len(_PAIRS) + len(todo) > _PAIRS_KEPT and _PAIRS:
            del _PAIRS[next(iter(_PAIRS))]  # the oldest first
        for n in todo:
            if len(found[n]) <= _FINDINGS_KEPT:  # not a pair of documents that share nothing
                a, b = pairs[n]
                _PAIRS[(a.hash, b.hash)] = found[n]
    items = [
        drift_item(pairs[n][0], parts, change, left, right, detail)
        for n, changes in found.items()
        for parts, change, left, right, detail in changes
    ]
    items.sort(key=lambda i: (i.key, i.path, i.change))
    return items


def _diff_pairs(
    pairs: list[tuple[Normalized, Normalized]],
    todo: list[int],
    found: dict[int, list[Finding]],
) -> None:
    """Each pair's differences into `found`: directly where they lie in mappings alone (the
    usual case: a value changed, a key added or removed), and by one DeepDiff over the pairs
    whose differences reach into lists (DeepDiff's own way of matching list items)."""
    deep: dict[int, tuple[Any, Any]] = {}
    for n in todo:
        a, b = pairs[n]
        pruned = _prune(a.doc, b.doc)
        direct = _mapping_findings(*pruned)
        if direct is None:
            deep[n] = pruned
        else:
            found[n] = direct
    if deep:
        for n, findings in deepdiff_findings(deep).items():
            found[n] = findings


def deepdiff_findings(pruned: dict[int, tuple[Any, Any]]) -> dict[int, list[Finding]]:
    """DeepDiff's findings for each pair of pruned documents (one call for all of them)."""
    from deepdiff import DeepDiff  # only when something differs: it is slow to import

    t1 = {str(n): a for n, (a, _) in pruned.items()}
    t2 = {str(n): b for n, (_, b) in pruned.items()}
    found: dict[int, list[Finding]] = {n: [] for n in pruned}
    diff = DeepDiff(t1, t2, view="tree", threshold_to_diff_deeper=0, verbose_level=2)
    for report, levels in diff.items():
        change = _REPORTS.get(report)
        if change is None:
            continue
        for level in levels:
            index, *rest = _path_of(level)
            left = None if change == Change.ADDED else shown(level.t1)
            right = None if change == Change.REMOVED else shown(level.t2)
            found[int(index)].append(_finding(tuple(rest), change, left, right, level.t2))
    return found


def _finding(parts: Path, change: Change, left: Any, right: Any, raw_right: Any) -> Finding:
    detail = None
    if change == Change.CHANGED and left == right and _holds_secret(raw_right):
        # Only a secret changed (whole, or inside a URL): shown alike on both sides.
        detail = SECRET_ROTATED
        if right == SECRET_SHOWN:
            right = SECRET_SHOWN + " (changed)"
    return (parts, change, left, right, detail)


def _mapping_findings(a: Any, b: Any) -> list[Finding] | None:
    """What DeepDiff finds between two pruned documents whose differences lie in mappings
    alone: a key only on the left is removed, only on the right added; a value of another
    type, or another scalar, is changed. None when a difference reaches a list on both
    sides, which DeepDiff matches item by item in its own way."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return None
    out: list[Finding] = []
    return out if _walk_mappings(a, b, (), out) else None


def _walk_mappings(a: dict[str, Any], b: dict[str, Any], parts: Path, out: list[Finding]) -> bool:
    for key in a.keys() | b.keys():
        here = (*parts, key)
        if key not in b:
            out.append(_finding(here, Change.REMOVED, shown(a[key]), None, None))
        elif key not in a:
            out.append(_finding(here, Change.ADDED, None, shown(b[key]), b[key]))
        else:
            x, y = a[key], b[key]
            if type(x) is not type(y):
                out.append(_finding(here, Change.CHANGED, shown(x), shown(y), y))
            elif isinstance(x, dict):
                if not _walk_mappings(x, y, here, out):
                    return False
            elif isinstance(x, list):
                return False
            else:
                out.append(_finding(here, Change.CHANGED, shown(x), shown(y), y))
    return True


def leak_items(
    lefts: dict[Identity, Normalized],
    rights: dict[Identity, Normalized],
    compared: dict[Identity, str],
    cross: bool,
) -> list[DriftItem]:
    """Across environments, every leak on either side; over time, only leaks that are new."""
    items = []
    seen: set[tuple[Identity, Path, SideName]] = set()
    left, right = SideName.LEFT, SideName.RIGHT
    others = {left: rights, right: lefts}
    if not cross:
        seen = {(identity, leak.path, right) for identity, n in lefts.items() for leak in n.leaks}
    sides = ((left, lefts), (right, rights)) if cross else ((right, rights),)
    for side_name, side in sides:
        for identity in sorted(side):
            n = side[identity]
            for leak in n.leaks:
                marker = (identity, leak.path, side_name)
                if marker in seen:
                    continue
                seen.add(marker)
                compared[identity] = n.resource.category
                detail = f"names {leak.environment} (its {leak.var})"
                value = shown(leak.value)
                # The other side's value at the same place (what it holds instead), so the row
                # does not read as "missing" there.
                other = others[side_name].get(identity)
                counterpart = shown(_at(other.doc, leak.path)) if other is not None else None
                items.append(
                    drift_item(
                        n,
                        leak.path,
                        Change.LEAK,
                        value if side_name == left else counterpart,
                        value if side_name == right else counterpart,
                        detail,
                    )
                )
    return items


def _at(doc: Any, path: Path) -> Any:
    for part in path:
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def secret_reuse_items(
    lefts: dict[Identity, Normalized], rights: dict[Identity, Normalized]
) -> list[DriftItem]:
    where_right: dict[str, list[tuple[Normalized, Path]]] = {}
    for n in rights.values():
        for path, marker in n.secrets.items():
            where_right.setdefault(marker, []).append((n, path))
    items = []
    for identity in sorted(lefts):
        n = lefts[identity]
        for path, marker in sorted(n.secrets.items()):
            for other, other_path in where_right.get(marker, []):
                location = f"{other.key} {render_path(other_path)}".strip()
                items.append(
                    drift_item(
                        n,
                        path,
                        Change.SECRET_REUSED,
                        SECRET_SHOWN,
                        SECRET_SHOWN,
                        f"same secret as {location}",
                    )
                )
    return items


def suppress_changes_explained_by_leaks(items: list[DriftItem]) -> list[DriftItem]:
    """A value that differs *because* it names the other environment is reported once, as a leak."""
    leaked = {(i.resource_type, i.key, i.parts) for i in items if i.change == Change.LEAK}
    return [
        i
        for i in items
        if not (i.change == Change.CHANGED and (i.resource_type, i.key, i.parts) in leaked)
    ]


def suppress_nested_var_artifacts(
    items: list[DriftItem], left: dict[str, str], right: dict[str, str]
) -> list[DriftItem]:
    """With `domain: staging.example.com` and `domain: example.com`, production's
    `support+production@example.com` reads `support+{env}@{domain}` while staging's
    `support+staging@example.com` keeps `example.com` (its own domain is longer): the same
    text, normalized differently. Such a var's placeholder is put back to its value on each
    side, and a pair that is then equal is no drift."""
    nested = {
        name
        for name in left.keys() & right.keys()
        if left[name].lower() != right[name].lower()
        and (left[name].lower() in right[name].lower() or right[name].lower() in left[name].lower())
    }
    if not nested:
        return items

    def expand(value: str, values: dict[str, str]) -> str:
        for name in nested:
            value = value.replace("{" + name + "}", values[name])
        return value.lower()

    return [
        i
        for i in items
        if not (
            i.change == Change.CHANGED
            and isinstance(i.left, str)
            and isinstance(i.right, str)
            and expand(i.left, left) == expand(i.right, right)
        )
    ]
