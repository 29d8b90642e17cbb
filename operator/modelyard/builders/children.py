"""Which children are the operator's own: whether a Deployment, Service, NetworkPolicy or Job it is
about to apply or delete is controlled by the very custom resource being reconciled (pure).

(Not :mod:`modelyard.controllers.ownership`, which says which namespaces own a served name.)

The operator names children after their custom resource, so a namespace may already hold an
object of that name that someone else made: a team's own Deployment, a platform ConfigMap.
Applying over it would take it over; deleting it would destroy it. A child is the operator's only
when its *controller* owner reference carries the uid of the very custom resource being
reconciled (an earlier resource of the same name has another uid). Anything else is left
untouched and the resource's status says so (``OwnershipConflict``), naming the object.
"""

from __future__ import annotations

from typing import Any

CONFLICT = "OwnershipConflict"


def controller(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The owner reference marked ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def owned(obj: dict[str, Any], owner_uid: str) -> bool:
    ref = controller(obj)
    return ref is not None and ref.get("uid") == owner_uid


def conflict(obj: dict[str, Any] | None, owner_kind: str, owner_name: str, owner_uid: str) -> str | None:
    """None when ``obj`` is absent or controlled by the resource ``owner_uid``; else a sentence
    naming the object, whose it is, and what to do."""
    if obj is None or owned(obj, owner_uid):
        return None
    meta = obj.get("metadata") or {}
    what = f"{obj.get('kind', 'object')} {meta.get('namespace')}/{meta.get('name')}"
    ref = controller(obj)
    if ref is None:
        whose = f"is not this {owner_kind}'s (it has no controller owner reference)"
        action = f"delete or rename it, or rename this {owner_kind}"
    elif ref.get("kind") == owner_kind and ref.get("name") == owner_name:
        whose = f"belongs to an earlier {owner_kind} of this name (uid {ref.get('uid')})"
        action = "the garbage collector deletes it, then this one proceeds"
    else:
        whose = f"is controlled by {ref.get('kind')} {ref.get('name')}"
        action = f"rename this {owner_kind}"
    return f"{what} already exists and {whose}; the operator leaves it untouched: {action}"
