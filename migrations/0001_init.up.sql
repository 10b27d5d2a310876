-- sessionhub schema v1. Forward-only: never edit a released file; add a new
-- numbered one.

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    email          text NOT NULL CHECK (email <> ''),
    email_verified boolean NOT NULL DEFAULT false,
    name           text NOT NULL DEFAULT '',
    -- PHC string "$argon2id$v=19$m=…,t=…,p=…$salt$hash"; NULL for accounts
    -- that only log in with Google.
    password_hash  text,
    scopes         text[] NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- Emails are unique case-insensitively: Bob@x.io and bob@x.io are one account.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

CREATE TABLE user_identities (
    provider       text NOT NULL,
    subject        text NOT NULL,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email          text NOT NULL DEFAULT '',
    email_verified boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, subject)
);
CREATE INDEX user_identities_user_id ON user_identities (user_id);

CREATE TABLE sessions (
    id                  text PRIMARY KEY,
    user_id             uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind                text NOT NULL CHECK (kind IN ('browser', 'refresh', 'service')),
    -- SHA-256 of the secret; the secret itself is never stored.
    secret_hash         bytea NOT NULL CHECK (length(secret_hash) = 32),
    csrf_token          text NOT NULL,
    scopes              text[] NOT NULL DEFAULT '{}',
    device              text NOT NULL DEFAULT '',
    ip                  text NOT NULL DEFAULT '',
    user_agent          text NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL,
    last_seen_at        timestamptz NOT NULL,
    expires_at          timestamptz NOT NULL,
    absolute_expires_at timestamptz NOT NULL,
    revoked_at          timestamptz,
    revoke_reason       text CHECK (revoke_reason IN ('logout', 'logout_all', 'revoked',
        'password_change', 'admin', 'refresh_reuse', 'expired')),
    CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL))
);
CREATE INDEX sessions_user_live ON sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_live_expires ON sessions (expires_at) WHERE revoked_at IS NULL;
CREATE INDEX sessions_created_at ON sessions (created_at);
CREATE INDEX sessions_revoked_at ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- One row per refresh token ever issued to a refresh-kind session (the
-- device's family). Only hashes are stored.
CREATE TABLE refresh_tokens (
    id           text PRIMARY KEY,
    session_id   text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash   bytea NOT NULL CHECK (length(token_hash) = 32),
    parent_id    text REFERENCES refresh_tokens (id),
    created_at   timestamptz NOT NULL,
    -- Set when this token was exchanged for its successor.
    rotated_at   timestamptz,
    successor_id text REFERENCES refresh_tokens (id),
    -- The successor token sealed with a key derived from this token's
    -- secret, so a retry within the grace window can be answered with the
    -- same successor without the server ever holding it in the clear.
    successor_sealed bytea
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

-- The audit log: append-only.
CREATE TABLE auth_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    type       text NOT NULL CHECK (type IN ('signup', 'login_succeeded', 'login_failed',
        'session_created', 'session_revoked', 'refresh_rotated', 'refresh_reuse',
        'password_changed', 'identity_linked', 'admin_action')),
    user_id    uuid,
    session_id text,
    ip         text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT '',
    detail     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(detail) = 'object')
);
CREATE INDEX auth_events_at ON auth_events (at DESC, id DESC);
CREATE INDEX auth_events_user_at ON auth_events (user_id, at DESC, id DESC);
CREATE INDEX auth_events_type_at ON auth_events (type, at DESC, id DESC);

CREATE FUNCTION auth_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'auth_events is append-only';
END;
$$;
CREATE TRIGGER auth_events_no_update BEFORE UPDATE OR DELETE ON auth_events
    FOR EACH ROW EXECUTE FUNCTION auth_events_append_only();
