/// The header fields the router reads, rewrites or strips; every other field is `.other` and
/// passes through byte for byte.
enum FieldKind: UInt8, Sendable {
    case other
    case host
    case contentLength
    case transferEncoding
    case connection
    case keepAlive
    case proxyConnection
    case te
    case trailer
    case upgrade
    case proxyAuthorization
    case proxyAuthenticate
    case xForwardedFor
    case xForwardedProto
    case xForwardedHost
    case xVcapRequestID
    case xRequestID
    case xCFApplicationID
    case xCFInstanceIndex
    case xCFInstanceID
    case xCFAppInstance
    case cookie
    case setCookie
    case userAgent

    /// Classifies the field name `p[start..<start+len]` (already checked to be a token).
    @inline(__always)
    static func classify(_ p: UnsafeRawBufferPointer, _ start: Int, _ len: Int) -> FieldKind {
        @inline(__always) func eq(_ s: StaticString) -> Bool { HTTPSyntax.equalsLowercase(p, start, len, s) }
        switch len {
        case 2: return eq("te") ? .te : .other
        case 4: return eq("host") ? .host : .other
        case 6: return eq("cookie") ? .cookie : .other
        case 7:
            if eq("upgrade") { return .upgrade }
            if eq("trailer") { return .trailer }
            return .other
        case 10:
            switch HTTPSyntax.lower(p[start]) {
            case UInt8(ascii: "c"): return eq("connection") ? .connection : .other
            case UInt8(ascii: "k"): return eq("keep-alive") ? .keepAlive : .other
            case UInt8(ascii: "s"): return eq("set-cookie") ? .setCookie : .other
            case UInt8(ascii: "u"): return eq("user-agent") ? .userAgent : .other
            default: return .other
            }
        case 12: return eq("x-request-id") ? .xRequestID : .other
        case 14: return eq("content-length") ? .contentLength : .other
        case 15:
            if eq("x-forwarded-for") { return .xForwardedFor }
            if eq("x-cf-instanceid") { return .xCFInstanceID }
            return .other
        case 16:
            if eq("x-forwarded-host") { return .xForwardedHost }
            if eq("proxy-connection") { return .proxyConnection }
            return .other
        case 17:
            switch HTTPSyntax.lower(p[start]) {
            case UInt8(ascii: "t"): return eq("transfer-encoding") ? .transferEncoding : .other
            case UInt8(ascii: "x"):
                if eq("x-forwarded-proto") { return .xForwardedProto }
                if eq("x-vcap-request-id") { return .xVcapRequestID }
                if eq("x-cf-app-instance") { return .xCFAppInstance }
                return .other
            default: return .other
            }
        case 18:
            if eq("x-cf-applicationid") { return .xCFApplicationID }
            if eq("x-cf-instanceindex") { return .xCFInstanceIndex }
            if eq("proxy-authenticate") { return .proxyAuthenticate }
            return .other
        case 19: return eq("proxy-authorization") ? .proxyAuthorization : .other
        default: return .other
        }
    }

    /// Fields that describe one connection (RFC 9110 7.6.1) or that only the router may set;
    /// they never travel from a client to a backend as sent.
    var droppedFromRequests: Bool {
        switch self {
        case .connection, .keepAlive, .proxyConnection, .te, .trailer, .proxyAuthorization, .proxyAuthenticate,
             .xForwardedFor, .xForwardedProto, .xForwardedHost, .xVcapRequestID, .xCFApplicationID,
             .xCFInstanceIndex, .xCFInstanceID, .xCFAppInstance:
            return true
        default:
            return false
        }
    }

    /// Connection-scoped fields a backend's answer loses on the way to the client.
    var droppedFromResponses: Bool {
        switch self {
        case .connection, .keepAlive, .proxyConnection, .te, .proxyAuthenticate: return true
        default: return false
        }
    }

    /// Fields a `Connection` header may not remove: they frame the message or route it, and
    /// dropping them would change how the next hop splits the byte stream.
    var protectedFromConnectionListing: Bool {
        switch self {
        case .host, .contentLength, .transferEncoding: return true
        default: return false
        }
    }
}
