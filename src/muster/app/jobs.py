"""The periodic work of every server process, wired from the container."""

from __future__ import annotations

from datetime import timedelta

from muster.app import Container
from muster.domain.ade_sync import RELEASED_PURGE_AFTER
from muster.jobs.runner import Job, JobRunner
from muster.services.ade_tokens import warn_expiring_tokens
from muster.store.ade_sync import SqlAdeSyncStore
from muster.store.ade_tokens import SqlTokenStore
from muster.store.webhooks import SqlWebhookStore

WEBHOOK_DELIVERY_RETENTION = timedelta(days=30)


def webhook_delivery(container: Container) -> JobRunner:
    """Webhook delivery on its own short tick, so a slow receiver never delays the other jobs."""
    return JobRunner(
        [Job("deliverWebhooks", container.webhooks.deliver_due)],
        interval=container.settings.webhook_poll_seconds,
    )


def background_jobs(container: Container) -> JobRunner:
    """The periodic work every server process does (each job is safe to run in several processes at once)."""
    clock = container.clock
    sync_store = SqlAdeSyncStore(container.engine)
    audit_retention = timedelta(days=container.settings.audit_retention_days)
    return JobRunner(
        [
            Job("adeSync", container.ade_sync.run_due),
            Job("retryAdeProfileAssignments", container.ade_profiles.retry_failed),
            Job(
                "depTokenExpiryWarnings",
                lambda: warn_expiring_tokens(SqlTokenStore(container.engine), container.audit, clock),
            ),
            Job("purgeReleasedAdeDevices", lambda: sync_store.purge_released(clock.now() - RELEASED_PURGE_AFTER)),
            Job("purgeAuditEvents", lambda: container.audit_log.purge(clock.now() - audit_retention)),
            Job(
                "purgeWebhookDeliveries",
                lambda: SqlWebhookStore(container.engine).purge_finished(clock.now() - WEBHOOK_DELIVERY_RETENTION),
            ),
            Job("refreshDynamicDeviceGroups", container.directory.refresh_device_groups),
        ],
        interval=container.settings.jobs_interval_seconds,
    )
