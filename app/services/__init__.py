"""Use cases shared by the dashboard, the CLI and the HTTP API, one module per use case:
analysis (read and score), runs (store once, the journal), reviews (explore and review
stored anomalies and incidents), models, alerts, streams (live), access (API tokens),
operations (schema, health).

Each takes the application object (:class:`app.vigil.Vigil`) first. No streamlit and no
HTTP here: every entry point calls these, so there is one path for each thing Vigil does.
Everything is re-exported here: ``services.notify(vigil, run_id)``.
"""

from app.scoring import file_sha256, read_dataset
from app.services.access import (
    add_token,
    list_tokens,
    revoke_token,
    token_holder,
)
from app.services.alerts import (
    AlertReport,
    notification_log,
    notify,
    notify_incident,
    preview_digest,
    retry_failed,
    send_test_email,
)
from app.services.analysis import (
    ACTIVE,
    MAX_WARNINGS,
    Analysis,
    Preview,
    analyze,
    analyze_upload,
    inspect_upload,
    prepare_run,
    preview,
    resolve_model,
    score_rows,
    summarize,
)
from app.services.models import (
    activate_model,
    list_models,
    load_model,
    rollback_model,
    train,
)
from app.services.operations import (
    health,
    upgrade_database,
)
from app.services.reviews import (
    anomalies_csv,
    count_anomalies,
    count_incidents,
    entity_counts,
    overview,
    query_anomalies,
    query_incidents,
    review,
    review_incidents,
)
from app.services.runs import (
    SaveReport,
    get_run,
    list_runs,
    replay,
    run_histogram,
    run_series,
    save,
    store,
)
from app.services.streams import (
    Ingested,
    StreamConflictError,
    alert_stream,
    ingest,
    latest_event_time,
    live_streams,
    store_stream_batch,
    stream_checkpoint,
)
from storage.anomalies import AnomalyFilter
from storage.incidents import IncidentFilter
from storage.schema import REVIEW_STATUSES

__all__ = [
    "ACTIVE",
    "AlertReport",
    "Analysis",
    "AnomalyFilter",
    "IncidentFilter",
    "Ingested",
    "MAX_WARNINGS",
    "Preview",
    "REVIEW_STATUSES",
    "SaveReport",
    "StreamConflictError",
    "activate_model",
    "add_token",
    "alert_stream",
    "analyze",
    "analyze_upload",
    "anomalies_csv",
    "count_anomalies",
    "count_incidents",
    "entity_counts",
    "file_sha256",
    "get_run",
    "health",
    "ingest",
    "inspect_upload",
    "latest_event_time",
    "list_models",
    "list_runs",
    "list_tokens",
    "live_streams",
    "load_model",
    "notification_log",
    "notify",
    "notify_incident",
    "overview",
    "prepare_run",
    "preview",
    "preview_digest",
    "query_anomalies",
    "query_incidents",
    "read_dataset",
    "replay",
    "resolve_model",
    "retry_failed",
    "review",
    "review_incidents",
    "revoke_token",
    "rollback_model",
    "run_histogram",
    "run_series",
    "save",
    "score_rows",
    "send_test_email",
    "store",
    "store_stream_batch",
    "stream_checkpoint",
    "summarize",
    "token_holder",
    "train",
    "upgrade_database",
]
