"""Who may serve a served name: the one ownership rule that admission, the operator and the
gateway all apply (pure: plain facts in, owners and conflicts out).

The rule (docs/concepts.md, "Served-name ownership"):

1. **Platform claim.** A ModelEntry with ``spec.servingNamespaces`` may be deployed only from
   those namespaces, and its served name belongs to the platform: only endpoints in those
   namespaces may serve that name, whatever entry they deploy. Several entries claiming one
   name: the union of their lists.
2. **First come.** A served name no entry claims belongs to the namespace of its oldest
   ModelEndpoint (``metadata.creationTimestamp``; ties by namespace, then name). Endpoints of
   other namespaces serving it are in conflict.
3. **Sharing.** ``spec.shareServedNameWith`` on any endpoint of the owning namespace that
   serves the name lets the listed namespaces' endpoints join its weighted split (first-come
   names only; a platform name is opened by the entry's ``servingNamespaces``).
4. **Adapters.** The names of an endpoint's ``spec.adapters`` are served names of its
   namespace too: rules 1-3 apply to them as to the endpoint's own (an adapter whose name
   another namespace owns is not loaded, ``NameNotAllowed``).
5. **Fallbacks.** An endpoint's ``spec.fallback`` may name only served names its namespace
   may serve, or that nobody owns; the others are ignored.

An endpoint that breaks rule 1 (a claimed entry) does not count for rule 2, so it cannot take
a name by being first either.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from modelyard.api import model_endpoint, model_entry

RULE = (
    "rule: a served name claimed by ModelEntry spec.servingNamespaces is served only from those "
    "namespaces; any other served name belongs to the namespace of its oldest ModelEndpoint, "
    "which may let others in with spec.shareServedNameWith"
)
"""The rule in one sentence, quoted in every denial and status message."""

_NEWEST = "~"  # sorts after every RFC 3339 timestamp: an object not yet created is the newest


@dataclasses.dataclass(frozen=True, slots=True)
class EndpointFacts:
    """What the rule needs to know about one ModelEndpoint."""

    namespace: str
    name: str
    created: str
    """``metadata.creationTimestamp`` (RFC 3339, UTC); empty for an object not created yet."""
    served_name: str
    model: str
    share_with: tuple[str, ...] = ()
    fallback: tuple[str, ...] = ()
    adapters: tuple[str, ...] = ()
    """Served names of its live adapters (``spec.adapters[].name``): owned like served names."""

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    @property
    def names(self) -> tuple[str, ...]:
        """Every served name it serves: its own and its adapters'."""
        return (self.served_name, *self.adapters)

    def seniority(self) -> tuple[str, str, str]:
        return self.created or _NEWEST, self.namespace, self.name


@dataclasses.dataclass(frozen=True, slots=True)
class EntryClaim:
    """A ModelEntry that sets ``spec.servingNamespaces``."""

    entry: str
    served_name: str
    namespaces: frozenset[str]


@dataclasses.dataclass(frozen=True, slots=True)
class Owner:
    """Who owns one served name, and who else may serve it."""

    served_name: str
    namespaces: frozenset[str]
    """The platform's list (a claimed name) or the one first-come namespace."""
    shared: frozenset[str] = frozenset()
    """Namespaces the owning namespace let in (first-come names only)."""
    entries: tuple[str, ...] = ()
    """The claiming ModelEntries (a platform name); empty for a first-come name."""
    first: str = ""
    """``namespace/name`` of the oldest endpoint (a first-come name)."""

    @property
    def by_platform(self) -> bool:
        return bool(self.entries)

    @property
    def allowed(self) -> frozenset[str]:
        return self.namespaces | self.shared

    def may_serve(self, namespace: str) -> bool:
        return namespace in self.allowed

    def describe(self) -> str:
        """Who owns the name, in words (the platform and its entries, or the first namespace)."""
        if self.by_platform:
            entries = ", ".join(self.entries)
            return (
                f"the platform: ModelEntry {entries} lists namespaces {_names(self.namespaces)} "
                "in spec.servingNamespaces"
            )
        (owner,) = self.namespaces
        return f"namespace {owner} (its oldest ModelEndpoint {self.first} came first)"


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """The rule's answer for one endpoint."""

    conflict: str | None = None
    """Why the endpoint may not serve (a message naming the owner and the rule); None: it may."""
    owner: str | None = None
    """The owning namespace(s), comma-separated, when in conflict."""
    ignored_fallback: tuple[str, ...] = ()
    """Fallback served names it may not use (owned by other namespaces)."""
    fallback: tuple[str, ...] = ()
    """Its fallback names that the gateway follows."""

    def fallback_message(self) -> str | None:
        if not self.ignored_fallback:
            return None
        return (
            f"spec.fallback {', '.join(self.ignored_fallback)} ignored: served names of other "
            f"namespaces (fallback may name only served names this namespace may serve, or that "
            f"nobody owns; {RULE})"
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Ownership:
    """Owners of every served name in play and a verdict for every endpoint."""

    owners: Mapping[str, Owner]
    verdicts: Mapping[tuple[str, str], Verdict]

    def may_serve(self, namespace: str, served_name: str) -> bool:
        """Whether endpoints of ``namespace`` may serve the name (True for a name nobody owns)."""
        owner = self.owners.get(served_name)
        return owner is None or owner.may_serve(namespace)

    def verdict(self, namespace: str, name: str) -> Verdict:
        return self.verdicts.get((namespace, name), Verdict())

    def names_for(self, namespaces: Iterable[str]) -> frozenset[str]:
        """Served names owned by or shared with any of ``namespaces``."""
        wanted = frozenset(namespaces)
        return frozenset(name for name, owner in self.owners.items() if owner.allowed & wanted)


def decide(endpoints: Iterable[EndpointFacts], claims: Iterable[EntryClaim]) -> Ownership:
    """Apply the rule to every endpoint (see the module docstring).

    :class:`modelyard.api.live_ownership.LiveOwnership` keeps the same answer current one
    change at a time; this is the reference it is tested against."""
    by_entry: dict[str, EntryClaim] = {}
    platform: dict[str, list[EntryClaim]] = {}
    for claim in sorted(claims, key=lambda c: c.entry):
        by_entry[claim.entry] = claim
        platform.setdefault(claim.served_name, []).append(claim)
    owners: dict[str, Owner] = {served: platform_owner(served, found) for served, found in platform.items()}
    facts = sorted(endpoints, key=EndpointFacts.seniority)
    conflicts = {  # rule 1a: a claimed entry is deployed only from its namespaces
        fact.key: found
        for fact in facts
        if (found := conflict_of(fact, by_entry.get(fact.model))) is not None
    }
    first: dict[str, EndpointFacts] = {}
    serving: dict[str, list[EndpointFacts]] = {}
    for fact in facts:  # rule 2: the oldest endpoint's namespace owns an unclaimed name
        for name in fact.names:
            serving.setdefault(name, []).append(fact)
            if fact.key not in conflicts and name not in owners:
                first.setdefault(name, fact)
    for served, oldest in first.items():
        owners[served] = first_come_owner(served, oldest, serving[served])
    verdicts = {fact.key: verdict_of(fact, conflicts.get(fact.key), owners) for fact in facts}
    return Ownership(owners, verdicts)


def platform_owner(served: str, claims: Iterable[EntryClaim]) -> Owner:
    """Rule 1: the owner of a name ``claims`` (sorted by entry) claim."""
    found = tuple(claims)
    return Owner(
        served, frozenset().union(*(c.namespaces for c in found)), entries=tuple(c.entry for c in found)
    )


def first_come_owner(served: str, oldest: EndpointFacts, serving: Iterable[EndpointFacts]) -> Owner:
    """Rules 2 and 3: ``oldest`` came first; its namespace's endpoints among ``serving`` share."""
    shared = frozenset(ns for fact in serving if fact.namespace == oldest.namespace for ns in fact.share_with)
    return Owner(served, frozenset({oldest.namespace}), shared, first=f"{oldest.namespace}/{oldest.name}")


def conflict_of(fact: EndpointFacts, claim: EntryClaim | None) -> tuple[str, str] | None:
    """Rule 1a for an endpoint of the entry whose claim is ``claim``: why it may not deploy it
    and the namespaces that may, or None."""
    if claim is None or fact.namespace in claim.namespaces:
        return None
    return (
        f"spec.model: ModelEntry {claim.entry} may be deployed only from namespaces "
        f"{_names(claim.namespaces)} (its spec.servingNamespaces); namespace "
        f"{fact.namespace} is not one of them ({RULE})",
        _names(claim.namespaces),
    )


def verdict_of(fact: EndpointFacts, conflict: tuple[str, str] | None, owners: Mapping[str, Owner]) -> Verdict:
    """The verdict of one endpoint, given its rule-1a conflict and the owners of every name."""
    kept = tuple(f for f in fact.fallback if f not in owners or owners[f].may_serve(fact.namespace))
    ignored = tuple(f for f in fact.fallback if f not in kept)
    if conflict is not None:
        return Verdict(conflict[0], conflict[1], ignored, kept)
    owner = owners.get(fact.served_name)
    if owner is not None and not owner.may_serve(fact.namespace):
        message = (
            f"served name {fact.served_name!r} belongs to {owner.describe()}; namespace "
            f"{fact.namespace} may not serve it ({RULE})"
        )
        return Verdict(message, _names(owner.namespaces), ignored, kept)
    return Verdict(None, None, ignored, kept)


def _names(namespaces: Iterable[str]) -> str:
    return ", ".join(sorted(namespaces))


def entry_served_name(entry: model_entry.ModelEntry) -> str:
    """The served name of an entry, as endpoints that do not set their own use it."""
    return entry.spec.served_name or entry.spec.source.repo or entry.name


def claim_of(entry: model_entry.ModelEntry) -> EntryClaim | None:
    """The entry's platform claim, or None when it sets no ``servingNamespaces``."""
    if entry.spec.serving_namespaces is None:
        return None
    return EntryClaim(entry.name, entry_served_name(entry), frozenset(entry.spec.serving_namespaces))


def facts_of(
    endpoint: model_endpoint.ModelEndpoint, entry: model_entry.ModelEntry | None, created: str | None
) -> EndpointFacts | None:
    """The endpoint's facts; None when its served name is unknown (no servedName, no entry)."""
    return facts_with(endpoint, entry_served_name(entry) if entry is not None else None, created)


def facts_with(
    endpoint: model_endpoint.ModelEndpoint, entry_served: str | None, created: str | None
) -> EndpointFacts | None:
    """:func:`facts_of`, given only the entry's served name (what a long-lived index keeps of it)."""
    spec = endpoint.spec
    served = spec.served_name or entry_served
    if not served:
        return None
    return EndpointFacts(
        namespace=endpoint.namespace or "",
        name=endpoint.name,
        created=created or "",
        served_name=served,
        model=spec.model,
        share_with=tuple(spec.share_served_name_with or ()),
        fallback=tuple(spec.fallback or ()),
        adapters=tuple(a.name for a in spec.adapters or ()),
    )
