// swift-tools-version:6.2
import PackageDescription

// One set of compiler settings for every Swift target.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "cf-like",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cf-like", targets: ["cf-like"]),
        .executable(name: "cf-like-admin", targets: ["cf-like-admin"]),
        .executable(name: "cf-like-server", targets: ["cf-like-server"]),
        .executable(name: "cf-like-shim", targets: ["cf-like-shim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/multipart-kit.git", from: "4.7.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
    ],
    targets: [
        // MARK: System libraries (modulemap + shim header only)
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CLibGit2", pkgConfig: "libgit2", providers: [.apt(["libgit2-dev"])]),
        .systemLibrary(name: "CLibArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        // prctl(2) and friends are variadic in glibc, so Swift cannot call them directly.
        .target(name: "CShimSupport"),

        // MARK: Wrappers (know nothing of the platform's domain)
        .target(
            name: "PostgresStore",
            dependencies: [
                "CLibPQ",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "GitFetch",
            dependencies: [
                "CLibGit2",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Archives",
            dependencies: [
                "CLibArchive",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Containers",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Shared
        // Pure decision rules more than one component applies; no I/O, no dependencies.
        .target(
            name: "PlatformRules",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PlatformModels",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "PlatformClient",
            dependencies: [
                "PlatformModels",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CLIKit",
            dependencies: [
                "Archives",
                "PlatformClient",
                "PlatformModels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Components
        .target(
            name: "CloudController",
            dependencies: [
                "Archives",
                "GitFetch",
                "PostgresStore",
                "PlatformModels",
                "PlatformRules",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "Stager",
            dependencies: [
                "Archives",
                "Containers",
                "GitFetch",
                "PlatformClient",
                "PlatformModels",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ExecutionAgent",
            dependencies: [
                "Archives",
                "Containers",
                "PlatformClient",
                "PlatformModels",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HealthManager",
            dependencies: [
                "PlatformClient",
                "PlatformModels",
                "PlatformRules",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AppRouter",
            dependencies: [
                "PlatformClient",
                "PlatformModels",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Executables (wiring only)
        // The per-container shim: owns a container's stdio and exit status and outlives the agent.
        .executableTarget(
            name: "cf-like-shim",
            dependencies: ["CShimSupport"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "cf-like",
            dependencies: [
                "CLIKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "cf-like-admin",
            dependencies: [
                "CLIKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "cf-like-server",
            dependencies: [
                "AppRouter",
                "CloudController",
                "ExecutionAgent",
                "HealthManager",
                "PlatformModels",
                "PostgresStore",
                "Stager",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Test support
        .target(
            name: "TestSupport",
            dependencies: [
                "PostgresStore",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),

        // MARK: Tests
        .testTarget(
            name: "PostgresStoreTests",
            dependencies: ["PostgresStore", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GitFetchTests",
            dependencies: ["GitFetch", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ArchivesTests",
            dependencies: ["Archives", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ContainersTests",
            dependencies: ["Containers"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StagerTests",
            dependencies: [
                "Stager",
                "Archives",
                "Containers",
                "PlatformModels",
                "TestSupport",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ExecutionAgentTests",
            dependencies: [
                "ExecutionAgent",
                "Containers",
                "PlatformModels",
                "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HealthManagerTests",
            dependencies: [
                "HealthManager", "PlatformModels",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AppRouterTests",
            dependencies: [
                "AppRouter",
                "PlatformModels",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CLIKitTests",
            dependencies: ["CLIKit", "PlatformClient", "PlatformModels"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PlatformModelsTests",
            dependencies: ["PlatformModels"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PlatformRulesTests",
            dependencies: ["PlatformRules"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CloudControllerTests",
            dependencies: [
                "CloudController",
                "HealthManager",
                "PlatformModels",
                "PlatformRules",
                "PostgresStore",
                "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
