/* library.c -- the last step of a compile: the backend's object file, the
 * link with the runtime archive into <model>.so, and the typed header
 * <model>.h beside it (dn_build_library).
 *
 * The object goes to a temporary file that is always removed; the library
 * (link.c) and the header are written to temporary names and renamed, so a
 * failed compile never destroys an existing library or header.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "backend.h"

#ifndef DNNC_RUNTIME_LIB
#define DNNC_RUNTIME_LIB "libdnnrt.a"
#endif

/* Derives "dir/name.h" from "dir/name.so" (or appends .h); caller frees. */
static char *header_path(const char *so)
{
    size_t n = strlen(so);
    char *h = malloc(n + 3);
    if (!h) dn_die(__FILE__, __LINE__, "out of memory");
    if (n > 3 && !strcmp(so + n - 3, ".so")) n -= 3;
    memcpy(h, so, n);
    strcpy(h + n, ".h");
    return h;
}

/* Writes the header through a temporary file and a rename. */
static DnStatus write_header(DnCtx *cx, const DnModule *m, const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        dn_error(cx, (DnLoc){0}, "cannot write '%s': %s", tmp, strerror(errno));
        return DN_ERR;
    }
    dn_emit_header(m, f);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        dn_error(cx, (DnLoc){0}, "cannot write '%s': %s", path, strerror(errno));
        unlink(tmp);
        return DN_ERR;
    }
    return DN_OK;
}

/* Emits 'm' with 'b' into a temporary object and links it into 'out_so'. */
static DnStatus emit_and_link(DnCtx *cx, const DnBackend *b, const DnModule *m, const DnBackendOptions *o,
                              const char *runtime_lib, const char *out_so)
{
    char obj[] = "/tmp/dnnc-XXXXXX.o";
    int fd = mkstemps(obj, 2);
    if (fd < 0) {
        dn_error(cx, (DnLoc){0}, "cannot create a temporary object file: %s", strerror(errno));
        return DN_ERR;
    }
    close(fd);
    DnStatus st = b->emit_object(cx, m, o, obj);
    if (st == DN_OK) st = dn_link_shared(cx, obj, runtime_lib, out_so);
    unlink(obj);
    return st;
}

DnStatus dn_build_library(DnCtx *cx, const DnBackend *b, const DnModule *m, const DnBackendOptions *o,
                          const char *runtime_lib, const char *out_so)
{
    if (!runtime_lib) runtime_lib = getenv("DNNC_RUNTIME") ? getenv("DNNC_RUNTIME") : DNNC_RUNTIME_LIB;
    if (dn_backend_check(cx, b, m) || emit_and_link(cx, b, m, o, runtime_lib, out_so)) return DN_ERR;
    char *h = header_path(out_so);
    DnStatus st = write_header(cx, m, h);
    free(h);
    return st;
}
