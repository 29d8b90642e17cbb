"""Writing an endpoint's Deployment and Service: create first, apply after.

A child the watch does not know is created with a POST: success means the object is ours and
needs no read before it; a 409 ``AlreadyExists`` means a same-named object exists (anyone's: a
foreign one carries none of our labels, so no watch reports it), and only then is it read
(one GET) and the ownership rule applied: ours is applied, anyone else's is left untouched and
its endpoint waits (``OwnershipConflict``). A child the watch knows is checked against the rule
and applied (server-side) as before. One request per new child, where a GET and an apply were
two.

A POST records its fields under the operator's manager with ``operation: Update``, not
``Apply``; a later apply would then leave a field it no longer sends in place (the Update entry
still owns it: a removed env var or node selector would stay). So before a child created that
way is applied again, its managedFields are handed to the apply: the Update entry becomes the
Apply entry, or is dropped when an Apply entry exists already (which owns every field the
operator sends); what ``kubectl apply --server-side`` does when it takes over from a
client-side apply. That costs one JSON patch, once per child, and only when it is applied again
(a spec change, a hand edit undone, an operator restart)."""

from __future__ import annotations

from typing import Any

from modelyard.builders import children, labels
from modelyard.controllers import cluster, context


async def known(
    ctx: context.Context, name: str, namespace: str | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The Deployment and Service as the watch (or our last write) has them, with no request: one
    the watch lacks is created first (:func:`put`). Before the indices are attached (never in a
    running operator) they are read."""
    found = []
    for kind in (cluster.DEPLOYMENT, cluster.SERVICE):
        if ctx.informer.attached(kind):
            found.append(ctx.informer.cached(kind, name, namespace))
        else:
            found.append(await ctx.informer.read(ctx.cluster, kind, name, namespace))
    return found[0], found[1]


def handover(live: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The JSON patch that hands the operator's Update entry of ``live``'s managedFields to its
    Apply entry; None when there is none to hand over."""
    entries = (live.get("metadata") or {}).get("managedFields") or []
    ours = [
        i
        for i, entry in enumerate(entries)
        if entry.get("manager") == labels.FIELD_MANAGER and not entry.get("subresource")
    ]
    updates = [i for i in ours if entries[i].get("operation") == "Update"]
    if not updates:
        return None
    at = f"/metadata/managedFields/{updates[0]}"
    checks = [
        {"op": "test", "path": f"{at}/manager", "value": labels.FIELD_MANAGER},
        {"op": "test", "path": f"{at}/operation", "value": "Update"},
    ]
    if any(entries[i].get("operation") == "Apply" for i in ours):
        return [*checks, {"op": "remove", "path": at}]
    return [*checks, {"op": "replace", "path": f"{at}/operation", "value": "Apply"}]


async def apply(ctx: context.Context, obj: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
    """Server-side apply ``obj`` (ours, or absent), handing a POST's fields over first."""
    patch = handover(live) if live is not None else None
    if patch is not None:
        meta = obj["metadata"]
        await ctx.cluster.json_patch(
            (obj["apiVersion"], obj["kind"]), meta["name"], meta.get("namespace"), patch
        )
    return await ctx.cluster.apply(obj)


async def put(
    ctx: context.Context, obj: dict[str, Any], known: dict[str, Any] | None, owner_name: str, owner_uid: str
) -> tuple[dict[str, Any] | None, str | None]:
    """Create or apply one child: (the object as written, None) or (None, the conflict's message).

    ``known`` is the child as the watch has it (None: the watch knows of none), already checked
    against the ownership rule by the caller."""
    kind = (obj["apiVersion"], obj["kind"])
    meta = obj["metadata"]
    if known is None:
        created = await ctx.cluster.create(obj)
        if created is not None:
            return created, None
        known = await ctx.cluster.get(kind, meta["name"], meta.get("namespace"))  # 409: whose is it?
        taken = children.conflict(known, "ModelEndpoint", owner_name, owner_uid)
        if taken is not None:
            return None, taken
    return await apply(ctx, obj, known), None
