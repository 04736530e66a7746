-- Jobs: one row per request a user made. A job is ours; its task is the API's.
CREATE TABLE jobs (
    id                   TEXT PRIMARY KEY,
    guild_id             INTEGER NOT NULL,
    channel_id           INTEGER NOT NULL,
    user_id              INTEGER NOT NULL,
    origin               TEXT    NOT NULL CHECK (origin IN ('command', 'reroll', 'reply')),
    parent_job_id        TEXT REFERENCES jobs (id),
    state                TEXT    NOT NULL CHECK (state IN (
                             'reserved', 'submitting', 'submitted', 'running',
                             'completed', 'delivered', 'failed', 'cancelled')),
    request_json         TEXT    NOT NULL,
    references_json      TEXT    NOT NULL,
    cost_seconds         INTEGER NOT NULL CHECK (cost_seconds >= 0),
    quota_day            TEXT    NOT NULL,
    webhook_token_hash   TEXT UNIQUE,  -- sha256 of the per-job webhook URL token
    task_id              TEXT UNIQUE,
    submit_attempts      INTEGER NOT NULL DEFAULT 0,
    poll_count           INTEGER NOT NULL DEFAULT 0,
    delivery_attempts    INTEGER NOT NULL DEFAULT 0,
    deadline_at          REAL    NOT NULL,
    result_url           TEXT,
    error                TEXT,
    status_message_id    INTEGER,
    thread_id            INTEGER,
    delivered_message_id INTEGER,
    created_at           REAL    NOT NULL,
    submitting_at        REAL,
    submitted_at         REAL,
    running_at           REAL,
    completed_at         REAL,
    delivered_at         REAL,
    failed_at            REAL,
    cancelled_at         REAL,
    updated_at           REAL    NOT NULL
);
CREATE INDEX jobs_unfinished ON jobs (state)
    WHERE state NOT IN ('delivered', 'failed', 'cancelled');
CREATE INDEX jobs_by_user ON jobs (guild_id, user_id, created_at);
CREATE INDEX jobs_by_thread ON jobs (thread_id, created_at);
CREATE INDEX jobs_by_guild ON jobs (guild_id, created_at);

-- Quota ledger: append-only. `seconds` is the signed change to a member's usage of `day`
-- (reserve +cost, refund -cost, grant -extra, reset -used, commit 0 as a marker).
CREATE TABLE quota_ledger (
    id         INTEGER PRIMARY KEY,
    guild_id   INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    job_id     TEXT REFERENCES jobs (id),
    kind       TEXT    NOT NULL CHECK (kind IN ('reserve', 'commit', 'refund', 'grant', 'reset')),
    seconds    INTEGER NOT NULL,
    day        TEXT    NOT NULL,
    actor_id   INTEGER,
    note       TEXT,
    created_at REAL    NOT NULL
);
-- A job reserves, commits and refunds at most once each: the database itself says so.
CREATE UNIQUE INDEX ledger_once_per_job ON quota_ledger (job_id, kind) WHERE job_id IS NOT NULL;
CREATE INDEX ledger_by_user_day ON quota_ledger (guild_id, user_id, day);
CREATE INDEX ledger_by_guild_day ON quota_ledger (guild_id, day);

CREATE TABLE guild_settings (
    guild_id         INTEGER PRIMARY KEY,
    daily_seconds    INTEGER,
    max_concurrent   INTEGER,
    max_duration     INTEGER,
    max_resolution   TEXT,
    exempt_role_id   INTEGER,
    moderator_role_id INTEGER,
    paused           INTEGER NOT NULL DEFAULT 0,
    pause_reason     TEXT,
    nsfw_only        INTEGER NOT NULL DEFAULT 0,
    updated_at       REAL    NOT NULL
);

CREATE TABLE user_overrides (
    guild_id       INTEGER NOT NULL,
    user_id        INTEGER NOT NULL,
    daily_seconds  INTEGER,
    max_concurrent INTEGER,
    updated_at     REAL    NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE bans (
    guild_id   INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    reason     TEXT,
    actor_id   INTEGER NOT NULL,
    created_at REAL    NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE channel_rules (
    guild_id   INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    rule       TEXT    NOT NULL CHECK (rule IN ('allow', 'deny')),
    PRIMARY KEY (guild_id, channel_id)
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    actor_id    INTEGER NOT NULL,
    action      TEXT    NOT NULL,
    target      TEXT,
    before_json TEXT,
    after_json  TEXT,
    created_at  REAL    NOT NULL
);
CREATE INDEX audit_by_guild ON audit_log (guild_id, id);
