/* compile.c -- compile a .dnn with the real dnnc and dlopen the result. */
#define _GNU_SOURCE
#include "testlib.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int dn_test_run(const char *cmd, char *out, size_t outlen)
{
    char full[4096];
    snprintf(full, sizeof full, "( %s ) 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t len = 0;
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, p)) > 0) {
        if (out && len + 1 < outlen) {
            size_t take = got < outlen - 1 - len ? got : outlen - 1 - len;
            memcpy(out + len, buf, take);
            len += take;
        }
    }
    if (out && outlen) out[len] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *dn_test_src(const char *rel)
{
    static char slots[4][1024];
    static int next;
    char *s = slots[next++ & 3];
    if (rel[0] == '/')
        snprintf(s, 1024, "%s", rel);
    else
        snprintf(s, 1024, "%s/%s", DNNC_SOURCE_DIR, rel);
    return s;
}

const char *dn_test_target(void)
{
    const char *t = getenv("DNNC_TEST_TARGET");
    return t && *t ? t : "cpu";
}

static int compile_path(const char *dnn, const char *dir, const char *flags, DnTestLib *lib, char *log, size_t loglen)
{
    memset(lib, 0, sizeof *lib);
    char target[128] = "";
    if (!flags || !strstr(flags, "--target=")) snprintf(target, sizeof target, "--target=%s", dn_test_target());
    snprintf(lib->so_path, sizeof lib->so_path, "%s/model.so", dir);
    snprintf(lib->h_path, sizeof lib->h_path, "%s/model.h", dir);
    char cmd[4096], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' '%s' -o '%s' %s %s", DNNC_BIN, dnn, lib->so_path, target, flags ? flags : "");
    int rc = dn_test_run(cmd, out, sizeof out);
    if (rc != 0) {
        if (log) snprintf(log, loglen, "dnnc exited %d:\n%s", rc, out);
        return -1;
    }
    lib->handle = dlopen(lib->so_path, RTLD_NOW | RTLD_LOCAL);
    if (!lib->handle) {
        if (log) snprintf(log, loglen, "dlopen: %s", dlerror());
        return -1;
    }
    lib->desc = dlsym(lib->handle, "dnnc_descriptor");
    if (!lib->desc) {
        if (log) snprintf(log, loglen, "no dnnc_descriptor in %s", lib->so_path);
        dlclose(lib->handle);
        lib->handle = NULL;
        return -1;
    }
    return 0;
}

/* Temporary folders made by this process, removed when it exits (tests may
 * keep using a library's files after dn_test_close). */
static char made[64][512];
static int nmade;

static void remove_made(void)
{
    static const char *const files[] = {"model.so", "model.h", "model.dnn"};
    for (int d = 0; d < nmade; d++) {
        for (int i = 0; i < 3; i++) {
            char path[1024];
            snprintf(path, sizeof path, "%.512s/%s", made[d], files[i]);
            unlink(path);
        }
        rmdir(made[d]); /* fails, harmlessly, if a test left other files */
    }
}

static int make_dir(char *dir, size_t len)
{
    snprintf(dir, len, "%s/dnnc-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return -1;
    if (nmade == 0) atexit(remove_made);
    if (nmade < 64) snprintf(made[nmade++], sizeof made[0], "%s", dir);
    return 0;
}

int dn_test_compile_text(const char *source, const char *flags, DnTestLib *lib, char *log, size_t loglen)
{
    char dir[512], path[600];
    if (make_dir(dir, sizeof dir)) return -1;
    snprintf(path, sizeof path, "%s/model.dnn", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(source, f);
    fclose(f);
    return compile_path(path, dir, flags, lib, log, loglen);
}

int dn_test_compile_file(const char *path, const char *flags, DnTestLib *lib, char *log, size_t loglen)
{
    char dir[512];
    if (make_dir(dir, sizeof dir)) return -1;
    return compile_path(dn_test_src(path), dir, flags, lib, log, loglen);
}

void dn_test_close(DnTestLib *lib)
{
    if (lib->handle) dlclose(lib->handle);
    lib->handle = NULL;
}

int64_t dn_test_close_enough(const float *got, const float *ref, int64_t n, double rtol, double atol)
{
    double maxref = 0;
    for (int64_t i = 0; i < n; i++) maxref = fmax(maxref, fabs(ref[i]));
    for (int64_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - ref[i]) <= rtol * maxref + atol)) return i;
    return -1;
}
