extension Schema {
    /// Routers as their route-table polls describe them (`GET /internal/v1/routes` with
    /// `router_id`): one row per router, upserted by every poll that names one, rows silent for
    /// a day deleted by the next upsert. `poll_deadline` is when the wait of the poll it parked
    /// ends: a parked router sends nothing but is alive until then.
    static let routers = """
    CREATE TABLE routers (
        id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9.-]{0,62}$'),
        version text NOT NULL DEFAULT '',
        listen_address text NOT NULL DEFAULT '',
        -- the route table version it served and how long it had not matched ours, at its last poll
        table_version bigint CHECK (table_version >= 0),
        table_age_seconds integer CHECK (table_age_seconds >= 0),
        last_seen_at timestamptz NOT NULL DEFAULT now(),
        poll_deadline timestamptz
    );
    """
}
