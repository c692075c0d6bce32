/* link.c -- links a backend's object files with the runtime archive into the
 * model's shared library, using the system C compiler as the linker driver.
 *
 * The compiler is $DNNC_CC, else the one dnnc was built with
 * (DNNC_C_COMPILER), else "cc"; it runs through fork/execvp, never a shell.
 * The library is written to a temporary name beside 'out_so'
 * (dn_tmp_name: out_so.dnnc-tmp.PID) and renamed over it only on success,
 * so a failed link never damages an old library.
 * -Wl,--exclude-libs,ALL keeps the runtime's symbols out of the dynamic
 * symbol table; -z defs turns any unresolved symbol into a link error.
 * DNNC_LINK_FLAGS (one flag, empty by default) is what the build's runtime
 * needs besides: -fsanitize=address,undefined in a sanitizer build
 * (CMakeLists.txt, DNNC_SANITIZE).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "output.h"

#ifndef DNNC_C_COMPILER
#define DNNC_C_COMPILER "cc"
#endif
#ifndef DNNC_LINK_FLAGS
#define DNNC_LINK_FLAGS ""
#endif

static const DnLoc noloc = {0};

/* Runs argv; returns the exit status, or -1 (with errno) when it could not
 * be started or was killed by a signal. */
static int run_argv(char *const *argv)
{
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return -1;
}

/* Links 'objs' + 'runtime_lib' into 'out_so'; see backend.h. */
DnStatus dn_link_shared(DnCtx *cx, const DnObjects *objs, const char *runtime_lib, const char *out_so)
{
    const char *cc = getenv("DNNC_CC");
    if (!cc || !*cc) cc = DNNC_C_COMPILER;
    if (!cc || !*cc) cc = "cc";
    char *tmp = dn_tmp_name(out_so);
    unlink(tmp); /* a leftover of this PID, or a link planted there: never written through */
    /* The soname is the file's own name, so a program linked against it
     * records "lenet.so", not the path it was linked from. */
    const char *base = strrchr(out_so, '/') ? strrchr(out_so, '/') + 1 : out_so;
    size_t slen = strlen(base) + 16;
    char *soname = malloc(slen);
    if (!soname) dn_die(__FILE__, __LINE__, "out of memory");
    snprintf(soname, slen, "-Wl,-soname,%s", base);
    const char *fixed[] = {runtime_lib,   "-lm",
                           "-lpthread",   "-Wl,--exclude-libs,ALL",
                           "-Wl,-z,defs", "-Wl,-z,noexecstack",
                           soname,        DNNC_LINK_FLAGS[0] ? DNNC_LINK_FLAGS : NULL};
    int nfixed = (int)(sizeof fixed / sizeof *fixed), na = 0;
    char **argv = malloc((size_t)(4 + objs->n + nfixed + 1) * sizeof *argv);
    if (!argv) dn_die(__FILE__, __LINE__, "out of memory");
    argv[na++] = (char *)cc, argv[na++] = "-shared", argv[na++] = "-o", argv[na++] = tmp;
    for (int i = 0; i < objs->n; i++) argv[na++] = objs->obj[i].path;
    for (int i = 0; i < nfixed; i++) argv[na++] = (char *)fixed[i];
    argv[na] = NULL;
    int rc = run_argv(argv);
    free(argv);
    free(soname);
    DnStatus st = DN_OK;
    if (rc != 0) {
        if (rc == 127)
            dn_error(cx, noloc, "cannot run the C compiler '%s' to link '%s' (set $DNNC_CC)", cc, out_so);
        else if (rc < 0)
            dn_error(cx, noloc, "linking '%s': the C compiler '%s' did not finish normally", out_so, cc);
        else
            dn_error(cx, noloc, "linking '%s': '%s' exited with status %d", out_so, cc, rc);
        st = DN_ERR;
    } else if (rename(tmp, out_so) != 0) {
        dn_error(cx, noloc, "cannot write '%s': %s", out_so, strerror(errno));
        st = DN_ERR;
    }
    if (st != DN_OK) unlink(tmp);
    free(tmp);
    return st;
}
