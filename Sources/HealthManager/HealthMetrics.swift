import Prometheus

/// The health manager's metrics on its `/metrics`, each with its `# HELP` line.
enum HealthMetrics {
    private static func named(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "cflike", subsystem: "health", metricName: metric, unitName: unit, helpText: help)
    }

    static var leaseHeld: MetricNameDescriptor {
        named("lease", "held", "1 while this health manager holds the lease and acts, 0 while it stands by")
    }
    static var stateFailures: MetricNameDescriptor {
        named("state_failures", "total", "Asks for the desired and actual state the controller did not answer")
    }
    static var passDuration: MetricNameDescriptor {
        named("pass_duration", "seconds", "Time of one decision pass over the state")
    }
    static var decisions: MetricNameDescriptor {
        named("decisions", "total", "Actions decided, by kind")
    }
    static var alertsActive: MetricNameDescriptor {
        named("alerts", "active", "Alerts active after the last pass")
    }
    static var instances: MetricNameDescriptor {
        named("instances", "", "Instances in the last state seen, by state")
    }
    static var passes: MetricNameDescriptor {
        named("passes", "total", "Decision passes made")
    }
}
