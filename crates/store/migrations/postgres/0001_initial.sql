-- Hanzo Platform state (PostgreSQL). Kept parallel to migrations/sqlite.
-- Timestamps are TIMESTAMPTZ (UTC), UUIDs are UUID, JSON is JSONB, enums are
-- stored by their names.

CREATE TABLE orgs (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE apps (
    id                     UUID PRIMARY KEY,
    org                    TEXT NOT NULL REFERENCES orgs(name) ON DELETE CASCADE,
    name                   TEXT NOT NULL,
    repo                   TEXT NOT NULL,
    branch                 TEXT NOT NULL,
    runtime                TEXT NOT NULL,
    status                 TEXT NOT NULL,
    current_deployment_id  UUID,
    desired_deployment_id  UUID,
    instances              BIGINT NOT NULL,
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL,
    UNIQUE (org, name)
);
CREATE INDEX apps_repo ON apps(repo);

CREATE TABLE deployments (
    id            UUID PRIMARY KEY,
    app_id        UUID NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    number        BIGINT NOT NULL,
    source        JSONB NOT NULL,
    source_kind   TEXT NOT NULL,
    image_tag     TEXT NOT NULL,
    image_digest  TEXT,
    git_commit    TEXT NOT NULL,
    git_message   TEXT NOT NULL,
    status        TEXT NOT NULL,
    deployed_by   TEXT NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    completed_at  TIMESTAMPTZ,
    url           TEXT NOT NULL,
    error         TEXT,
    manifest      JSONB,
    UNIQUE (app_id, number)
);
CREATE INDEX deployments_status ON deployments(status, started_at);

ALTER TABLE apps
    ADD CONSTRAINT apps_current_deployment_fk FOREIGN KEY (current_deployment_id)
        REFERENCES deployments(id) ON DELETE SET NULL,
    ADD CONSTRAINT apps_desired_deployment_fk FOREIGN KEY (desired_deployment_id)
        REFERENCES deployments(id) ON DELETE SET NULL;

CREATE TABLE deployment_events (
    seq            BIGSERIAL PRIMARY KEY,
    id             UUID NOT NULL UNIQUE,
    deployment_id  UUID NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL,
    message        TEXT NOT NULL,
    timestamp      TIMESTAMPTZ NOT NULL
);
CREATE INDEX deployment_events_deployment ON deployment_events(deployment_id, seq);

CREATE TABLE build_logs (
    deployment_id  UUID NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    seq            BIGINT NOT NULL,
    at             TIMESTAMPTZ NOT NULL,
    text           TEXT NOT NULL,
    PRIMARY KEY (deployment_id, seq)
);
CREATE INDEX build_logs_at ON build_logs(at);

CREATE TABLE env_vars (
    app_id  UUID NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    name    TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (app_id, name)
);

-- Stored lowercase: a domain routes to at most one application.
CREATE TABLE domains (
    domain  TEXT PRIMARY KEY,
    app_id  UUID NOT NULL REFERENCES apps(id) ON DELETE CASCADE
);
CREATE INDEX domains_app ON domains(app_id);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    global_admin  BOOLEAN NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE memberships (
    user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    org      TEXT NOT NULL REFERENCES orgs(name) ON DELETE CASCADE,
    role     TEXT NOT NULL,
    PRIMARY KEY (user_id, org)
);
CREATE INDEX memberships_org ON memberships(org);

CREATE TABLE api_tokens (
    id             UUID PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    secret_sha256  TEXT NOT NULL UNIQUE,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ,
    revoked_at     TIMESTAMPTZ
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

-- No foreign keys: the audit log outlives what it describes.
CREATE TABLE audit_log (
    seq         BIGSERIAL PRIMARY KEY,
    id          UUID NOT NULL UNIQUE,
    timestamp   TIMESTAMPTZ NOT NULL,
    user_id     TEXT NOT NULL,
    user_email  TEXT NOT NULL,
    org         TEXT NOT NULL,
    app         TEXT,
    action      TEXT NOT NULL,
    details     JSONB NOT NULL,
    ip_address  TEXT,
    user_agent  TEXT
);
CREATE INDEX audit_log_timestamp ON audit_log(timestamp);
CREATE INDEX audit_log_org ON audit_log(org, timestamp);

CREATE TABLE webhook_deliveries (
    provider     TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, delivery_id)
);
