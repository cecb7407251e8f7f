-- One row per run of a cron service: when it was due, when it ran, how it ended.
CREATE TABLE cron_runs (
    id             UUID PRIMARY KEY,
    app_id         UUID NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    deployment_id  UUID NOT NULL,
    service        TEXT NOT NULL,
    scheduled_at   TIMESTAMPTZ NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ,
    exit_code      BIGINT,
    status         TEXT NOT NULL,
    log_tail       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX cron_runs_by_app ON cron_runs (app_id, started_at);
CREATE INDEX cron_runs_by_status ON cron_runs (status);
