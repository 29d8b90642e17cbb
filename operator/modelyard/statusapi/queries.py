"""What the routes read from the cache, derived once per change of the kinds it depends on."""

from __future__ import annotations

from modelyard.statusapi import cache, catalog_index, present, schemas, traffic


def catalog(v: cache.Cache) -> catalog_index.CatalogIndex:
    """The catalog over the cached ModelEntries."""
    return v.derived(
        "catalog",
        ("ModelEntry",),
        lambda previous: catalog_index.CatalogIndex(v.objects("ModelEntry"), previous),
    )


def endpoints(v: cache.Cache, live: traffic.Traffic | None = None) -> list[schemas.EndpointSummary]:
    """Every ModelEndpoint with its traffic share (served names come from the entries) and, with
    ``live``, what the gateways report (a new scrape touches the ModelEndpoint kind)."""

    def build(_: object) -> list[schemas.EndpointSummary]:
        index = catalog(v)
        return present.endpoints(v.objects("ModelEndpoint"), index.served_names, index.ids, live)

    return v.derived("endpoints", ("ModelEntry", "ModelEndpoint"), build)


def training_jobs(v: cache.Cache) -> list[schemas.TrainingJobSummary]:
    return v.derived(
        "trainingjobs",
        ("TrainingJob",),
        lambda _: [present.training_job(o) for o in v.objects("TrainingJob")],
    )
