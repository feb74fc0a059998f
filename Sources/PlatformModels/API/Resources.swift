/// Links keyed by name (`self`, `space`, `start`, ...).
public typealias Links = [String: Link]

/// `/v3/organizations` resource.
public struct OrganizationResource: Codable, Sendable {
    public var guid: String
    public var createdAt: String
    public var updatedAt: String
    public var name: String
    public var suspended: Bool
    public var relationships: [String: ToOneRelationship]
    public var metadata: Metadata
    public var links: Links
    enum CodingKeys: String, CodingKey {
        case guid, createdAt = "created_at", updatedAt = "updated_at", name, suspended, relationships, metadata, links
    }
    public init(guid: String, createdAt: String, updatedAt: String, name: String, suspended: Bool,
                relationships: [String: ToOneRelationship], metadata: Metadata, links: Links) {
        self.guid = guid; self.createdAt = createdAt; self.updatedAt = updatedAt; self.name = name
        self.suspended = suspended; self.relationships = relationships; self.metadata = metadata; self.links = links
    }
}

/// `/v3/spaces` resource.
public struct SpaceResource: Codable, Sendable {
    public var guid: String
    public var createdAt: String
    public var updatedAt: String
    public var name: String
    public var relationships: [String: ToOneRelationship]
    public var metadata: Metadata
    public var links: Links
    enum CodingKeys: String, CodingKey {
        case guid, createdAt = "created_at", updatedAt = "updated_at", name, relationships, metadata, links
    }
    public init(guid: String, createdAt: String, updatedAt: String, name: String,
                relationships: [String: ToOneRelationship], metadata: Metadata, links: Links) {
        self.guid = guid; self.createdAt = createdAt; self.updatedAt = updatedAt; self.name = name
        self.relationships = relationships; self.metadata = metadata; self.links = links
    }
}

/// `/v3/users` resource.
public struct UserResource: Codable, Sendable {
    public var guid: String
    public var createdAt: String
    public var updatedAt: String
    public var username: String
    public var presentationName: String
    public var origin: String
    public var metadata: Metadata
    public var links: Links
    enum CodingKeys: String, CodingKey {
        case guid, createdAt = "created_at", updatedAt = "updated_at", username
        case presentationName = "presentation_name", origin, metadata, links
    }
    public init(guid: String, createdAt: String, updatedAt: String, username: String, origin: String,
                metadata: Metadata, links: Links) {
        self.guid = guid; self.createdAt = createdAt; self.updatedAt = updatedAt; self.username = username
        self.presentationName = username; self.origin = origin; self.metadata = metadata; self.links = links
    }
}

/// `/v3/roles` resource.
public struct RoleResource: Codable, Sendable {
    public var guid: String
    public var createdAt: String
    public var updatedAt: String
    public var type: String
    public var relationships: [String: ToOneRelationship]
    public var links: Links
    enum CodingKeys: String, CodingKey {
        case guid, createdAt = "created_at", updatedAt = "updated_at", type, relationships, links
    }
    public init(guid: String, createdAt: String, updatedAt: String, type: String,
                relationships: [String: ToOneRelationship], links: Links) {
        self.guid = guid; self.createdAt = createdAt; self.updatedAt = updatedAt; self.type = type
        self.relationships = relationships; self.links = links
    }
}

/// `lifecycle` of an app.
public struct Lifecycle: Codable, Sendable, Equatable {
    public struct Data: Codable, Sendable, Equatable {
        public var buildpacks: [String]?
        @NullCodable public var stack: String?
        public init(buildpacks: [String]? = nil, stack: String? = nil) {
            self.buildpacks = buildpacks
            self.stack = stack
        }
    }
    public var type: String
    public var data: Data
    public init(type: String = "buildpack", data: Data) {
        self.type = type
        self.data = data
    }
}

/// `/v3/apps` resource.
public struct AppResource: Codable, Sendable {
    public var guid: String
    public var createdAt: String
    public var updatedAt: String
    public var name: String
    public var state: String
    public var lifecycle: Lifecycle
    public var relationships: [String: ToOneRelationship]
    public var metadata: Metadata
    public var links: Links
    enum CodingKeys: String, CodingKey {
        case guid, createdAt = "created_at", updatedAt = "updated_at", name, state, lifecycle, relationships, metadata, links
    }
    public init(guid: String, createdAt: String, updatedAt: String, name: String, state: String, lifecycle: Lifecycle,
                relationships: [String: ToOneRelationship], metadata: Metadata, links: Links) {
        self.guid = guid; self.createdAt = createdAt; self.updatedAt = updatedAt; self.name = name; self.state = state
        self.lifecycle = lifecycle; self.relationships = relationships; self.metadata = metadata; self.links = links
    }
}

/// `health_check` of a process.
public struct HealthCheck: Codable, Sendable, Equatable {
    public struct Data: Codable, Sendable, Equatable {
        @NullCodable public var timeout: Int?
        @NullCodable public var invocationTimeout: Int?
        @NullCodable public var endpoint: String?
        enum CodingKeys: String, CodingKey { case timeout, invocationTimeout = "invocation_timeout", endpoint }
        public init(timeout: Int? = nil, invocationTimeout: Int? = nil, endpoint: String? = nil) {
            self.timeout = timeout
            self.invocationTimeout = invocationTimeout
            self.endpoint = endpoint
        }
    }
    public var type: String
    public var data: Data
    public init(type: String, data: Data) {
        self.type = type
        self.data = data
    }
}

/// `/v3/processes` resource.
public struct ProcessResource: Codable, Sendable {
    public var guid: String
    public var createdAt: String
    public var updatedAt: String
    public var type: String
    @NullCodable public var command: String?
    public var instances: Int
    public var memoryInMB: Int
    public var diskInMB: Int
    public var logRateLimitInBytesPerSecond: Int
    public var healthCheck: HealthCheck
    public var relationships: [String: ToOneRelationship]
    public var metadata: Metadata
    public var version: String
    public var links: Links
    enum CodingKeys: String, CodingKey {
        case guid, createdAt = "created_at", updatedAt = "updated_at", type, command, instances
        case memoryInMB = "memory_in_mb", diskInMB = "disk_in_mb"
        case logRateLimitInBytesPerSecond = "log_rate_limit_in_bytes_per_second"
        case healthCheck = "health_check", relationships, metadata, version, links
    }
    public init(guid: String, createdAt: String, updatedAt: String, type: String, command: String?, instances: Int,
                memoryInMB: Int, diskInMB: Int, healthCheck: HealthCheck, relationships: [String: ToOneRelationship],
                metadata: Metadata, version: String, links: Links) {
        self.guid = guid; self.createdAt = createdAt; self.updatedAt = updatedAt; self.type = type
        self.command = command; self.instances = instances; self.memoryInMB = memoryInMB; self.diskInMB = diskInMB
        self.logRateLimitInBytesPerSecond = -1; self.healthCheck = healthCheck; self.relationships = relationships
        self.metadata = metadata; self.version = version; self.links = links
    }
}

/// `/v3/domains` resource.
public struct DomainResource: Codable, Sendable {
    public var guid: String
    public var createdAt: String
    public var updatedAt: String
    public var name: String
    public var `internal`: Bool
    @NullCodable public var routerGroup: String?
    public var supportedProtocols: [String]
    public var relationships: [String: ToOneRelationship]
    public var metadata: Metadata
    public var links: Links
    enum CodingKeys: String, CodingKey {
        case guid, createdAt = "created_at", updatedAt = "updated_at", name, `internal`
        case routerGroup = "router_group", supportedProtocols = "supported_protocols", relationships, metadata, links
    }
    public init(guid: String, createdAt: String, updatedAt: String, name: String, internal: Bool,
                relationships: [String: ToOneRelationship], metadata: Metadata, links: Links) {
        self.guid = guid; self.createdAt = createdAt; self.updatedAt = updatedAt; self.name = name
        self.internal = `internal`; self.routerGroup = nil; self.supportedProtocols = ["http"]
        self.relationships = relationships; self.metadata = metadata; self.links = links
    }
}

/// One destination of a route.
public struct RouteDestination: Codable, Sendable, Equatable {
    public struct App: Codable, Sendable, Equatable {
        public struct Process: Codable, Sendable, Equatable {
            public var type: String
            public init(type: String) { self.type = type }
        }
        public var guid: String
        public var process: Process?
        public init(guid: String, process: Process?) {
            self.guid = guid
            self.process = process
        }
    }
    public var guid: String?
    public var app: App
    @NullCodable public var weight: Int?
    public var port: Int?
    public var `protocol`: String?
    enum CodingKeys: String, CodingKey { case guid, app, weight, port, `protocol` }
    public init(guid: String?, app: App, port: Int?, protocol: String?) {
        self.guid = guid; self.app = app; self.weight = nil; self.port = port; self.protocol = `protocol`
    }
}

/// `/v3/routes` resource.
public struct RouteResource: Codable, Sendable {
    public var guid: String
    public var createdAt: String
    public var updatedAt: String
    public var `protocol`: String
    public var host: String
    public var path: String
    @NullCodable public var port: Int?
    public var url: String
    public var destinations: [RouteDestination]
    public var relationships: [String: ToOneRelationship]
    public var metadata: Metadata
    public var links: Links
    enum CodingKeys: String, CodingKey {
        case guid, createdAt = "created_at", updatedAt = "updated_at", `protocol`, host, path, port, url
        case destinations, relationships, metadata, links
    }
    public init(guid: String, createdAt: String, updatedAt: String, host: String, path: String, url: String,
                destinations: [RouteDestination], relationships: [String: ToOneRelationship], metadata: Metadata, links: Links) {
        self.guid = guid; self.createdAt = createdAt; self.updatedAt = updatedAt; self.protocol = "http"
        self.host = host; self.path = path; self.port = nil; self.url = url; self.destinations = destinations
        self.relationships = relationships; self.metadata = metadata; self.links = links
    }
}

/// `/v3/routes/:guid/destinations` answer.
public struct RouteDestinationsResponse: Codable, Sendable {
    public var destinations: [RouteDestination]
    public var links: Links
    public init(destinations: [RouteDestination], links: Links) {
        self.destinations = destinations
        self.links = links
    }
}

/// `/v3/domains/:guid/route_reservations` answer: whether a route with the host and path asked
/// about exists on the domain (in any space).
public struct RouteReservation: Codable, Sendable {
    public var matchingRoute: Bool
    enum CodingKeys: String, CodingKey { case matchingRoute = "matching_route" }
    public init(matchingRoute: Bool) { self.matchingRoute = matchingRoute }
}

/// `/v3/stacks` resource.
public struct StackResource: Codable, Sendable {
    public var guid: String
    public var createdAt: String
    public var updatedAt: String
    public var name: String
    @NullCodable public var description: String?
    public var `default`: Bool
    public var metadata: Metadata
    public var links: Links
    enum CodingKeys: String, CodingKey {
        case guid, createdAt = "created_at", updatedAt = "updated_at", name, description, `default`, metadata, links
    }
    public init(guid: String, createdAt: String, updatedAt: String, name: String, description: String?, isDefault: Bool,
                metadata: Metadata, links: Links) {
        self.guid = guid; self.createdAt = createdAt; self.updatedAt = updatedAt; self.name = name
        self.description = description; self.default = isDefault; self.metadata = metadata; self.links = links
    }
}

/// `/v3/audit_events` resource.
public struct AuditEventResource: Codable, Sendable {
    public struct Party: Codable, Sendable, Equatable {
        public var guid: String
        public var type: String
        public var name: String
        public init(guid: String, type: String, name: String) {
            self.guid = guid; self.type = type; self.name = name
        }
    }
    public struct GuidRef: Codable, Sendable, Equatable {
        public var guid: String
        public init(guid: String) { self.guid = guid }
    }
    public var guid: String
    public var createdAt: String
    public var updatedAt: String
    public var type: String
    public var actor: Party
    public var target: Party
    public var data: JSONValue
    @NullCodable public var space: GuidRef?
    @NullCodable public var organization: GuidRef?
    public var links: Links
    enum CodingKeys: String, CodingKey {
        case guid, createdAt = "created_at", updatedAt = "updated_at", type, actor, target, data, space, organization, links
    }
    public init(guid: String, createdAt: String, type: String, actor: Party, target: Party, data: JSONValue,
                space: GuidRef?, organization: GuidRef?, links: Links) {
        self.guid = guid; self.createdAt = createdAt; self.updatedAt = createdAt; self.type = type; self.actor = actor
        self.target = target; self.data = data; self.space = space; self.organization = organization; self.links = links
    }
}

/// `/v3/jobs` resource (asynchronous deletes answer 202 with one).
public struct JobResource: Codable, Sendable {
    public var guid: String
    public var createdAt: String
    public var updatedAt: String
    public var operation: String
    public var state: String
    public var errors: [APIErrorDetail]
    public var warnings: [APIErrorDetail]
    public var links: Links
    enum CodingKeys: String, CodingKey {
        case guid, createdAt = "created_at", updatedAt = "updated_at", operation, state, errors, warnings, links
    }
    public init(guid: String, createdAt: String, updatedAt: String, operation: String, state: String,
                errors: [APIErrorDetail], links: Links) {
        self.guid = guid; self.createdAt = createdAt; self.updatedAt = updatedAt; self.operation = operation
        self.state = state; self.errors = errors; self.warnings = []; self.links = links
    }
}

/// `/v3/apps/:guid/environment_variables` resource.
public struct EnvironmentVariablesResource: Codable, Sendable {
    public var `var`: [String: String]
    public var links: Links
    public init(var variables: [String: String], links: Links) {
        self.var = variables
        self.links = links
    }
}

/// `/v3/packages` resource (type `bits`).
public struct PackageResource: Codable, Sendable {
    public struct Checksum: Codable, Sendable, Equatable {
        public var type: String
        @NullCodable public var value: String?
        public init(type: String = "sha256", value: String?) {
            self.type = type
            self.value = value
        }
    }
    public struct Data: Codable, Sendable, Equatable {
        public var checksum: Checksum
        @NullCodable public var error: String?
        public init(checksum: Checksum, error: String?) {
            self.checksum = checksum
            self.error = error
        }
    }
    public var guid: String
    public var createdAt: String
    public var updatedAt: String
    public var type: String
    public var data: Data
    public var state: String
    public var relationships: [String: ToOneRelationship]
    public var metadata: Metadata
    public var links: Links
    enum CodingKeys: String, CodingKey {
        case guid, createdAt = "created_at", updatedAt = "updated_at", type, data, state, relationships, metadata, links
    }
    public init(guid: String, createdAt: String, updatedAt: String, data: Data, state: String,
                relationships: [String: ToOneRelationship], metadata: Metadata, links: Links) {
        self.guid = guid; self.createdAt = createdAt; self.updatedAt = updatedAt; self.type = "bits"; self.data = data
        self.state = state; self.relationships = relationships; self.metadata = metadata; self.links = links
    }
}

/// `/v3/buildpacks` resource: a buildpack backed by a git URL (shown with credentials redacted).
public struct BuildpackResource: Codable, Sendable {
    public var guid: String
    public var createdAt: String
    public var updatedAt: String
    public var name: String
    public var state: String
    @NullCodable public var filename: String?
    @NullCodable public var stack: String?
    public var position: Int
    public var lifecycle: String
    public var enabled: Bool
    public var locked: Bool
    /// The git URL with any credentials replaced by `***` (platform extension).
    public var url: String
    public var metadata: Metadata
    public var links: Links
    enum CodingKeys: String, CodingKey {
        case guid, createdAt = "created_at", updatedAt = "updated_at", name, state, filename, stack, position, lifecycle
        case enabled, locked, url, metadata, links
    }
    public init(guid: String, createdAt: String, updatedAt: String, name: String, stack: String?, position: Int,
                enabled: Bool, locked: Bool, url: String, metadata: Metadata, links: Links) {
        self.guid = guid; self.createdAt = createdAt; self.updatedAt = updatedAt; self.name = name; self.state = "READY"
        self.filename = nil; self.stack = stack; self.position = position; self.lifecycle = "buildpack"; self.enabled = enabled
        self.locked = locked; self.url = url; self.metadata = metadata; self.links = links
    }
}

/// `/v3/droplets` resource.
public struct DropletResource: Codable, Sendable {
    public struct BuildpackInfo: Codable, Sendable, Equatable {
        public var name: String
        @NullCodable public var detectOutput: String?
        @NullCodable public var buildpackName: String?
        @NullCodable public var version: String?
        enum CodingKeys: String, CodingKey { case name, detectOutput = "detect_output", buildpackName = "buildpack_name", version }
        public init(name: String, detectOutput: String?, buildpackName: String?, version: String?) {
            self.name = name; self.detectOutput = detectOutput; self.buildpackName = buildpackName; self.version = version
        }
    }
    public var guid: String
    public var createdAt: String
    public var updatedAt: String
    public var state: String
    @NullCodable public var error: String?
    public var lifecycle: Lifecycle
    public var executionMetadata: String
    @NullCodable public var processTypes: [String: String]?
    public var checksum: PackageResource.Checksum
    public var buildpacks: [BuildpackInfo]
    @NullCodable public var stack: String?
    @NullCodable public var image: String?
    public var relationships: [String: ToOneRelationship]
    public var metadata: Metadata
    public var links: Links
    enum CodingKeys: String, CodingKey {
        case guid, createdAt = "created_at", updatedAt = "updated_at", state, error, lifecycle
        case executionMetadata = "execution_metadata", processTypes = "process_types", checksum, buildpacks, stack, image
        case relationships, metadata, links
    }
    public init(guid: String, createdAt: String, updatedAt: String, state: String, error: String?, processTypes: [String: String]?,
                checksum: String?, buildpacks: [BuildpackInfo], stack: String?, relationships: [String: ToOneRelationship],
                metadata: Metadata, links: Links) {
        self.guid = guid; self.createdAt = createdAt; self.updatedAt = updatedAt; self.state = state; self.error = error
        self.lifecycle = Lifecycle(type: "buildpack", data: .init()); self.executionMetadata = ""; self.processTypes = processTypes
        self.checksum = .init(value: checksum); self.buildpacks = buildpacks; self.stack = stack; self.image = nil
        self.relationships = relationships; self.metadata = metadata; self.links = links
    }
}

/// `/v3/builds` resource: one staging of a package into a droplet (`STAGING -> STAGED|FAILED`).
public struct BuildResource: Codable, Sendable {
    /// The user who asked for the build.
    public struct CreatedBy: Codable, Sendable, Equatable {
        public var guid: String
        public var name: String
        @NullCodable public var email: String?
        public init(guid: String, name: String, email: String? = nil) {
            self.guid = guid; self.name = name; self.email = email
        }
    }
    public var guid: String
    public var createdAt: String
    public var updatedAt: String
    public var state: String
    /// `<CF error name> - <message>` once FAILED, e.g. `NoAppDetectedError - ...`.
    @NullCodable public var error: String?
    /// The buildpacks as named (git URLs with credentials redacted) and the stack.
    public var lifecycle: Lifecycle
    public var package: ToOneRelationship.Data
    /// The droplet once STAGED.
    @NullCodable public var droplet: ToOneRelationship.Data?
    public var stagingMemoryInMB: Int
    public var stagingDiskInMB: Int
    public var createdBy: CreatedBy
    public var relationships: [String: ToOneRelationship]
    public var metadata: Metadata
    public var links: Links
    enum CodingKeys: String, CodingKey {
        case guid, createdAt = "created_at", updatedAt = "updated_at", state, error, lifecycle, package, droplet
        case stagingMemoryInMB = "staging_memory_in_mb", stagingDiskInMB = "staging_disk_in_mb", createdBy = "created_by"
        case relationships, metadata, links
    }
    public init(guid: String, createdAt: String, updatedAt: String, state: String, error: String?, lifecycle: Lifecycle,
                packageGuid: String, dropletGuid: String?, stagingMemoryInMB: Int, stagingDiskInMB: Int, createdBy: CreatedBy,
                relationships: [String: ToOneRelationship], metadata: Metadata, links: Links) {
        self.guid = guid; self.createdAt = createdAt; self.updatedAt = updatedAt; self.state = state; self.error = error
        self.lifecycle = lifecycle; self.package = .init(guid: packageGuid); self.droplet = dropletGuid.map(ToOneRelationship.Data.init(guid:))
        self.stagingMemoryInMB = stagingMemoryInMB; self.stagingDiskInMB = stagingDiskInMB; self.createdBy = createdBy
        self.relationships = relationships; self.metadata = metadata; self.links = links
    }
}

/// `GET|PATCH /v3/apps/:guid/relationships/current_droplet` answer.
public struct CurrentDropletRelationship: Codable, Sendable {
    public var data: ToOneRelationship.Data?
    public var links: Links
    public init(guid: String?, links: Links) {
        self.data = guid.map(ToOneRelationship.Data.init(guid:))
        self.links = links
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(data, forKey: .data)
        try c.encode(links, forKey: .links)
    }
}
