-- Saved characters (/character): a reference file kept on a message the bot owns in the
-- server's character library thread, used by name in /video. Names are unique per owner (scope
-- 'me') and per server (scope 'server'), compared case-insensitively through name_key.
CREATE TABLE characters (
    id         INTEGER PRIMARY KEY,
    guild_id   INTEGER NOT NULL,
    owner_id   INTEGER NOT NULL,
    scope      TEXT    NOT NULL CHECK (scope IN ('me', 'server')),
    name       TEXT    NOT NULL,
    name_key   TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('image', 'video')),
    media_json TEXT    NOT NULL,
    voice_json TEXT,
    -- Where the files live: {"media": [channel, message, position], "voice": [...]}
    files_json TEXT    NOT NULL,
    created_at REAL    NOT NULL,
    updated_at REAL    NOT NULL
);
CREATE UNIQUE INDEX characters_own_names ON characters (guild_id, owner_id, name_key)
    WHERE scope = 'me';
CREATE UNIQUE INDEX characters_server_names ON characters (guild_id, name_key)
    WHERE scope = 'server';
CREATE INDEX characters_by_guild ON characters (guild_id, scope, name_key);

-- The thread each server's character files are posted in.
CREATE TABLE character_libraries (
    guild_id   INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL,
    created_at REAL    NOT NULL
);

-- Who besides moderators may save server characters.
CREATE TABLE character_settings (
    guild_id       INTEGER PRIMARY KEY,
    editor_role_id INTEGER,
    updated_at     REAL    NOT NULL
);

-- The prompt as the member wrote it ({fox}), for jobs whose sent prompt differs (labels).
CREATE TABLE job_prompts (
    job_id TEXT PRIMARY KEY REFERENCES jobs (id),
    prompt TEXT NOT NULL
);

-- Video threads whose members were told, once, how to ask the bot for a new video there.
CREATE TABLE thread_hints (
    thread_id  INTEGER PRIMARY KEY,
    created_at REAL    NOT NULL
);
