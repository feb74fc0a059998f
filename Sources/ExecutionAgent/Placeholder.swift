/// The execution agent (DEA).
public enum ExecutionAgentModule {}
