#ifndef CSHIMSUPPORT_H
#define CSHIMSUPPORT_H

#include <sys/types.h>

/// Marks the calling process a child subreaper (PR_SET_CHILD_SUBREAPER): orphaned
/// descendants are re-parented to it, so it can reap a container's init process.
/// Returns 0 or -1 with errno set.
int cflike_set_child_subreaper(void);

/// Asks the kernel to send `signal` to the calling process when its parent dies
/// (PR_SET_PDEATHSIG). Returns 0 or -1 with errno set.
int cflike_set_parent_death_signal(int signal);

/// Closes every file descriptor >= `lowfd` (close_range(2), or /proc/self/fd where the
/// kernel lacks it). Returns 0 or -1 with errno set.
int cflike_close_from(int lowfd);

/// Resets every ignored signal to its default disposition (glibc's internal signals included;
/// installed handlers stay) and empties the signal mask, so the process starts from a clean slate whatever its parent
/// blocked or ignored (a parent's worker thread often blocks nearly everything).
void cflike_reset_signals(void);

/// Starts `path` with `argv` (NULL-terminated) by fork and execve: `stdin_fd`, `stdout_fd`
/// and `stderr_fd` become its 0, 1 and 2, every other descriptor is closed, every signal
/// disposition (glibc's internal ones included) is reset to default and the signal mask is
/// emptied, so nothing the caller ignores or blocks is inherited by the program (or by a
/// container it starts). Returns the child's pid, or -errno when it could not be started.
pid_t cflike_spawn(const char *path, char *const argv[], int stdin_fd, int stdout_fd, int stderr_fd);

/// Installs a SIGCHLD handler that writes one byte to a non-blocking, close-on-exec pipe
/// and returns the pipe's read end (for poll(2)), or -1 with errno set.
int cflike_sigchld_wakeup_fd(void);

/// pipe2(2) with O_CLOEXEC (glibc declares it only under _GNU_SOURCE).
/// Returns 0 or -1 with errno set.
int cflike_pipe_cloexec(int fds[2]);

/// Sets a pipe's capacity (F_SETPIPE_SZ). Returns the new size or -1 with errno set.
int cflike_set_pipe_size(int fd, int bytes);

#endif
