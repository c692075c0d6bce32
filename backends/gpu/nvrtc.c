/* nvrtc.c -- placeholder: NVRTC is being wired in (its branch replaces this
 * file); until then the cuda target reports that it cannot compile. */
#include "nvrtc.h"

DnStatus dn_nvrtc_compile(DnCtx *cx, const char *source, const char *const *archs, int narchs, DnGpuImage **out,
                          int *nout)
{
    (void)source, (void)archs, (void)narchs, (void)out, (void)nout;
    dn_error(cx, (DnLoc){0}, "target 'cuda': NVRTC is not wired into this build yet");
    return DN_ERR;
}

void dn_nvrtc_free(DnGpuImage *img, int n) { (void)img, (void)n; }

bool dn_nvrtc_available(const char **why)
{
    if (why) *why = "NVRTC is not wired into this build yet";
    return false;
}
