#ifndef CSHIMSUPPORT_H
#define CSHIMSUPPORT_H

/// Marks the calling process a child subreaper (PR_SET_CHILD_SUBREAPER): orphaned
/// descendants are re-parented to it, so it can reap a container's init process.
/// Returns 0 or -1 with errno set.
int cflike_set_child_subreaper(void);

/// Asks the kernel to send `signal` to the calling process when its parent dies
/// (PR_SET_PDEATHSIG). Returns 0 or -1 with errno set.
int cflike_set_parent_death_signal(int signal);

#endif
