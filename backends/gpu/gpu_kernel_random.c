/* gpu_kernel_random.c -- dropout and dropout_bwd on the GPU (ops.def).
 *
 * The mask is never stored: both kernels regenerate it, one work item per
 * element, from Philox 4x32-10 (dn_philox, the prelude's helper) keyed by
 * the session seed with counter {i lo, i hi, step lo, salt} for flat
 * element i, exactly as the CPU kernel (backends/llvm/kernel_dropout.c):
 * keep = r * 2^-32 >= p is the integer test r >= ceil(p 2^32), the
 * threshold computed here, so both targets drop the same elements.
 */
#include <math.h>

#include "gpu_internal.h"

/* y[i] = keep(i) ? x[i] / (1 - p) : 0 */
static void masked_scale(DnGpuGen *G)
{
    const DnValue *v = G->op->out[0];
    double p = dn_op_float(G->op, "p");
    uint32_t salt = (uint32_t)dn_op_int(G->op, "salt");
    double thr_d = ceil(p * 4294967296.0); /* keep when r >= thr (0 <= thr <= 2^32) */
    int64_t thr = thr_d < 0 ? 0 : thr_d > 4294967296.0 ? 4294967296LL : (int64_t)thr_d;
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ptr(G, 1, "float", "y");
    dn_gk_rt(G, "seed", DNRT_ARG_SEED);
    dn_gk_rt(G, "step", DNRT_ARG_STEP);
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s) return;", dn_gk_count(G, v));
    dn_gk_line(G, "u32 r[4];");
    dn_gk_line(G, "dn_philox((u32)seed, (u32)((u64)seed >> 32), (u32)i, (u32)((u64)i >> 32), (u32)step, %uu, r);",
               salt);
    dn_gk_line(G, "y[i] = (i64)r[0] >= %lld ? x[i] / %s : 0.0f;", (long long)thr, dn_gk_float(G, (float)(1.0 - p)));
    int64_t in, ib;
    dn_gk_items(v, &in, &ib);
    dn_gk_end(G, in, ib, 256);
}

void dn_gpu_kernel_dropout(DnGpuGen *G) { masked_scale(G); }
void dn_gpu_kernel_dropout_bwd(DnGpuGen *G) { masked_scale(G); }
