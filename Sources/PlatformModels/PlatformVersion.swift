/// The platform's version, reported by `/v3/info` and every component.
public enum PlatformVersion {
    public static let current = "0.1.0"
}
