-- Hanzo Platform state (SQLite). Kept parallel to migrations/postgres.
-- UUIDs are hyphenated TEXT; timestamps are UTC ISO-8601 TEXT with six fractional
-- digits and a trailing 'Z' (fixed width, so they sort and compare as text);
-- JSON is TEXT; enums are stored by their names.

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE apps (
    id                     TEXT PRIMARY KEY,
    org                    TEXT NOT NULL REFERENCES orgs(name) ON DELETE CASCADE,
    name                   TEXT NOT NULL,
    repo                   TEXT NOT NULL,
    branch                 TEXT NOT NULL,
    runtime                TEXT NOT NULL,
    status                 TEXT NOT NULL,
    current_deployment_id  TEXT REFERENCES deployments(id) ON DELETE SET NULL,
    desired_deployment_id  TEXT REFERENCES deployments(id) ON DELETE SET NULL,
    instances              INTEGER NOT NULL,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    UNIQUE (org, name)
);
CREATE INDEX apps_repo ON apps(repo);

CREATE TABLE deployments (
    id            TEXT PRIMARY KEY,
    app_id        TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    number        INTEGER NOT NULL,
    source        TEXT NOT NULL,
    source_kind   TEXT NOT NULL,
    image_tag     TEXT NOT NULL,
    image_digest  TEXT,
    git_commit    TEXT NOT NULL,
    git_message   TEXT NOT NULL,
    status        TEXT NOT NULL,
    deployed_by   TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    completed_at  TEXT,
    url           TEXT NOT NULL,
    error         TEXT,
    manifest      TEXT,
    UNIQUE (app_id, number)
);
CREATE INDEX deployments_status ON deployments(status, started_at);

CREATE TABLE deployment_events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    deployment_id  TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL,
    message        TEXT NOT NULL,
    timestamp      TEXT NOT NULL
);
CREATE INDEX deployment_events_deployment ON deployment_events(deployment_id, seq);

CREATE TABLE build_logs (
    deployment_id  TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    at             TEXT NOT NULL,
    text           TEXT NOT NULL,
    PRIMARY KEY (deployment_id, seq)
);
CREATE INDEX build_logs_at ON build_logs(at);

CREATE TABLE env_vars (
    app_id  TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    name    TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (app_id, name)
);

-- Stored lowercase: a domain routes to at most one application.
CREATE TABLE domains (
    domain  TEXT PRIMARY KEY,
    app_id  TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE
);
CREATE INDEX domains_app ON domains(app_id);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    global_admin  INTEGER NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE memberships (
    user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    org      TEXT NOT NULL REFERENCES orgs(name) ON DELETE CASCADE,
    role     TEXT NOT NULL,
    PRIMARY KEY (user_id, org)
);
CREATE INDEX memberships_org ON memberships(org);

CREATE TABLE api_tokens (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    secret_sha256  TEXT NOT NULL UNIQUE,
    created_at     TEXT NOT NULL,
    expires_at     TEXT,
    revoked_at     TEXT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

-- No foreign keys: the audit log outlives what it describes.
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    timestamp   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    user_email  TEXT NOT NULL,
    org         TEXT NOT NULL,
    app         TEXT,
    action      TEXT NOT NULL,
    details     TEXT NOT NULL,
    ip_address  TEXT,
    user_agent  TEXT
);
CREATE INDEX audit_log_timestamp ON audit_log(timestamp);
CREATE INDEX audit_log_org ON audit_log(org, timestamp);

CREATE TABLE webhook_deliveries (
    provider     TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    PRIMARY KEY (provider, delivery_id)
);
