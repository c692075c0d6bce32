/* output.c -- writing dnnc's output files whole or not at all, and naming
 * its temporaries so that stale ones can be recognised (see output.h).
 */
#define _GNU_SOURCE
#include "output.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_TAG "dnnc-tmp."

int dn_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n < ((size_t)1 << 30) ? n : ((size_t)1 << 30));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int dn_path_is_special(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && !S_ISREG(st.st_mode);
}

char *dn_output_target(const char *path)
{
    struct stat st;
    char *real = lstat(path, &st) == 0 && S_ISLNK(st.st_mode) ? realpath(path, NULL) : NULL;
    if (real && (stat(real, &st) != 0 || !S_ISREG(st.st_mode))) {
        free(real); /* only a regular file is ever renamed over: never a device, even by mistake */
        real = NULL;
    }
    return real ? real : dn_strdup(path);
}

/* Removes from 'dir' this user's regular files named 'prefix' PID (then
 * nothing, or '.' and anything when 'any_tail') whose PID is not a running
 * process. */
static void sweep(const char *dir, const char *prefix, int any_tail)
{
    DIR *d = opendir(dir);
    if (!d) return;
    size_t plen = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, plen)) continue;
        const char *num = e->d_name + plen;
        if (!isdigit((unsigned char)*num)) continue;
        char *end;
        errno = 0;
        long pid = strtol(num, &end, 10);
        if (errno || pid <= 0 || pid > INT_MAX || (any_tail ? *end != '.' : *end != 0)) continue;
        if (pid == getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            st.st_uid == geteuid())
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

char *dn_tmp_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dlen = slash ? (slash == path ? 1 : (size_t)(slash - path)) : 1;
    size_t len = strlen(path) + strlen(base) + 64;
    char *dir = malloc(len), *prefix = malloc(len), *tmp = malloc(len);
    if (!dir || !prefix || !tmp) dn_die(__FILE__, __LINE__, "out of memory");
    snprintf(dir, len, "%.*s", (int)dlen, slash ? path : ".");
    snprintf(prefix, len, "%s." TMP_TAG, base);
    sweep(dir, prefix, 0);
    snprintf(tmp, len, "%s." TMP_TAG "%ld", path, (long)getpid());
    free(dir);
    free(prefix);
    return tmp;
}

int dn_tmp_create(char *buf, size_t len, const char *suffix)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    sweep(dir, TMP_TAG, 1);
    if ((size_t)snprintf(buf, len, "%s/" TMP_TAG "%ld.XXXXXX%s", dir, (long)getpid(), suffix) >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = mkostemps(buf, (int)strlen(suffix), O_CLOEXEC);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

int dn_output_open(DnOutput *o)
{
    *o = (DnOutput){0};
    o->f = open_memstream(&o->data, &o->len);
    return o->f ? 0 : -1;
}

/* Creates 'tmp' afresh: a leftover of the same name (this PID's, so not a
 * live writer's) or a link planted there is removed, never written through. */
static int create_fresh(const char *tmp)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno == EEXIST && unlink(tmp) == 0) fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    return fd;
}

int dn_output_stage(DnOutput *o, const char *path)
{
    o->path = path;
    if (o->f) {
        int rc = fclose(o->f);
        o->f = NULL;
        if (rc != 0) return -1;
    }
    if (!path) return 0;
    o->dest = dn_output_target(path);
    if (dn_path_is_special(o->dest)) return 0;
    o->tmp = dn_tmp_name(o->dest);
    int fd = create_fresh(o->tmp);
    int rc = fd < 0 ? -1 : dn_write_all(fd, o->data, o->len);
    int e = errno;
    if (fd >= 0 && close(fd) != 0 && rc == 0) rc = -1, e = errno;
    if (rc != 0) {
        if (fd >= 0) unlink(o->tmp);
        free(o->tmp);
        o->tmp = NULL;
    }
    errno = e;
    return rc;
}

/* Writes 'n' bytes to the existing non-regular file 'path'; the open does
 * not wait for a FIFO's reader (ENXIO when there is none). */
static int write_in_place(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -1;
    int fl = fcntl(fd, F_GETFL);
    int rc = fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0 ? -1 : dn_write_all(fd, p, n);
    int e = errno;
    if (close(fd) != 0 && rc == 0) rc = -1, e = errno;
    errno = e;
    return rc;
}

int dn_output_commit(DnOutput *o)
{
    int rc;
    if (o->tmp) {
        rc = rename(o->tmp, o->dest);
        if (rc == 0) {
            free(o->tmp);
            o->tmp = NULL;
        }
    } else if (!o->path) {
        rc = dn_write_all(STDOUT_FILENO, o->data, o->len);
    } else {
        rc = write_in_place(o->path, o->data, o->len);
    }
    int e = errno;
    dn_output_discard(o);
    errno = e;
    return rc;
}

int dn_output_write(DnOutput *o, const char *path)
{
    if (dn_output_stage(o, path) == 0) return dn_output_commit(o);
    int e = errno;
    dn_output_discard(o);
    errno = e;
    return -1;
}

void dn_output_discard(DnOutput *o)
{
    if (o->f) fclose(o->f);
    if (o->tmp) unlink(o->tmp);
    free(o->tmp);
    free(o->dest);
    free(o->data);
    *o = (DnOutput){0};
}
