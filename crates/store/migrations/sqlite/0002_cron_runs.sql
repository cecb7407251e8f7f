-- One row per run of a cron service: when it was due, when it ran, how it ended.
CREATE TABLE cron_runs (
    id             TEXT PRIMARY KEY,
    app_id         TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    deployment_id  TEXT NOT NULL,
    service        TEXT NOT NULL,
    scheduled_at   TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    exit_code      INTEGER,
    status         TEXT NOT NULL,
    log_tail       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX cron_runs_by_app ON cron_runs (app_id, started_at);
CREATE INDEX cron_runs_by_status ON cron_runs (status);
