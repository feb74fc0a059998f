import PlatformModels

extension LogLine {
    /// The staging log lines (`STG`) of `text`, which may carry app and buildpack words: one
    /// line per line of text, each cleaned (``UntrustedText/Field/logMessage``), blank ones left out.
    static func staging(app: String, _ text: String, stream: Stream = .out, at timestamp: Int64) -> [LogLine] {
        text.split(whereSeparator: \.isNewline).compactMap { part in
            let message = UntrustedText.clean(String(part), as: .logMessage)
            guard !message.allSatisfy(\.isWhitespace) else { return nil }
            return LogLine(appGUID: app, timestamp: timestamp, sourceType: StagingProtocol.logSourceType, sourceInstance: "0",
                           messageType: stream, message: message)
        }
    }
}

extension StagingResult {
    /// The result with its failure message cleaned (``UntrustedText/Field/stagingError``): it
    /// carries the buildpack's last words and ends up in builds, alerts and terminals.
    func cleaned() -> StagingResult {
        guard var failure else { return self }
        failure.message = UntrustedText.clean(failure.message, as: .stagingError)
        var result = self
        result.failure = failure
        return result
    }
}
