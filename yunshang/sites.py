"""Sites: the hierarchy of data centers a prefecture runs (city, county, township; a province above).

``sites.yaml`` in the catalog (optional)::

    sites:
      - {name: yiyang, display_name: 益阳市, tier: city}
      - {name: taojiang, display_name: 桃江县, tier: county, parent: yiyang, budget_cny_per_month: 300000}
      - {name: fuqiushan, display_name: 浮邱山乡, tier: township, parent: taojiang}

Exactly one root (no ``parent``); every other site names a parent and sits at
least one tier below it (province > city > county > township); names are
unique ``[a-z0-9-]+``; a budget is > 0 CNY/month. Without the file there is
one implicit root site and everything behaves as without sites. Zones (in
providers.yaml) and departments may say ``site: <name>``; absent = the root.

This module reads and checks the file (every problem with file, field and
line, gathered with the rest of the catalog's) and holds the tree logic the
placement rules 6 (residency) and 7 (budget), the exporter and the report use.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from yunshang.model import IMPLICIT_ROOT, TIERS, Catalog, Plan, Site


class SiteTree:
    """The site hierarchy of a catalog (the implicit root when it has no sites)."""

    def __init__(self, sites: Iterable[Site] = ()):
        sites = tuple(sites) or (IMPLICIT_ROOT,)
        self.sites: dict[str, Site] = {s.name: s for s in sites}
        self.root: str = next(s.name for s in sites if not s.parent)
        self._children: dict[str, list[str]] = {n: [] for n in self.sites}
        for s in sites:
            if s.parent:
                self._children[s.parent].append(s.name)
        self._chain: dict[str, tuple[str, ...]] = {}
        for name in self.sites:
            chain, n = [], name
            while n:
                chain.append(n)
                n = self.sites[n].parent
            self._chain[name] = tuple(chain)

    def resolve(self, name: str) -> str:
        """A zone's or department's site name ("" = the root)."""
        return name or self.root

    def site(self, name: str) -> Site:
        return self.sites[self.resolve(name)]

    def chain(self, name: str) -> tuple[str, ...]:
        """The site itself, then its parent, ... up to the root."""
        return self._chain[self.resolve(name)]

    def allows(self, department_site: str, zone_site: str) -> bool:
        """Residency (rule 6): a zone may hold a department's copies when its site is the
        department's own site or an ancestor of it."""
        return self.resolve(zone_site) in self._chain[self.resolve(department_site)]

    def children(self, name: str) -> tuple[str, ...]:
        return tuple(sorted(self._children[self.resolve(name)]))

    def subtree(self, name: str) -> tuple[str, ...]:
        """The site and every site below it (pre-order, children by name)."""
        out, todo = [], [self.resolve(name)]
        while todo:
            n = todo.pop()
            out.append(n)
            todo.extend(sorted(self._children[n], reverse=True))
        return tuple(out)

    def tier(self, name: str) -> str:
        return self.site(name).tier

    def budgeted(self) -> tuple[Site, ...]:
        return tuple(s for s in self.sites.values() if s.budget_cny_per_month is not None)

    def ordered(self) -> tuple[Site, ...]:
        """Every site, root first (pre-order)."""
        return tuple(self.sites[n] for n in self.subtree(self.root))


def tree_of(catalog: Catalog) -> SiteTree:
    return SiteTree(catalog.sites)


def spend_by_site(catalog: Catalog, plan: Plan) -> dict[str, float]:
    """Monthly cost placed per site for departments at the site or below it (what rule 7 bounds)."""
    tree = tree_of(catalog)
    site_of = {d.name: tree.resolve(d.site) for d in catalog.departments}
    out = {name: 0.0 for name in tree.sites}
    for p in plan.placements:
        for s in tree.chain(site_of.get(p.department, "")):
            out[s] += p.monthly_cost_cny
    return {k: round(v, 2) for k, v in out.items()}


# --------------------------------------------------------------------------- reading sites.yaml
def read_sites(root: Path, problems: list) -> tuple[tuple[Site, ...], set[str] | None]:
    """Read ``<root>/sites.yaml``: (sites, names to check references against).

    No file: ``((), set())`` -- the implicit root; any ``site:`` elsewhere is unknown.
    A file too broken to know its names: ``((), None)`` -- references are not checked
    (no cascade of problems). Problems go to ``problems``."""
    from yunshang import catalog as C

    path = root / "sites.yaml"
    if not path.exists():
        return (), set()
    raw, doc, _ = C._read_yaml(path, problems)
    if doc is None:
        return (), None
    if raw is None:
        doc.err((), "file is empty; expected a mapping with 'sites:' (or delete the file: one implicit root)")
        return (), None
    before = len(problems)
    checked = _sites_file(C)(doc, (), raw)
    if not isinstance(raw, dict) or not isinstance(raw.get("sites"), list):
        return (), None
    entries = raw["sites"]
    if not entries:
        doc.err(("sites",), "expected at least one site (or delete the file: one implicit root)")
    names = [(i, e.get("name")) for i, e in enumerate(entries) if isinstance(e, dict)]
    C._dups(doc, ("sites",), names, "site name")
    known = {n for _, n in names if isinstance(n, str)}
    _check_tree(doc, entries, known)
    if len(problems) > before or checked is C._BAD:
        return (), known
    return tuple(checked["sites"]), known


def _sites_file(C: Any):
    def build(doc, path, s):
        return Site(name=s["name"], tier=s["tier"], display_name=C._opt(s, "display_name", s["name"]),
                    parent=C._opt(s, "parent", ""), budget_cny_per_month=C._opt(s, "budget_cny_per_month", None))

    site = C.c_record({"name": C.c_name, "tier": C.c_choice(*TIERS)},
                      {"display_name": C.c_text, "parent": C.c_name,
                       "budget_cny_per_month": C.c_num(0.0, lo_open=True, what=" CNY per month")}, build)
    return C.c_record({"sites": C.c_list(site)})


MAX_TREE_PROBLEMS = 100      # a hostile file may break the tree everywhere: the first 100, then a count


def _check_tree(doc: Any, entries: list, known: set[str]) -> None:
    """Roots, unknown parents, cycles and tiers, on the raw entries (one bad field hides nothing else)."""
    found: list[tuple[tuple, str]] = []
    _tree_problems(found, entries, known)
    for path, msg in found[:MAX_TREE_PROBLEMS]:
        doc.err(path, msg)
    if len(found) > MAX_TREE_PROBLEMS:
        doc.err(("sites",), f"... and {len(found) - MAX_TREE_PROBLEMS} more problems of the tree "
                            f"(the first {MAX_TREE_PROBLEMS} are listed)")


def _tree_problems(found: list, entries: list, known: set[str]) -> None:
    class _Acc:
        @staticmethod
        def err(path: tuple, msg: str) -> None:
            found.append((path, msg))

    doc = _Acc
    parent: dict[str, str] = {}
    tier: dict[str, str] = {}
    index: dict[str, int] = {}
    roots = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            continue
        name = e["name"]
        if name in index:
            continue                                  # a duplicate: already reported
        index[name] = i
        if isinstance(e.get("tier"), str) and e["tier"] in TIERS:
            tier[name] = e["tier"]
        p = e.get("parent")
        if p is None:
            roots.append(i)
        elif isinstance(p, str):
            if p == name:
                doc.err(("sites", i, "parent"), f"site '{name}' is its own parent (a cycle)")
            elif p not in known:
                doc.err(("sites", i, "parent"), f"unknown site '{p}' (sites.yaml has: {_some(known)})")
            else:
                parent[name] = p
    if entries and not roots:
        doc.err(("sites",), "expected exactly one root site (one without parent), found none")
    for i in roots[1:]:
        first = roots[0]
        doc.err(("sites", i, "name"), f"a second root site '{entries[i]['name']}' (no parent); expected exactly "
                                      f"one root, the first is '{entries[first]['name']}' at sites[{first}]")
    state: dict[str, int] = {}                          # 1: on the current walk, 2: done (linear overall)
    for name in parent:
        path, n = [], name
        while n in parent and n not in state:
            state[n] = 1
            path.append(n)
            n = parent[n]
        if state.get(n) == 1:                           # the walk came back to itself: a cycle through n
            cycle = path[path.index(n):]
            start = min(cycle, key=index.__getitem__)
            k = cycle.index(start)
            ring = cycle[k:] + cycle[:k] + [start]
            shown = " -> ".join(ring) if len(ring) <= 12 else " -> ".join(ring[:10] + ["...", start])
            doc.err(("sites", index[start], "parent"), f"cycle in parents: {shown} ({len(cycle)} sites)"
                    if len(ring) > 12 else f"cycle in parents: {shown}")
        for m in path:
            state[m] = 2
    for name, p in parent.items():
        if name in tier and p in tier and TIERS.index(tier[name]) <= TIERS.index(tier[p]):
            below = TIERS[TIERS.index(tier[p]) + 1:]
            doc.err(("sites", index[name], "tier"),
                    f"expected a tier below its parent {p} ({tier[p]}): "
                    f"{' | '.join(below) or 'none (a township has no children)'}, got {tier[name]}")


def _some(names: set[str], most: int = 20) -> str:
    """Names for a message, at most ``most`` of them (a hostile file may hold very many)."""
    if not names:
        return "none"
    shown = sorted(names)[:most]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f", ... and {more} more" if more else "")


def check_reference(doc: Any, path: tuple, value: Any, known: set[str] | None) -> bool:
    """A ``site:`` field of a zone or department: False (and a problem) when it names no site."""
    if known is None or not isinstance(value, str):
        return True
    if value in known:
        return True
    if not known:
        doc.err(path, f"unknown site '{value}' (the catalog has no sites.yaml: one implicit root site)")
    else:
        doc.err(path, f"unknown site '{value}' (sites.yaml has: {_some(known)})")
    return False


def zone_references(doc: Any, raw: Any, known: set[str] | None) -> bool:
    """Check every ``providers[i].zones[j].site`` of a raw providers.yaml."""
    ok = True
    plist = raw.get("providers") if isinstance(raw, dict) else None
    for i, p in enumerate(plist if isinstance(plist, list) else []):
        zones = p.get("zones") if isinstance(p, dict) else None
        for j, z in enumerate(zones if isinstance(zones, list) else []):
            if isinstance(z, dict) and "site" in z:
                ok = check_reference(doc, ("providers", i, "zones", j, "site"), z["site"], known) and ok
    return ok


def with_committed(catalog: Catalog, committed_by_department: Mapping[str, float]) -> Catalog:
    """The catalog with each site budget lowered by what departments at the site or below it already
    hold (monthly CNY, e.g. approved and configured requests), never below 0: placing a new request
    alone then sees what is really left of every budget above it (rule 7)."""
    from dataclasses import replace

    tree = SiteTree(catalog.sites)
    site_of = {d.name: tree.resolve(d.site) for d in catalog.departments}
    spent: dict[str, float] = {}
    for dept, cost in committed_by_department.items():
        home = site_of.get(dept)
        if home is None:
            continue
        for s in tree.chain(home):
            spent[s] = spent.get(s, 0.0) + cost
    return replace(catalog, sites=tuple(
        replace(s, budget_cny_per_month=max(0.0, s.budget_cny_per_month - spent.get(s.name, 0.0)))
        if s.budget_cny_per_month is not None else s for s in catalog.sites))


def resolve_catalog(catalog: Catalog) -> Catalog:
    """The catalog with every zone's and department's site made explicit (absent = the root)."""
    from dataclasses import replace

    root = SiteTree(catalog.sites).root
    providers = tuple(replace(p, zones=tuple(z if z.site else replace(z, site=root) for z in p.zones))
                      for p in catalog.providers)
    departments = tuple(d if d.site else replace(d, site=root) for d in catalog.departments)
    return replace(catalog, providers=providers, departments=departments)
