#define _GNU_SOURCE
#include "CShimSupport.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int cflike_set_child_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

int cflike_set_parent_death_signal(int signal) {
    return prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0);
}

int cflike_close_from(int lowfd) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned int)lowfd, ~0U, 0) == 0) {
        return 0;
    }
#endif
    // Older kernels: walk /proc/self/fd, collecting first so closing does not disturb readdir.
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL) {
        return -1;
    }
    int keep = dirfd(dir);
    int fds[1024];
    int count;
    do {
        count = 0;
        rewinddir(dir);
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL && count < 1024) {
            int fd = atoi(entry->d_name);
            if (entry->d_name[0] != '.' && fd >= lowfd && fd != keep) {
                fds[count++] = fd;
            }
        }
        for (int i = 0; i < count; i++) {
            close(fds[i]);
        }
    } while (count == 1024);
    closedir(dir);
    return 0;
}

/// The kernel's struct sigaction (not glibc's), for raw rt_sigaction(2).
struct cflike_kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long mask;
};

void cflike_reset_signals(void) {
    struct cflike_kernel_sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.handler = SIG_DFL;
    // Raw system calls: glibc refuses to touch its internal signals (32 and 33). Handlers
    // (the runtime's crash reporter) stay; only inherited "ignore" goes.
    for (int sig = 1; sig <= 64; sig++) {
        struct cflike_kernel_sigaction current;
        memset(&current, 0, sizeof(current));
        if (syscall(SYS_rt_sigaction, sig, NULL, &current, sizeof(unsigned long)) == 0 && current.handler == SIG_IGN) {
            syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(unsigned long));
        }
    }
    unsigned long none = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none));
}

/// Moves `fd` to a descriptor >= 3 so a later dup2 onto 0-2 cannot overwrite it first.
static int cflike_lift(int fd) {
    return fd >= 0 && fd <= 2 ? fcntl(fd, F_DUPFD, 3) : fd;
}

pid_t cflike_spawn(const char *path, char *const argv[], int stdin_fd, int stdout_fd, int stderr_fd) {
    // posix_spawn is not used: glibc sets its internal signals (32, SIGCANCEL) to SIG_IGN in
    // the child, and an ignored signal survives exec, so runc and the container would inherit it.
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        return -errno;
    }
    sigset_t all, old;
    sigfillset(&all);
    // No handler may run in the child before its dispositions are reset.
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        // Only async-signal-safe calls from here to execve. The mask stays full until the
        // dispositions are reset, and is emptied last (by cflike_reset_signals).
        struct cflike_kernel_sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.handler = SIG_DFL;
        for (int sig = 1; sig <= 64; sig++) {
            syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(unsigned long));
        }
        int sources[3] = {cflike_lift(stdin_fd), cflike_lift(stdout_fd), cflike_lift(stderr_fd)};
        for (int target = 0; target < 3; target++) {
            if (sources[target] < 0 || dup2(sources[target], target) < 0) {
                int failure = errno;
                ssize_t ignored = write(report[1], &failure, sizeof(failure));
                (void)ignored;
                _exit(127);
            }
        }
        if (report[1] > 3) {
            syscall(SYS_close_range, 3U, (unsigned int)report[1] - 1, 0U);
        }
        syscall(SYS_close_range, (unsigned int)report[1] + 1, ~0U, 0U);
        unsigned long none = 0;
        syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none));
        execve(path, argv, environ);
        int failure = errno;
        ssize_t ignored = write(report[1], &failure, sizeof(failure));
        (void)ignored;
        _exit(127);
    }
    int forkError = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(report[1]);
    if (pid < 0) {
        close(report[0]);
        return -forkError;
    }
    // The pipe closes on a successful exec; otherwise it carries the child's errno.
    int failure = 0;
    ssize_t count;
    do {
        count = read(report[0], &failure, sizeof(failure));
    } while (count < 0 && errno == EINTR);
    close(report[0]);
    if (count == (ssize_t)sizeof(failure)) {
        waitpid(pid, NULL, 0);
        return -failure;
    }
    return pid;
}

static int sigchld_write_fd = -1;

static void sigchld_handler(int signal) {
    (void)signal;
    int saved = errno;
    char byte = 1;
    // A full pipe already holds a wake-up; losing this byte loses nothing.
    ssize_t ignored = write(sigchld_write_fd, &byte, 1);
    (void)ignored;
    errno = saved;
}

int cflike_sigchld_wakeup_fd(void) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        return -1;
    }
    sigchld_write_fd = fds[1];
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = sigchld_handler;
    action.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGCHLD, &action, NULL) != 0) {
        int saved = errno;
        close(fds[0]);
        close(fds[1]);
        sigchld_write_fd = -1;
        errno = saved;
        return -1;
    }
    return fds[0];
}

int cflike_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int cflike_set_pipe_size(int fd, int bytes) {
    return fcntl(fd, F_SETPIPE_SZ, bytes);
}
