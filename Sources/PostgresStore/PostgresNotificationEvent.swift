/// What a LISTEN stream yields.
public enum PostgresNotificationEvent: Sendable, Equatable {
    /// A NOTIFY on one of the channels.
    case notification(channel: String, payload: String)
    /// The listener lost its connection and LISTENs again; notifications in between may be lost, so re-read state.
    case reconnected
}
