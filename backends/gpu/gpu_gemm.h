/* gpu_gemm.h -- the tiled GEMM generator (gpu_kernel_gemm.c) that dense,
 * matmul and the three convolution ops (gpu_kernel_conv.c) share.
 *
 * It writes C[bz][m, j] = sum_k A[bz][m, k] B[bz][k, j] for bz < batch, as
 * one kernel: a work group of 256 items computes a TM x TN tile of C
 * (TM = 16 RM, TN = 16 RN; each item an RM x RN register block, strided by
 * 16 so that neighbouring items touch neighbouring elements), staging
 * TM x 16 of A and 16 x TN of B in LOCAL memory per K-step.  The op says
 * how to read A and B and how to write C through three callbacks that
 * emit dialect statements over fixed names:
 *   load_a  reads A at (bz, gm, gk) into 'float v' (called only in range)
 *   load_b  reads B at (bz, gk, gj) into 'float v' (likewise)
 *   store   writes C at (bz, gm, gj) from 'float v' (only in range), with
 *           the op's epilogue (bias, relu);
 * each may use n and declare locals (it is emitted inside a block), and
 * the locals an optional 'prologue' declares from bz (once per group); the
 * loaders may also use the constants M and K (the store may not: the
 * split-K sum kernel has none).  So an implicit GEMM (a convolution
 * without an im2col buffer) is just other loaders.  Edge tiles are
 * guarded: any M, K and cols work.  M or the batch (not both) may grow
 * with n; the launch then has one M-tile per ceil(m_n / TM) n +
 * ceil(m_b / TM) (an over-count for small m_n: those groups return at once).
 *
 * Split-K (splits > 1, static M and batch only): the K range is cut into
 * 'splits' chunks of fixed order; each writes its partial tile to the
 * op's workspace and a second kernel sums the chunks in order (so the
 * result is deterministic) and stores through 'store'.  The op's
 * dn_gpu_workspace_<op> must request dn_gk_gemm_ws_bytes.
 */
#ifndef DN_GPU_GEMM_H
#define DN_GPU_GEMM_H

#include "gpu_internal.h"

typedef struct DnGkGemm DnGkGemm;
typedef void (*DnGkGemmFn)(DnGpuGen *G, const DnGkGemm *g);

struct DnGkGemm {
    int64_t m_n, m_b;         /* rows M = m_n * n + m_b */
    int64_t k_n, k_b;         /* depth K = k_n * n + k_b */
    bool k_seq;               /* instead: K = t, the parameter 'steps' (DNRT_ARG_SEQ) params_in declares */
    int64_t cols;             /* columns (static) */
    int64_t batch_n, batch_b; /* independent products: batch_n * n + batch_b (bz) */
    /* memory order, for coalescing: whether consecutive m (A, C) or j (B)
     * are adjacent in memory, rather than consecutive k (A, B) or j (C) */
    bool a_m_fast, b_j_fast, c_m_fast;
    DnGkGemmFn params_in, params_out; /* declare the buffers the loaders read, the store writes */
    DnGkGemmFn prologue;              /* optional: per-bz values for the callbacks, emitted once bz is known */
    DnGkGemmFn load_a, load_b, store;
    const void *ctx; /* the op's own description, for the callbacks */
    int splits;      /* set by dn_gk_gemm_plan */
};

/* Picks the split-K factor (g->splits) from the shape; call once the
 * sizes are set, in the workspace request and in the generator alike. */
void dn_gk_gemm_plan(DnGkGemm *g);
/* Workspace bytes of the split-K partial sums (0 when splits == 1). */
int64_t dn_gk_gemm_ws_bytes(const DnGkGemm *g);
/* Writes the kernel(s) of g for G->op. */
void dn_gk_gemm(DnGpuGen *G, const DnGkGemm *g);

/* Defines op 'name''s generator and workspace request (gpu_kernels.c)
 * for an op whose kernels are the GEMM that  DnGkGemm plan(const DnOp *,
 * Ctx *)  describes, split-K included (the plan's ctx may point into the
 * Ctx it is given, which lives while the GEMM is written). */
#define DN_GK_GEMM_OP(name, Ctx, plan)                                                                                 \
    bool dn_gpu_workspace_##name(const DnOp *op, DnWorkspaceReq *req)                                                  \
    {                                                                                                                  \
        Ctx c;                                                                                                         \
        DnGkGemm g = plan(op, &c);                                                                                     \
        req->bytes_b = dn_gk_gemm_ws_bytes(&g);                                                                        \
        return req->bytes_b > 0;                                                                                       \
    }                                                                                                                  \
    void dn_gpu_kernel_##name(DnGpuGen *G)                                                                             \
    {                                                                                                                  \
        Ctx c;                                                                                                         \
        DnGkGemm g = plan(G->op, &c);                                                                                  \
        dn_gk_gemm(G, &g);                                                                                             \
    }

/* a * n + b as dialect text ("(n * 49)", "27", "(n * 3 + 1)"), in G's arena. */
const char *dn_gk_lin(DnGpuGen *G, int64_t a, int64_t b);

#endif
