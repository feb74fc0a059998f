import CShimSupport
import Glibc

// Placeholder; the shim is being written.
_ = cflike_set_child_subreaper
exit(0)
