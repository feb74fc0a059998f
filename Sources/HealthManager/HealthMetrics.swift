import Prometheus

/// The health manager's metrics on its `/metrics`, each with its `# HELP` line.
enum HealthMetric {
    case leaseHeld, stateFailures, passDuration, decisions, alertsActive, instances, passes

    var descriptor: MetricNameDescriptor {
        let (metric, unit, help): (String, String, String) = switch self {
        case .leaseHeld: ("lease", "held", "1 while this health manager holds the lease and acts, 0 while it stands by")
        case .stateFailures: ("state_failures", "total", "Asks for the desired and actual state the controller did not answer")
        case .passDuration: ("pass_duration", "seconds", "Time of one decision pass over the state")
        case .decisions: ("decisions", "total", "Actions decided, by kind")
        case .alertsActive: ("alerts", "active", "Alerts active after the last pass")
        case .instances: ("instances", "", "Instances in the last state seen, by state")
        case .passes: ("passes", "total", "Decision passes made")
        }
        return MetricNameDescriptor(namespace: "cflike", subsystem: "health", metricName: metric, unitName: unit, helpText: help)
    }
}
