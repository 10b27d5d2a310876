-- GET /admin/events?user_id=&type= (issue 9): with only auth_events_user_at,
-- a user + type filter reads every event of the user and sorts them, which
-- is slow for a busy account (a service user logging in all day). This
-- index answers it in (at, id) order directly, cursor included.
-- auth_events is append-only, so the cost is one more index insert per
-- event.
CREATE INDEX IF NOT EXISTS auth_events_user_type_at ON auth_events (user_id, type, at DESC, id DESC);
