extension Schema {
    /// The health manager's state in the controller's database.
    ///
    /// - `instances` may hold two rows for one index while a draining agent's instance waits for
    ///   its replacement to run, so the index is no longer unique. Each row carries the index's
    ///   crash count (copied to the instance that replaces a crashed one), the last crash and its
    ///   words, and why the index could not be placed.
    /// - `component_leases`: the health manager that holds `health-manager` acts (it takes the
    ///   lease through the internal health API); `health_managers` lists who asked, for status.
    ///   `IF NOT EXISTS` because the health manager once created this table itself; the
    ///   migration text stays as it ran.
    /// - `alerts`: raised and resolved by the health manager, one active row per fingerprint
    ///   (a hash of the labels), history kept after resolution and after the app is deleted.
    /// - `health_version`: bumped (with `NOTIFY cflike_health`) by everything the health
    ///   manager should react to at once; a sequence, so bumping never waits on a row lock.
    static let health = """
    ALTER TABLE instances DROP CONSTRAINT instances_index_unique;
    CREATE INDEX instances_process_index ON instances(process_guid, index);
    ALTER TABLE instances ADD COLUMN crash_count integer NOT NULL DEFAULT 0 CHECK (crash_count >= 0);
    ALTER TABLE instances ADD COLUMN last_crash_at double precision;
    ALTER TABLE instances ADD COLUMN exit_description text;
    ALTER TABLE instances ADD COLUMN placement_error text;
    ALTER TABLE agents ADD COLUMN draining boolean NOT NULL DEFAULT false;

    CREATE TABLE IF NOT EXISTS component_leases (
        name text PRIMARY KEY,
        holder text NOT NULL,
        expires_at timestamptz NOT NULL
    );
    CREATE TABLE health_managers (
        id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9.-]{0,62}$'),
        version text NOT NULL DEFAULT '',
        last_seen_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE alerts (
        id bigserial PRIMARY KEY,
        fingerprint text NOT NULL,
        name text NOT NULL,
        state text NOT NULL CHECK (state IN ('active', 'resolved')),
        labels jsonb NOT NULL,
        annotations jsonb NOT NULL,
        -- no foreign key: an alert's history outlives its app
        app_guid uuid,
        starts_at timestamptz NOT NULL DEFAULT now(),
        ends_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX alerts_active_fingerprint ON alerts(fingerprint) WHERE state = 'active';
    CREATE INDEX alerts_app ON alerts(app_guid);

    CREATE SEQUENCE health_version;
    CREATE FUNCTION cflike_bump_health() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM nextval('health_version');
        PERFORM pg_notify('cflike_health', '');
    END $$;
    -- A finished build may raise or resolve a staging alert.
    CREATE FUNCTION cflike_builds_finished() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM cflike_bump_health();
        RETURN NULL;
    END $$;
    CREATE TRIGGER builds_finished AFTER UPDATE OF state ON builds
        FOR EACH ROW WHEN (NEW.state IS DISTINCT FROM OLD.state) EXECUTE FUNCTION cflike_builds_finished();
    """
}
