import PostgresStore

/// The platform's schema, forward-only. Never edit a released migration: add a new one.
enum Schema {
    static let migrations: [Migration] = [
        Migration(version: 1, name: "core", sql: core),
        Migration(version: 2, name: "packages", sql: packages),
        Migration(version: 3, name: "buildpacks", sql: buildpacks),
        Migration(version: 4, name: "droplets", sql: droplets),
        Migration(version: 5, name: "agents", sql: agents),
        Migration(version: 6, name: "builds", sql: builds),
        Migration(version: 7, name: "resource_pool", sql: resourcePool),
        Migration(version: 8, name: "health", sql: health),
        Migration(version: 9, name: "routers", sql: routers),
    ]

    /// Staging: builds (a package staged into a droplet by a stager), the stagers that claim
    /// them and each app's buildpack cache. A build is queued while STAGING and unclaimed,
    /// claimed by one stager (`FOR UPDATE SKIP LOCKED`), and ends STAGED or FAILED. The blobs a
    /// stager uploads for a build are recorded on it until the build ends, so the janitor keeps
    /// them; a STAGED build hands its droplet blob to a droplet row and its cache to the app.
    private static let builds = """
    CREATE TABLE stagers (
        id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9.-]{0,62}$'),
        stager_version text NOT NULL DEFAULT '',
        stacks text[] NOT NULL DEFAULT '{}',
        -- builds the stager reported working on, and how many more it offered, at its last poll
        running integer NOT NULL DEFAULT 0,
        free_slots integer NOT NULL DEFAULT 0,
        first_seen_at timestamptz NOT NULL DEFAULT now(),
        last_seen_at timestamptz NOT NULL DEFAULT now(),
        -- end of the long-poll it has parked (a parked stager is alive though it sends nothing)
        poll_deadline timestamptz
    );

    CREATE TABLE builds (
        id bigserial UNIQUE,
        guid uuid PRIMARY KEY,
        app_guid uuid NOT NULL REFERENCES apps(guid) ON DELETE CASCADE,
        -- no foreign key: the build's history keeps naming its package
        package_guid uuid NOT NULL,
        state text NOT NULL DEFAULT 'STAGING' CHECK (state IN ('STAGING', 'STAGED', 'FAILED')),
        error text,
        lifecycle_type text NOT NULL DEFAULT 'buildpack',
        -- as shown: admin buildpack names and git URLs with credentials redacted
        buildpacks text[] NOT NULL DEFAULT '{}',
        stack text NOT NULL,
        -- what the stager fetches (StagingBuildpack JSON, real URLs), sealed with AES-GCM
        staging_buildpacks_sealed text NOT NULL,
        detect boolean NOT NULL,
        staging_memory_in_mb integer NOT NULL CHECK (staging_memory_in_mb > 0),
        staging_disk_in_mb integer NOT NULL CHECK (staging_disk_in_mb > 0),
        timeout_seconds integer NOT NULL CHECK (timeout_seconds > 0),
        droplet_guid uuid REFERENCES droplets(guid) ON DELETE SET NULL,
        created_by_guid text NOT NULL,
        created_by_name text NOT NULL,
        claimed_by text,
        claimed_at timestamptz,
        -- the app's cache when the build was claimed (what GET .../cache serves)
        input_cache_sha256 text,
        droplet_blob_sha256 text,
        droplet_size_bytes bigint,
        cache_blob_sha256 text,
        cache_size_bytes bigint,
        labels jsonb NOT NULL DEFAULT '{}',
        annotations jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX builds_app ON builds(app_guid);
    CREATE INDEX builds_queue ON builds(created_at, id) WHERE state = 'STAGING' AND claimed_by IS NULL;
    CREATE INDEX builds_claimed ON builds(claimed_by) WHERE state = 'STAGING';

    -- The app's buildpacks as given, sealed, when one of them is a URL with credentials
    -- (apps.buildpacks then holds the redacted form); and its buildpack cache.
    ALTER TABLE apps ADD COLUMN buildpacks_sealed text;
    ALTER TABLE apps ADD COLUMN buildpack_cache_sha256 text;
    ALTER TABLE apps ADD COLUMN buildpack_cache_size_bytes bigint;
    """

    /// Execution agents, the instances placed on them (desired), what they report (actual) and
    /// app logs. Any change to an agent's instances bumps its `assignments_version` and wakes its
    /// long-poll (`NOTIFY cflike_assignments`, payload the agent id), whatever made the change:
    /// placement, or a cascade from deleting an app, space or organization.
    private static let agents = """
    CREATE TABLE agents (
        id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9.-]{0,62}$'),
        host_address text NOT NULL,
        capacity_memory_mb integer NOT NULL CHECK (capacity_memory_mb >= 0),
        capacity_disk_mb integer NOT NULL CHECK (capacity_disk_mb >= 0),
        capacity_instances integer NOT NULL CHECK (capacity_instances >= 0),
        available_memory_mb integer NOT NULL CHECK (available_memory_mb >= 0),
        available_disk_mb integer NOT NULL CHECK (available_disk_mb >= 0),
        available_instances integer NOT NULL CHECK (available_instances >= 0),
        stacks text[] NOT NULL DEFAULT '{}',
        agent_version text NOT NULL DEFAULT '',
        state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'lost')),
        assignments_version bigint NOT NULL DEFAULT 1,
        registered_at timestamptz NOT NULL DEFAULT now(),
        last_heartbeat_at timestamptz NOT NULL DEFAULT now()
    );

    -- Desired placement. `spec` is the assignment as the agent receives it, fixed when the
    -- instance is created (environment, command, limits change at the next restart, as in CF).
    -- droplet_guid has no foreign key: a deleted droplet leaves its instances for placement to replace.
    CREATE TABLE instances (
        guid uuid PRIMARY KEY,
        process_guid uuid NOT NULL REFERENCES processes(guid) ON DELETE CASCADE,
        app_guid uuid NOT NULL REFERENCES apps(guid) ON DELETE CASCADE,
        index integer NOT NULL CHECK (index >= 0),
        agent_id text REFERENCES agents(id) ON DELETE SET NULL,
        process_version uuid NOT NULL,
        droplet_guid uuid NOT NULL,
        memory_mb integer NOT NULL,
        disk_mb integer NOT NULL,
        spec jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT instances_index_unique UNIQUE (process_guid, index)
    );
    CREATE INDEX instances_agent ON instances(agent_id);
    CREATE INDEX instances_app ON instances(app_guid);

    CREATE FUNCTION cflike_bump_agents(ids text[]) RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
        agent text;
    BEGIN
        -- One agent at a time in id order, so concurrent bumps lock rows in the same order.
        FOR agent IN SELECT DISTINCT u FROM unnest(ids) AS u WHERE u IS NOT NULL ORDER BY 1 LOOP
            UPDATE agents SET assignments_version = assignments_version + 1 WHERE id = agent;
            PERFORM pg_notify('cflike_assignments', agent);
        END LOOP;
    END $$;

    CREATE FUNCTION cflike_instances_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM cflike_bump_agents(ARRAY(SELECT agent_id FROM new_rows));
        RETURN NULL;
    END $$;
    CREATE FUNCTION cflike_instances_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM cflike_bump_agents(ARRAY(SELECT agent_id FROM old_rows));
        RETURN NULL;
    END $$;
    CREATE FUNCTION cflike_instances_updated() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM cflike_bump_agents(ARRAY(
            SELECT o.agent_id FROM old_rows o JOIN new_rows n ON n.guid = o.guid
              WHERE o.agent_id IS DISTINCT FROM n.agent_id OR o.spec IS DISTINCT FROM n.spec
            UNION ALL
            SELECT n.agent_id FROM old_rows o JOIN new_rows n ON n.guid = o.guid
              WHERE o.agent_id IS DISTINCT FROM n.agent_id OR o.spec IS DISTINCT FROM n.spec));
        RETURN NULL;
    END $$;
    CREATE TRIGGER instances_inserted AFTER INSERT ON instances REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION cflike_instances_inserted();
    CREATE TRIGGER instances_deleted AFTER DELETE ON instances REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION cflike_instances_deleted();
    CREATE TRIGGER instances_updated AFTER UPDATE ON instances REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION cflike_instances_updated();

    -- Actual state, as the agents last reported it (a heartbeat replaces its agent's rows).
    -- No foreign keys to apps or processes: an agent may still run what was deleted.
    CREATE TABLE instance_reports (
        instance_guid uuid PRIMARY KEY,
        agent_id text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
        process_guid uuid NOT NULL,
        app_guid uuid NOT NULL,
        index integer NOT NULL,
        state text NOT NULL CHECK (state IN ('STARTING', 'RUNNING', 'CRASHED', 'STOPPING', 'DOWN')),
        host_port integer,
        container_address text,
        container_port integer NOT NULL,
        since double precision NOT NULL,
        uptime double precision NOT NULL DEFAULT 0,
        cpu double precision NOT NULL DEFAULT 0,
        mem bigint NOT NULL DEFAULT 0,
        disk bigint NOT NULL DEFAULT 0,
        mem_quota bigint NOT NULL DEFAULT 0,
        disk_quota bigint NOT NULL DEFAULT 0,
        crash_count integer NOT NULL DEFAULT 0,
        details text,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX instance_reports_agent ON instance_reports(agent_id);
    CREATE INDEX instance_reports_process ON instance_reports(process_guid);

    -- The newest lines of each app (controller.app_log_lines), kept across restarts.
    CREATE TABLE app_log_lines (
        id bigserial PRIMARY KEY,
        app_guid uuid NOT NULL REFERENCES apps(guid) ON DELETE CASCADE,
        timestamp bigint NOT NULL,
        source_type text NOT NULL,
        source_instance text NOT NULL,
        message_type text NOT NULL CHECK (message_type IN ('OUT', 'ERR')),
        message text NOT NULL
    );
    CREATE INDEX app_log_lines_app ON app_log_lines(app_guid, id);
    """

    private static let droplets = """
    CREATE TABLE droplets (
        id bigserial UNIQUE,
        guid uuid PRIMARY KEY,
        app_guid uuid NOT NULL REFERENCES apps(guid) ON DELETE CASCADE,
        package_guid uuid REFERENCES packages(guid) ON DELETE SET NULL,
        state text NOT NULL DEFAULT 'AWAITING_UPLOAD'
            CHECK (state IN ('AWAITING_UPLOAD', 'PROCESSING_UPLOAD', 'STAGING', 'STAGED', 'FAILED', 'EXPIRED')),
        error text,
        process_types jsonb,
        buildpacks jsonb NOT NULL DEFAULT '[]',
        stack text,
        blob_sha256 text,
        size_bytes bigint,
        labels jsonb NOT NULL DEFAULT '{}',
        annotations jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX droplets_app ON droplets(app_guid);
    ALTER TABLE apps ADD CONSTRAINT apps_current_droplet FOREIGN KEY (droplet_guid) REFERENCES droplets(guid) ON DELETE SET NULL;
    """

    private static let buildpacks = """
    CREATE TABLE buildpacks (
        id bigserial UNIQUE,
        guid uuid PRIMARY KEY,
        name text NOT NULL CONSTRAINT buildpacks_name_unique UNIQUE,
        position integer NOT NULL CHECK (position >= 1),
        enabled boolean NOT NULL DEFAULT true,
        locked boolean NOT NULL DEFAULT false,
        stack text,
        -- the URL with credentials redacted, for display; the real one only sealed (AES-GCM)
        url_display text NOT NULL,
        url_sealed text NOT NULL,
        labels jsonb NOT NULL DEFAULT '{}',
        annotations jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    """

    private static let packages = """
    CREATE TABLE packages (
        id bigserial UNIQUE,
        guid uuid PRIMARY KEY,
        app_guid uuid NOT NULL REFERENCES apps(guid) ON DELETE CASCADE,
        type text NOT NULL DEFAULT 'bits' CHECK (type IN ('bits')),
        state text NOT NULL DEFAULT 'AWAITING_UPLOAD'
            CHECK (state IN ('AWAITING_UPLOAD', 'PROCESSING_UPLOAD', 'READY', 'FAILED', 'EXPIRED')),
        blob_sha256 text,
        size_bytes bigint,
        error text,
        labels jsonb NOT NULL DEFAULT '{}',
        annotations jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX packages_app ON packages(app_guid);
    CREATE INDEX packages_blob ON packages(blob_sha256);
    """

    private static let core = """
    CREATE TABLE users (
        id bigserial UNIQUE,
        guid uuid PRIMARY KEY,
        username text NOT NULL,
        origin text NOT NULL DEFAULT 'uaa',
        password_hash text NOT NULL,
        admin boolean NOT NULL DEFAULT false,
        -- access tokens issued before this instant are refused (password change, revocation)
        tokens_valid_after timestamptz NOT NULL DEFAULT 'epoch',
        labels jsonb NOT NULL DEFAULT '{}',
        annotations jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT users_username_unique UNIQUE (origin, username)
    );

    CREATE TABLE refresh_tokens (
        jti text PRIMARY KEY,
        token_hash text NOT NULL UNIQUE,
        user_guid uuid NOT NULL REFERENCES users(guid) ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz
    );
    CREATE INDEX refresh_tokens_user ON refresh_tokens(user_guid);

    CREATE TABLE organizations (
        id bigserial UNIQUE,
        guid uuid PRIMARY KEY,
        name text NOT NULL CONSTRAINT organizations_name_unique UNIQUE,
        suspended boolean NOT NULL DEFAULT false,
        labels jsonb NOT NULL DEFAULT '{}',
        annotations jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE spaces (
        id bigserial UNIQUE,
        guid uuid PRIMARY KEY,
        name text NOT NULL,
        organization_guid uuid NOT NULL REFERENCES organizations(guid) ON DELETE CASCADE,
        labels jsonb NOT NULL DEFAULT '{}',
        annotations jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT spaces_name_unique UNIQUE (organization_guid, name)
    );

    CREATE TABLE roles (
        id bigserial UNIQUE,
        guid uuid PRIMARY KEY,
        type text NOT NULL CHECK (type IN ('organization_manager', 'organization_user', 'organization_auditor',
                                           'organization_billing_manager',
                                           'space_developer', 'space_manager', 'space_auditor', 'space_supporter')),
        user_guid uuid NOT NULL REFERENCES users(guid) ON DELETE CASCADE,
        organization_guid uuid REFERENCES organizations(guid) ON DELETE CASCADE,
        space_guid uuid REFERENCES spaces(guid) ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((organization_guid IS NULL) <> (space_guid IS NULL))
    );
    CREATE UNIQUE INDEX roles_org_unique ON roles(type, user_guid, organization_guid) WHERE organization_guid IS NOT NULL;
    CREATE UNIQUE INDEX roles_space_unique ON roles(type, user_guid, space_guid) WHERE space_guid IS NOT NULL;
    CREATE INDEX roles_user ON roles(user_guid);

    CREATE TABLE stacks (
        id bigserial UNIQUE,
        guid uuid PRIMARY KEY,
        name text NOT NULL CONSTRAINT stacks_name_unique UNIQUE,
        description text,
        is_default boolean NOT NULL DEFAULT false,
        labels jsonb NOT NULL DEFAULT '{}',
        annotations jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE apps (
        id bigserial UNIQUE,
        guid uuid PRIMARY KEY,
        name text NOT NULL,
        space_guid uuid NOT NULL REFERENCES spaces(guid) ON DELETE CASCADE,
        state text NOT NULL DEFAULT 'STOPPED' CHECK (state IN ('STARTED', 'STOPPED')),
        lifecycle_type text NOT NULL DEFAULT 'buildpack',
        buildpacks text[] NOT NULL DEFAULT '{}',
        stack text,
        environment_variables jsonb NOT NULL DEFAULT '{}',
        droplet_guid uuid,
        labels jsonb NOT NULL DEFAULT '{}',
        annotations jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT apps_name_unique UNIQUE (space_guid, name)
    );

    CREATE TABLE processes (
        id bigserial UNIQUE,
        guid uuid PRIMARY KEY,
        app_guid uuid NOT NULL REFERENCES apps(guid) ON DELETE CASCADE,
        type text NOT NULL,
        command text,
        instances integer NOT NULL DEFAULT 1 CHECK (instances >= 0),
        memory_in_mb integer NOT NULL CHECK (memory_in_mb > 0),
        disk_in_mb integer NOT NULL CHECK (disk_in_mb > 0),
        health_check_type text NOT NULL DEFAULT 'port' CHECK (health_check_type IN ('port', 'http', 'process')),
        health_check_endpoint text,
        health_check_timeout integer,
        health_check_invocation_timeout integer,
        version uuid NOT NULL,
        labels jsonb NOT NULL DEFAULT '{}',
        annotations jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT processes_type_unique UNIQUE (app_guid, type)
    );

    CREATE TABLE domains (
        id bigserial UNIQUE,
        guid uuid PRIMARY KEY,
        name text NOT NULL CONSTRAINT domains_name_unique UNIQUE,
        internal boolean NOT NULL DEFAULT false,
        organization_guid uuid REFERENCES organizations(guid) ON DELETE CASCADE,
        labels jsonb NOT NULL DEFAULT '{}',
        annotations jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );

    -- One space owns a host of a domain (any path under it): claiming another tenant's host
    -- fails on this primary key, whatever the application code does.
    CREATE TABLE route_hosts (
        domain_guid uuid NOT NULL REFERENCES domains(guid) ON DELETE CASCADE,
        host text NOT NULL,
        space_guid uuid NOT NULL REFERENCES spaces(guid) ON DELETE CASCADE,
        PRIMARY KEY (domain_guid, host)
    );

    CREATE TABLE routes (
        id bigserial UNIQUE,
        guid uuid PRIMARY KEY,
        host text NOT NULL,
        path text NOT NULL DEFAULT '',
        domain_guid uuid NOT NULL REFERENCES domains(guid) ON DELETE CASCADE,
        space_guid uuid NOT NULL REFERENCES spaces(guid) ON DELETE CASCADE,
        labels jsonb NOT NULL DEFAULT '{}',
        annotations jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT routes_host_unique UNIQUE (domain_guid, host, path),
        CONSTRAINT routes_host_owner FOREIGN KEY (domain_guid, host) REFERENCES route_hosts(domain_guid, host)
    );

    CREATE TABLE route_destinations (
        id bigserial UNIQUE,
        guid uuid PRIMARY KEY,
        route_guid uuid NOT NULL REFERENCES routes(guid) ON DELETE CASCADE,
        app_guid uuid NOT NULL REFERENCES apps(guid) ON DELETE CASCADE,
        process_type text NOT NULL DEFAULT 'web',
        port integer NOT NULL DEFAULT 8080,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT route_destinations_unique UNIQUE (route_guid, app_guid, process_type, port)
    );

    CREATE TABLE audit_events (
        id bigserial UNIQUE,
        guid uuid PRIMARY KEY,
        type text NOT NULL,
        actor_guid text NOT NULL,
        actor_type text NOT NULL,
        actor_name text NOT NULL,
        target_guid text NOT NULL,
        target_type text NOT NULL,
        target_name text NOT NULL,
        space_guid uuid,
        organization_guid uuid,
        data jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX audit_events_target ON audit_events(target_guid);
    CREATE INDEX audit_events_space ON audit_events(space_guid);

    CREATE TABLE jobs (
        id bigserial UNIQUE,
        guid uuid PRIMARY KEY,
        operation text NOT NULL,
        state text NOT NULL,
        user_guid uuid,
        errors jsonb NOT NULL DEFAULT '[]',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );

    -- Bumped on every change the route table depends on; routers long-poll on it.
    CREATE TABLE platform_versions (
        name text PRIMARY KEY,
        version bigint NOT NULL
    );
    INSERT INTO platform_versions(name, version) VALUES ('routes', 1);

    CREATE INDEX apps_space ON apps(space_guid);
    CREATE INDEX spaces_org ON spaces(organization_guid);
    CREATE INDEX routes_space ON routes(space_guid);
    """
}
