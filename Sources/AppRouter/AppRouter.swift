/// The HTTP router.
public enum AppRouterModule {}
