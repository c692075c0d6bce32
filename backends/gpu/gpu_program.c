/* gpu_program.c -- the kernels of one module, each text once, and the
 * rendered source (prelude, helpers, kernels) that the CUDA target compiles
 * with NVRTC and the OpenCL target embeds.
 */
#include "gpu_internal.h"

static char *dup_str(DnArena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(dn_arena_alloc(a, n), s, n);
}

int dn_gpu_program_add(DnGpuProgram *p, const char *base, const char *text)
{
    /* the base is part of the key, so each kernel's name says its op */
    for (int i = 0; i < p->nkernels; i++) {
        const char *nm = strchr(p->names[i], '_') + 1;
        if (!strcmp(nm, base) && !strcmp(p->texts[i], text)) return i;
    }
    if (p->nkernels == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        char **names = dn_arena_alloc(p->arena, sizeof *names * (size_t)cap);
        char **texts = dn_arena_alloc(p->arena, sizeof *texts * (size_t)cap);
        if (p->nkernels) {
            memcpy(names, p->names, sizeof *names * (size_t)p->nkernels);
            memcpy(texts, p->texts, sizeof *texts * (size_t)p->nkernels);
        }
        p->names = names, p->texts = texts, p->cap = cap;
    }
    char name[96];
    snprintf(name, sizeof name, "k%d_%s", p->nkernels, base);
    p->names[p->nkernels] = dup_str(p->arena, name);
    p->texts[p->nkernels] = dup_str(p->arena, text);
    return p->nkernels++;
}

void dn_gpu_program_render(const DnGpuProgram *p, DnText *out)
{
    dn_gpu_prelude_render(p->api, p->precision, out);
    dn_text_printf(out, "\n%s", dn_gpu_helpers);
    for (int i = 0; i < p->nkernels; i++) dn_text_printf(out, "\nKERNEL %s%s", p->names[i], p->texts[i]);
}
