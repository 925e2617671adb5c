-- Guardrail schema, version 1 (SQLite).
-- Instants are INTEGER microseconds since the Unix epoch, UTC.
-- Booleans are INTEGER 0 or 1.

CREATE TABLE owners (
    id         TEXT PRIMARY KEY,
    active     INTEGER NOT NULL,
    key_hash   BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE vaults (
    id            TEXT PRIMARY KEY,
    owner_id      TEXT NOT NULL REFERENCES owners (id),
    name          TEXT NOT NULL,
    plan          TEXT NOT NULL,
    machine_limit INTEGER NOT NULL,
    ip_allowlist  TEXT,
    created_at    INTEGER NOT NULL
);
CREATE INDEX vaults_owner ON vaults (owner_id);

CREATE TABLE tokens (
    id              TEXT PRIMARY KEY,
    vault_id        TEXT NOT NULL REFERENCES vaults (id),
    hash            BLOB NOT NULL UNIQUE,
    machine_name    TEXT NOT NULL,
    description     TEXT,
    lifetime_months INTEGER NOT NULL,
    lifetime_days   INTEGER NOT NULL,
    lifetime_hours  INTEGER NOT NULL,
    guardrails      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    state           TEXT NOT NULL
);
CREATE INDEX tokens_vault ON tokens (vault_id, created_at);

CREATE TABLE machines (
    id          TEXT PRIMARY KEY,
    vault_id    TEXT NOT NULL REFERENCES vaults (id),
    name        TEXT NOT NULL,
    description TEXT,
    public_key  BLOB NOT NULL,
    state       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    guardrails  TEXT NOT NULL,
    token_id    TEXT NOT NULL
);
CREATE INDEX machines_vault ON machines (vault_id, created_at);
-- The sweeper's two queries: purge due (any state) and expiry due (not yet marked).
CREATE INDEX machines_expiry ON machines (expires_at);
CREATE INDEX machines_unexpired_expiry ON machines (expires_at) WHERE state <> 'expired';

CREATE TABLE extensions (
    machine_id          TEXT NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    seq                 INTEGER NOT NULL,
    previous_expires_at INTEGER NOT NULL,
    new_expires_at      INTEGER NOT NULL,
    applied_by          TEXT NOT NULL,
    applied_at          INTEGER NOT NULL,
    reason              TEXT,
    reverted            INTEGER NOT NULL,
    PRIMARY KEY (machine_id, seq)
);

CREATE TABLE projects (
    id         TEXT PRIMARY KEY,
    vault_id   TEXT NOT NULL REFERENCES vaults (id),
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX projects_vault ON projects (vault_id, name);

CREATE TABLE project_members (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    machine_id TEXT NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, machine_id)
);
CREATE INDEX project_members_machine ON project_members (machine_id);

CREATE TABLE secrets (
    id          TEXT PRIMARY KEY,
    vault_id    TEXT NOT NULL REFERENCES vaults (id),
    project_id  TEXT NOT NULL REFERENCES projects (id),
    name        TEXT NOT NULL,
    value_type  TEXT NOT NULL,
    field_names TEXT,
    ciphertext  BLOB NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX secrets_vault ON secrets (vault_id, project_id, name);

CREATE TABLE grants (
    secret_id  TEXT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    machine_id TEXT NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (secret_id, machine_id)
);
CREATE INDEX grants_machine ON grants (machine_id);

-- No foreign key to secrets: a deleted secret's read version stays so that polling can
-- report it as deleted.
CREATE TABLE secret_reads (
    machine_id TEXT NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    secret_id  TEXT NOT NULL,
    version    INTEGER NOT NULL,
    read_at    INTEGER NOT NULL,
    PRIMARY KEY (machine_id, secret_id)
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    vault_id    TEXT NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT,
    action      TEXT NOT NULL,
    severity    TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    source_ip   TEXT,
    detail      TEXT NOT NULL,
    count       INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX audit_log_vault ON audit_log (vault_id, id);
CREATE INDEX audit_log_vault_action ON audit_log (vault_id, action, id);

CREATE TABLE audit_coalesce (
    key      TEXT PRIMARY KEY,
    audit_id INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    last_at  INTEGER NOT NULL
);
CREATE INDEX audit_coalesce_last_at ON audit_coalesce (last_at);

CREATE TABLE nonces (
    machine_id TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    keep_until INTEGER NOT NULL,
    PRIMARY KEY (machine_id, nonce)
);
CREATE INDEX nonces_keep_until ON nonces (keep_until);

CREATE TABLE lockouts (
    key               TEXT PRIMARY KEY,
    failures          INTEGER NOT NULL,
    first_failure_at  INTEGER,
    locked_until      INTEGER,
    keep_until        INTEGER NOT NULL
);
CREATE INDEX lockouts_keep_until ON lockouts (keep_until);

CREATE TABLE webhooks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    vault_id   TEXT NOT NULL REFERENCES vaults (id),
    url        TEXT NOT NULL,
    actions    TEXT NOT NULL,
    secret     BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX webhooks_vault ON webhooks (vault_id);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
