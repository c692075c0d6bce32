/* library.c -- the last step of a compile: the backend's object file, the
 * link with the runtime archive into <model>.so, and the typed header
 * <model>.h beside it (dn_build_library).
 *
 * The objects go to temporary files that are always removed (or come from
 * the kernel cache, which stays); the header
 * is written to its temporary first, then the library is linked to its own
 * (link.c), then both are renamed into place (output.h), so a failed
 * compile never destroys an existing library or header, and a full disk
 * is found before the library is replaced.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "backend.h"
#include "output.h"

#ifndef DNNC_RUNTIME_LIB
#define DNNC_RUNTIME_LIB "libdnnrt.a"
#endif

char *dn_library_header_path(const char *out_so)
{
    size_t n = strlen(out_so);
    char *h = malloc(n + 3);
    if (!h) dn_die(__FILE__, __LINE__, "out of memory");
    if (n > 3 && !strcmp(out_so + n - 3, ".so")) n -= 3;
    memcpy(h, out_so, n);
    strcpy(h + n, ".h");
    return h;
}

/* Collects the header of 'm' in 'out' and writes it to its temporary
 * beside 'path' (renamed once the library is in place). */
static DnStatus stage_header(DnCtx *cx, const DnModule *m, const char *path, DnOutput *out)
{
    if (dn_output_open(out) == 0) {
        dn_emit_header(m, out->f);
        if (dn_output_stage(out, path) == 0) return DN_OK;
    }
    dn_error(cx, (DnLoc){0}, "cannot write '%s': %s", path, strerror(errno));
    return DN_ERR;
}

/* Both outputs are renamed into place, so neither may be a device, a FIFO
 * or a folder (renaming over /dev/null would replace it). */
static DnStatus check_destination(DnCtx *cx, const char *path)
{
    if (!dn_path_is_special(path)) return DN_OK;
    dn_error(cx, (DnLoc){0},
             "cannot write '%s': not a regular file (a library and its header are written to a "
             "temporary file and renamed over it)",
             path);
    return DN_ERR;
}

/* ---- the object list (backend.h) ------------------------------------------ */

static void objects_push(DnObjects *objs, const char *path, bool temporary)
{
    if (objs->n == objs->cap) {
        objs->cap = objs->cap ? 2 * objs->cap : 8;
        objs->obj = realloc(objs->obj, (size_t)objs->cap * sizeof *objs->obj);
        if (!objs->obj) dn_die(__FILE__, __LINE__, "out of memory");
    }
    objs->obj[objs->n++] = (DnObject){dn_strdup(path), temporary};
}

const char *dn_objects_add_temp(DnCtx *cx, DnObjects *objs)
{
    char obj[4096];
    if (dn_tmp_create(obj, sizeof obj, ".o") != 0) {
        dn_error(cx, (DnLoc){0}, "cannot create a temporary object file: %s", strerror(errno));
        return NULL;
    }
    objects_push(objs, obj, true);
    return objs->obj[objs->n - 1].path;
}

void dn_objects_add(DnObjects *objs, const char *path) { objects_push(objs, path, false); }

void dn_objects_release(DnObjects *objs)
{
    for (int i = 0; i < objs->n; i++) {
        if (objs->obj[i].temporary) unlink(objs->obj[i].path);
        free(objs->obj[i].path);
    }
    free(objs->obj);
    *objs = (DnObjects){0};
}

/* Emits 'm' with 'b' into objects and links them into 'out_so'. */
static DnStatus emit_and_link(DnCtx *cx, const DnBackend *b, const DnModule *m, const DnBackendOptions *o,
                              const char *runtime_lib, const char *out_so)
{
    DnObjects objs = {0};
    DnStatus st = b->emit_object(cx, m, o, &objs);
    if (st == DN_OK) st = dn_link_shared(cx, &objs, runtime_lib, out_so);
    dn_objects_release(&objs);
    return st;
}

DnStatus dn_build_library(DnCtx *cx, const DnBackend *b, const DnModule *m, const DnBackendOptions *o,
                          const char *runtime_lib, const char *out_so)
{
    if (!runtime_lib) runtime_lib = getenv("DNNC_RUNTIME") ? getenv("DNNC_RUNTIME") : DNNC_RUNTIME_LIB;
    char *h = dn_library_header_path(out_so), *so = dn_output_target(out_so);
    DnOutput header = {0};
    DnStatus st = check_destination(cx, out_so) | check_destination(cx, h);
    const char *why = NULL;
    if (st == DN_OK && b->available && !b->available(&why)) {
        dn_error(cx, (DnLoc){0}, "target '%s' is unavailable on this machine: %s", b->name, why);
        st = DN_ERR;
    }
    if (st == DN_OK) st = dn_backend_check(cx, b, m);
    if (st == DN_OK) st = stage_header(cx, m, h, &header);
    if (st == DN_OK) st = emit_and_link(cx, b, m, o, runtime_lib, so);
    if (st == DN_OK && dn_output_commit(&header) != 0) {
        dn_error(cx, (DnLoc){0}, "cannot write '%s': %s", h, strerror(errno));
        st = DN_ERR;
    }
    dn_output_discard(&header);
    free(so);
    free(h);
    return st;
}
