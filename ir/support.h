/* support.h -- the few services every compiler layer shares.
 *
 * Arenas (memory lives as long as the work it belongs to), growable vectors
 * allocated in an arena, user diagnostics (DnCtx, accumulated, printed with
 * source line and caret), and the internal-bug channel (DN_ASSERT, dn_die).
 * User errors never go through dn_die; compiler bugs never go through
 * dn_error.  Implemented in ir/arena.c and ir/diag.c.
 */
#ifndef DN_SUPPORT_H
#define DN_SUPPORT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define DN_INTERNAL     __attribute__((visibility("hidden")))
#define DN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define DN_NORETURN     __attribute__((noreturn))

typedef enum { DN_OK = 0, DN_ERR = 1 } DnStatus;

/* ---- arena.c ---------------------------------------------------------- */

typedef struct DnArenaBlock DnArenaBlock;
typedef struct DnArena {
    DnArenaBlock *head; /* newest block first; NULL when empty */
} DnArena;

/* Returns 'size' zeroed bytes aligned to 16, owned by 'a'; never NULL
 * (dies on out-of-memory, which in the compiler is a bug-class event). */
void *dn_arena_alloc(DnArena *a, size_t size);
/* Copies 'n' bytes of 's' plus a terminating NUL into 'a'. */
char *dn_arena_strndup(DnArena *a, const char *s, size_t n);
char *dn_arena_strdup(DnArena *a, const char *s);
/* printf into a fresh arena string. */
char *dn_arena_printf(DnArena *a, const char *fmt, ...) DN_PRINTF(2, 3);
/* Releases every block; 'a' is empty and reusable afterwards. */
void dn_arena_free(DnArena *a);

/* Growable array of T in an arena: DN_VEC(int) v = {0}; dn_vec_push(ar, &v, x);
 * Old storage is abandoned to the arena on growth (fine: arenas die whole). */
#define DN_VEC(T)                                                                                                      \
    struct {                                                                                                           \
        T *data;                                                                                                       \
        int len, cap;                                                                                                  \
    }
#define dn_vec_push(ar, v, x)                                                                                          \
    do {                                                                                                               \
        if ((v)->len == (v)->cap) {                                                                                    \
            int nc_ = (v)->cap ? 2 * (v)->cap : 8;                                                                     \
            void *nd_ = dn_arena_alloc((ar), (size_t)nc_ * sizeof(*(v)->data));                                        \
            if ((v)->len) memcpy(nd_, (v)->data, (size_t)(v)->len * sizeof(*(v)->data));                               \
            (v)->data = nd_;                                                                                           \
            (v)->cap = nc_;                                                                                            \
        }                                                                                                              \
        (v)->data[(v)->len++] = (x);                                                                                   \
    } while (0)

/* ---- diag.c ----------------------------------------------------------- */

/* A source position.  'file' NULL means "no location" (synthesised ops). */
typedef struct DnLoc {
    const char *file;
    int line, col; /* 1-based */
} DnLoc;

typedef enum { DN_SEV_ERROR, DN_SEV_WARNING, DN_SEV_NOTE } DnSeverity;

typedef struct DnDiag {
    DnSeverity sev;
    DnLoc loc;
    const char *msg;
    struct DnDiag *next;
} DnDiag;

/* A source file registered with the context, so diagnostics can print the
 * offending line and a caret. */
typedef struct DnSource {
    const char *name;
    const char *text; /* NUL-terminated */
    struct DnSource *next;
} DnSource;

/* One compilation.  Owns an arena for diagnostics and sources. */
typedef struct DnCtx {
    DnArena arena;
    DnDiag *diags, **tail; /* in order of report */
    DnSource *sources;
    int nerr;
    int max_errors; /* stop reporting after this many (0 = 20) */
} DnCtx;

void dn_ctx_init(DnCtx *cx);
void dn_ctx_free(DnCtx *cx);
/* Registers 'text' (copied) under 'name'; returns the stored copy. */
const char *dn_ctx_add_source(DnCtx *cx, const char *name, const char *text);
/* Appends an error diagnostic; nerr++.  Never exits. */
void dn_error(DnCtx *cx, DnLoc loc, const char *fmt, ...) DN_PRINTF(3, 4);
void dn_verror(DnCtx *cx, DnLoc loc, const char *fmt, va_list ap);
void dn_warning(DnCtx *cx, DnLoc loc, const char *fmt, ...) DN_PRINTF(3, 4);
void dn_note(DnCtx *cx, DnLoc loc, const char *fmt, ...) DN_PRINTF(3, 4);
/* Prints every diagnostic as  file:line:col: error: msg  + source line + caret. */
void dn_ctx_print_diags(DnCtx *cx, FILE *out);

/* Internal bugs: print file:line and abort. */
DN_NORETURN void dn_die(const char *file, int line, const char *fmt, ...) DN_PRINTF(3, 4);
/* A malloc'd copy of 's'; dies when memory runs out (the caller frees it). */
char *dn_strdup(const char *s);
#define DN_ASSERT(x)     ((x) ? (void)0 : dn_die(__FILE__, __LINE__, "assert(%s)", #x))
#define DN_UNREACHABLE() dn_die(__FILE__, __LINE__, "unreachable")

#endif
