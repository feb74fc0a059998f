#define _GNU_SOURCE
#include "CShimSupport.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
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

pid_t cflike_spawn(const char *path, char *const argv[], int stdin_fd, int stdout_fd, int stderr_fd) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&actions);
    if (rc != 0) {
        return -rc;
    }
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return -rc;
    }
    // dup2 clears close-on-exec on the target; the sources are all close-on-exec in the shim.
    posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0);
    posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
    posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
#endif

    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

    pid_t pid = -1;
    rc = posix_spawn(&pid, path, &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    return rc == 0 ? pid : -rc;
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
