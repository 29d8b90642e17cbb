"""How one operator process runs: the flags of ``modelyard operator`` (:mod:`.cli`) as one frozen
value, read by the kopf settings (:mod:`.handlers.kopf_settings`), the handlers and the run loop
(:mod:`.app`)."""

from __future__ import annotations

import dataclasses
import datetime
import pathlib

from modelyard.builders import settings
from modelyard.controllers import autoscaler, webhook

FailurePolicy = webhook.FailurePolicy  # the field ``webhook`` shadows the module in the class


@dataclasses.dataclass(frozen=True)
class OperatorOptions:
    namespace: str = "modelyard-system"
    kubeconfig: str | None = None
    webhook: bool = True
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 9443
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 8080
    """Port of /metrics and /healthz (and of the status API when ``status_port`` is None)."""
    status_port: int | None = None
    """Port of the status API, its dashboard and /healthz, apart from /metrics; None: one port."""
    status_token: str | None = None
    """Bearer token the status API requires (none: read-only and open)."""
    leader_election: bool = True
    builder: settings.Settings = dataclasses.field(default_factory=settings.Settings)
    webhook_service: str | None = None
    """``name`` or ``namespace/name`` of the Service the API server reaches the webhook through
    (in a cluster); None: a URL at ``webhook_host`` (kopf manages the configurations)."""
    webhook_configuration: str = "modelyard-webhook"
    """With ``webhook_service``: the ValidatingWebhookConfiguration (made by the chart) to patch."""
    webhook_failure_policy: FailurePolicy | None = None
    """What the API server does when the webhook cannot answer (docs/security.md); None:
    ``Fail`` through a Service (in a cluster), ``Ignore`` at a URL (a process on a laptop or in
    the tests, which a kill must not leave blocking every write of the modelyard kinds)."""
    webhook_cert_validity: datetime.timedelta = datetime.timedelta(days=7)
    """Life of each serving certificate the operator issues (renewed two thirds into it)."""
    webhook_ca_validity: datetime.timedelta = datetime.timedelta(days=5 * 365)
    """Life of the webhook CA (replaced two thirds into it; the old one stays in the bundle)."""
    webhook_ca_secret: str | None = None
    """Secret in ``namespace`` that keeps the webhook CA, shared by the replicas (None: in memory)."""
    webhook_cert_dir: pathlib.Path | None = None
    """A mounted cert-manager Secret (tls.crt, tls.key, ca.crt): the operator issues nothing."""
    apply_builtin_catalog: bool = False
    """Apply the built-in catalog's ModelEntries at start (:mod:`.catalog_seed`)."""
    pod_name: str | None = None
    """This replica's pod, labelled while it holds the Lease (:mod:`.leader_label`)."""
    autoscale: autoscaler.Options = dataclasses.field(default_factory=autoscaler.Options)
    """Where the gateways' demand is read, and how often (:mod:`.autoscaler`)."""

    @property
    def failure_policy(self) -> FailurePolicy:
        if self.webhook_failure_policy is not None:
            return self.webhook_failure_policy
        return "Fail" if self.webhook_service else "Ignore"
