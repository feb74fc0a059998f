/// A relationship given in a request: `{"data": {"guid": ...}}`.
public struct RelationshipRequest: Codable, Sendable, Equatable {
    public struct Data: Codable, Sendable, Equatable {
        public var guid: String?
        public var username: String?
        public var origin: String?
        public init(guid: String? = nil, username: String? = nil, origin: String? = nil) {
            self.guid = guid; self.username = username; self.origin = origin
        }
    }
    public var data: Data
    public init(guid: String) { self.data = Data(guid: guid) }
    public init(username: String) { self.data = Data(username: username) }
}

/// Metadata in PATCH bodies: a null value deletes that key.
public struct MetadataPatch: Codable, Sendable, Equatable {
    public var labels: [String: String?]?
    public var annotations: [String: String?]?
    public init(labels: [String: String?]? = nil, annotations: [String: String?]? = nil) {
        self.labels = labels
        self.annotations = annotations
    }
}

/// `POST /v3/organizations`.
public struct CreateOrganizationRequest: Codable, Sendable {
    public var name: String
    public var suspended: Bool?
    public var metadata: MetadataPatch?
    public init(name: String, suspended: Bool? = nil, metadata: MetadataPatch? = nil) {
        self.name = name; self.suspended = suspended; self.metadata = metadata
    }
}

/// `PATCH /v3/organizations/:guid` and `PATCH /v3/spaces/:guid`.
public struct RenameRequest: Codable, Sendable {
    public var name: String?
    public var suspended: Bool?
    public var metadata: MetadataPatch?
    public init(name: String? = nil, suspended: Bool? = nil, metadata: MetadataPatch? = nil) {
        self.name = name; self.suspended = suspended; self.metadata = metadata
    }
}

/// `POST /v3/spaces`.
public struct CreateSpaceRequest: Codable, Sendable {
    public struct Relationships: Codable, Sendable {
        public var organization: RelationshipRequest
        public init(organization: RelationshipRequest) { self.organization = organization }
    }
    public var name: String
    public var relationships: Relationships
    public var metadata: MetadataPatch?
    public init(name: String, organizationGuid: String, metadata: MetadataPatch? = nil) {
        self.name = name
        self.relationships = Relationships(organization: RelationshipRequest(guid: organizationGuid))
        self.metadata = metadata
    }
}

/// `POST /v3/users` (platform extension: username and password are kept by the CC itself).
public struct CreateUserRequest: Codable, Sendable {
    public var username: String
    public var password: String
    public var admin: Bool?
    public var metadata: MetadataPatch?
    public init(username: String, password: String, admin: Bool? = nil) {
        self.username = username; self.password = password; self.admin = admin; self.metadata = nil
    }
}

/// `PATCH /v3/users/:guid`. A user changing their own password (not an admin) also sends
/// `old_password`, as with UAA's password change.
public struct UpdateUserRequest: Codable, Sendable {
    public var password: String?
    public var oldPassword: String?
    public var metadata: MetadataPatch?
    enum CodingKeys: String, CodingKey { case password, oldPassword = "old_password", metadata }
    public init(password: String? = nil, oldPassword: String? = nil, metadata: MetadataPatch? = nil) {
        self.password = password; self.oldPassword = oldPassword; self.metadata = metadata
    }
}

/// `POST /v3/roles`.
public struct CreateRoleRequest: Codable, Sendable {
    public struct Relationships: Codable, Sendable {
        public var user: RelationshipRequest
        public var organization: RelationshipRequest?
        public var space: RelationshipRequest?
        public init(user: RelationshipRequest, organization: RelationshipRequest? = nil, space: RelationshipRequest? = nil) {
            self.user = user; self.organization = organization; self.space = space
        }
    }
    public var type: String
    public var relationships: Relationships
    public init(type: String, relationships: Relationships) {
        self.type = type; self.relationships = relationships
    }
}

/// `POST /v3/apps`.
public struct CreateAppRequest: Codable, Sendable {
    public struct Relationships: Codable, Sendable {
        public var space: RelationshipRequest
        public init(space: RelationshipRequest) { self.space = space }
    }
    public var name: String
    public var relationships: Relationships
    public var environmentVariables: [String: String]?
    public var lifecycle: Lifecycle?
    public var metadata: MetadataPatch?
    enum CodingKeys: String, CodingKey {
        case name, relationships, environmentVariables = "environment_variables", lifecycle, metadata
    }
    public init(name: String, spaceGuid: String, environmentVariables: [String: String]? = nil, lifecycle: Lifecycle? = nil) {
        self.name = name
        self.relationships = Relationships(space: RelationshipRequest(guid: spaceGuid))
        self.environmentVariables = environmentVariables
        self.lifecycle = lifecycle
        self.metadata = nil
    }
}

/// `PATCH /v3/apps/:guid`.
public struct UpdateAppRequest: Codable, Sendable {
    public var name: String?
    public var lifecycle: Lifecycle?
    public var metadata: MetadataPatch?
    public init(name: String? = nil, lifecycle: Lifecycle? = nil, metadata: MetadataPatch? = nil) {
        self.name = name; self.lifecycle = lifecycle; self.metadata = metadata
    }
}

/// `PATCH /v3/apps/:guid/environment_variables`: a null value removes the variable.
public struct EnvironmentVariablesPatch: Codable, Sendable {
    public var `var`: [String: String?]
    public init(var variables: [String: String?]) { self.var = variables }
}

/// `POST /v3/processes/:guid/actions/scale`.
public struct ScaleRequest: Codable, Sendable {
    public var instances: Int?
    public var memoryInMB: Int?
    public var diskInMB: Int?
    enum CodingKeys: String, CodingKey { case instances, memoryInMB = "memory_in_mb", diskInMB = "disk_in_mb" }
    public init(instances: Int? = nil, memoryInMB: Int? = nil, diskInMB: Int? = nil) {
        self.instances = instances; self.memoryInMB = memoryInMB; self.diskInMB = diskInMB
    }
}

/// `PATCH /v3/processes/:guid`.
public struct UpdateProcessRequest: Codable, Sendable {
    public struct HealthCheckPatch: Codable, Sendable {
        public struct Data: Codable, Sendable {
            public var timeout: Int?
            public var invocationTimeout: Int?
            public var endpoint: String?
            enum CodingKeys: String, CodingKey { case timeout, invocationTimeout = "invocation_timeout", endpoint }
            public init(timeout: Int? = nil, invocationTimeout: Int? = nil, endpoint: String? = nil) {
                self.timeout = timeout; self.invocationTimeout = invocationTimeout; self.endpoint = endpoint
            }
        }
        public var type: String?
        public var data: Data?
        public init(type: String? = nil, data: Data? = nil) { self.type = type; self.data = data }
    }
    public var command: String?
    public var healthCheck: HealthCheckPatch?
    public var metadata: MetadataPatch?
    enum CodingKeys: String, CodingKey { case command, healthCheck = "health_check", metadata }
    public init(command: String? = nil, healthCheck: HealthCheckPatch? = nil) {
        self.command = command; self.healthCheck = healthCheck; self.metadata = nil
    }
}

/// `POST /v3/domains`.
public struct CreateDomainRequest: Codable, Sendable {
    public struct Relationships: Codable, Sendable {
        public var organization: RelationshipRequest?
        public init(organization: RelationshipRequest?) { self.organization = organization }
    }
    public var name: String
    public var `internal`: Bool?
    public var relationships: Relationships?
    public var metadata: MetadataPatch?
    public init(name: String, organizationGuid: String? = nil) {
        self.name = name
        self.internal = nil
        self.relationships = organizationGuid.map { Relationships(organization: RelationshipRequest(guid: $0)) }
        self.metadata = nil
    }
}

/// `POST /v3/routes`.
public struct CreateRouteRequest: Codable, Sendable {
    public struct Relationships: Codable, Sendable {
        public var space: RelationshipRequest
        public var domain: RelationshipRequest
        public init(space: RelationshipRequest, domain: RelationshipRequest) { self.space = space; self.domain = domain }
    }
    public var host: String?
    public var path: String?
    public var relationships: Relationships
    public var metadata: MetadataPatch?
    public init(host: String?, path: String? = nil, spaceGuid: String, domainGuid: String) {
        self.host = host; self.path = path
        self.relationships = Relationships(space: RelationshipRequest(guid: spaceGuid), domain: RelationshipRequest(guid: domainGuid))
        self.metadata = nil
    }
}

/// `POST|PATCH /v3/routes/:guid/destinations`.
public struct DestinationsRequest: Codable, Sendable {
    public var destinations: [RouteDestination]
    public init(destinations: [RouteDestination]) { self.destinations = destinations }
}

/// `PATCH` bodies that only carry metadata.
public struct MetadataOnlyRequest: Codable, Sendable {
    public var metadata: MetadataPatch?
    public init(metadata: MetadataPatch?) { self.metadata = metadata }
}

/// `POST /v3/packages`.
public struct CreatePackageRequest: Codable, Sendable {
    public struct Relationships: Codable, Sendable {
        public var app: RelationshipRequest
        public init(app: RelationshipRequest) { self.app = app }
    }
    public var type: String
    public var relationships: Relationships
    public var metadata: MetadataPatch?
    public init(appGuid: String) {
        self.type = "bits"
        self.relationships = Relationships(app: RelationshipRequest(guid: appGuid))
        self.metadata = nil
    }
}

/// `POST /v3/buildpacks` and `PATCH /v3/buildpacks/:guid` (platform extension: `url` is a git
/// URL with an optional `#branch`, `#tag` or `#commit`).
public struct BuildpackRequest: Codable, Sendable {
    public var name: String?
    public var url: String?
    public var position: Int?
    public var enabled: Bool?
    public var locked: Bool?
    public var stack: String?
    public var metadata: MetadataPatch?
    public init(name: String? = nil, url: String? = nil, position: Int? = nil, enabled: Bool? = nil, locked: Bool? = nil) {
        self.name = name; self.url = url; self.position = position; self.enabled = enabled; self.locked = locked
        self.stack = nil; self.metadata = nil
    }
}

/// `POST /v3/droplets`: a droplet whose bits are uploaded directly (no staging).
public struct CreateDropletRequest: Codable, Sendable {
    public struct Relationships: Codable, Sendable {
        public var app: RelationshipRequest
        public init(app: RelationshipRequest) { self.app = app }
    }
    public var relationships: Relationships
    public var processTypes: [String: String]?
    public var metadata: MetadataPatch?
    enum CodingKeys: String, CodingKey { case relationships, processTypes = "process_types", metadata }
    public init(appGuid: String, processTypes: [String: String]?) {
        self.relationships = Relationships(app: RelationshipRequest(guid: appGuid))
        self.processTypes = processTypes
        self.metadata = nil
    }
}

/// `POST /v3/builds`: stage a READY package. Without `lifecycle.data.buildpacks` the app's own
/// buildpacks apply, and without those every enabled admin buildpack is tried in position order.
public struct CreateBuildRequest: Codable, Sendable {
    public struct PackageRef: Codable, Sendable {
        public var guid: String
        public init(guid: String) { self.guid = guid }
    }
    public var package: PackageRef
    public var lifecycle: Lifecycle?
    public var stagingMemoryInMB: Int?
    public var stagingDiskInMB: Int?
    /// Accepted for CF clients and ignored: staging logs are not rate-limited per build.
    public var stagingLogRateLimitBytesPerSecond: Int?
    public var metadata: MetadataPatch?
    enum CodingKeys: String, CodingKey {
        case package, lifecycle, stagingMemoryInMB = "staging_memory_in_mb", stagingDiskInMB = "staging_disk_in_mb"
        case stagingLogRateLimitBytesPerSecond = "staging_log_rate_limit_bytes_per_second", metadata
    }
    public init(packageGuid: String, lifecycle: Lifecycle? = nil, stagingMemoryInMB: Int? = nil, stagingDiskInMB: Int? = nil) {
        self.package = PackageRef(guid: packageGuid)
        self.lifecycle = lifecycle
        self.stagingMemoryInMB = stagingMemoryInMB
        self.stagingDiskInMB = stagingDiskInMB
        self.stagingLogRateLimitBytesPerSecond = nil
        self.metadata = nil
    }
}

/// `PATCH /v3/apps/:guid/relationships/current_droplet`.
public struct SetCurrentDropletRequest: Codable, Sendable {
    public var data: RelationshipRequest.Data
    public init(guid: String) { self.data = .init(guid: guid) }
}
