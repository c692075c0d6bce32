/* llvm_gemm.c -- the register-blocked GEMM micro-kernel and the loops
 * around it (llvm_gemm.h), for kernel generators.
 *
 * The tile keeps MR x NV accumulators of <W x float> (W = lanes(): 16
 * with AVX-512, else 8) in SSA values across the whole reduction (allocas
 * that mem2reg promotes); its body is explicit vector code (broadcast,
 * vector loads, llvm.fma), so it does not depend on the auto-vectorizer.
 * Partial last vectors use llvm.masked.load/store (vmaskmovps on AVX2,
 * mask registers on AVX-512), so no operand needs
 * padding for the column edge.  The products are summed in k order for
 * every element, whatever the tile shape: results do not depend on how
 * callers split rows among threads.
 */
#include "llvm_gemm.h"

LLVMTypeRef dn_v8_t(DnKernel *k) { return LLVMVectorType(k->L->f32, 8); }
static LLVMTypeRef v8_t(DnKernel *k) { return dn_v8_t(k); }

/* The micro-kernel's vector width: 16 lanes where the target has AVX-512
 * (32 vector registers), else 8. */
static int lanes(DnKernel *k) { return k->L->vec_regs >= 32 ? 16 : 8; }
int dn_gemm_lanes(DnKernel *k) { return lanes(k); }
static LLVMTypeRef vec_t(DnKernel *k, int w) { return LLVMVectorType(k->L->f32, (unsigned)w); }

/* Contract: llvm_gemm.h. */

static LLVMValueRef intrinsic(DnKernel *k, const char *name, LLVMTypeRef fty)
{
    LLVMValueRef f = LLVMGetNamedFunction(k->L->mod, name);
    return f ? f : LLVMAddFunction(k->L->mod, name, fty);
}

static LLVMValueRef fptr(DnKernel *k, LLVMValueRef base, LLVMValueRef off)
{
    return LLVMBuildInBoundsGEP2(k->L->b, k->L->f32, base, &off, 1, "");
}

/* The <w x i1> mask of the first 'nlast' lanes. */
static LLVMValueRef lane_mask(DnKernel *k, int w, int nlast)
{
    LLVMValueRef bits[16];
    LLVMTypeRef i1 = k->L->i1;
    for (int i = 0; i < w; i++) bits[i] = LLVMConstInt(i1, i < nlast, 0);
    return LLVMConstVector(bits, (unsigned)w);
}

/* <w x float> load, store, splat and fma (w = 8 or 16). */
static LLVMValueRef wload(DnKernel *k, int w, LLVMValueRef base, LLVMValueRef off, int nlast)
{
    LLVMTypeRef vt = vec_t(k, w);
    if (nlast >= w) {
        LLVMValueRef v = LLVMBuildLoad2(k->L->b, vt, fptr(k, base, off), "vb");
        LLVMSetAlignment(v, 4);
        return v;
    }
    LLVMTypeRef at[4] = {k->L->ptr, k->L->i32, LLVMVectorType(k->L->i1, (unsigned)w), vt};
    LLVMTypeRef fty = LLVMFunctionType(vt, at, 4, 0);
    LLVMValueRef args[4] = {fptr(k, base, off), dn_i32(k, 4), lane_mask(k, w, nlast), LLVMConstNull(vt)};
    const char *name = w == 16 ? "llvm.masked.load.v16f32.p0" : "llvm.masked.load.v8f32.p0";
    return LLVMBuildCall2(k->L->b, fty, intrinsic(k, name, fty), args, 4, "vbm");
}

static void wstore(DnKernel *k, int w, LLVMValueRef base, LLVMValueRef off, LLVMValueRef v, int nlast)
{
    if (nlast >= w) {
        LLVMSetAlignment(LLVMBuildStore(k->L->b, v, fptr(k, base, off)), 4);
        return;
    }
    LLVMTypeRef at[4] = {vec_t(k, w), k->L->ptr, k->L->i32, LLVMVectorType(k->L->i1, (unsigned)w)};
    LLVMTypeRef fty = LLVMFunctionType(k->L->void_t, at, 4, 0);
    LLVMValueRef args[4] = {v, fptr(k, base, off), dn_i32(k, 4), lane_mask(k, w, nlast)};
    const char *name = w == 16 ? "llvm.masked.store.v16f32.p0" : "llvm.masked.store.v8f32.p0";
    LLVMBuildCall2(k->L->b, fty, intrinsic(k, name, fty), args, 4, "");
}

static LLVMValueRef wsplat(DnKernel *k, int w, LLVMValueRef s)
{
    LLVMTypeRef vt = vec_t(k, w);
    LLVMValueRef v = LLVMBuildInsertElement(k->L->b, LLVMGetUndef(vt), s, dn_i32(k, 0), "");
    return LLVMBuildShuffleVector(k->L->b, v, LLVMGetUndef(vt), LLVMConstNull(LLVMVectorType(k->L->i32, (unsigned)w)),
                                  "bc");
}

static LLVMValueRef wfma(DnKernel *k, int w, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c)
{
    LLVMTypeRef vt = vec_t(k, w), at[3] = {vt, vt, vt};
    LLVMTypeRef fty = LLVMFunctionType(vt, at, 3, 0);
    LLVMValueRef args[3] = {a, b, c};
    return LLVMBuildCall2(k->L->b, fty, intrinsic(k, w == 16 ? "llvm.fma.v16f32" : "llvm.fma.v8f32", fty), args, 3, "");
}

LLVMValueRef dn_vec_load(DnKernel *k, LLVMValueRef base, LLVMValueRef off, int nlast)
{
    return wload(k, 8, base, off, nlast);
}

void dn_vec_store(DnKernel *k, LLVMValueRef base, LLVMValueRef off, LLVMValueRef v, int nlast)
{
    wstore(k, 8, base, off, v, nlast);
}

LLVMValueRef dn_vec_splat(DnKernel *k, LLVMValueRef s) { return wsplat(k, 8, s); }

LLVMValueRef dn_vec_fma(DnKernel *k, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) { return wfma(k, 8, a, b, c); }

/* A fixed tree: lanes i and i+4, then i and i+2, then 0 and 1. */
LLVMValueRef dn_vec_hsum(DnKernel *k, LLVMValueRef v)
{
    LLVMBuilderRef b = k->L->b;
    for (int w = 4; w >= 1; w /= 2) {
        LLVMValueRef idx[8];
        for (int i = 0; i < 8; i++) idx[i] = dn_i32(k, i < w ? i + w : i);
        LLVMValueRef hi = LLVMBuildShuffleVector(b, v, LLVMGetUndef(v8_t(k)), LLVMConstVector(idx, 8), "");
        v = LLVMBuildFAdd(b, v, hi, "");
    }
    return LLVMBuildExtractElement(b, v, dn_i32(k, 0), "hsum");
}

/* Offset of A(m, 0) for row 'm'. */
static LLVMValueRef a_row(DnKernel *k, const DnGemm *g, LLVMValueRef m)
{
    if (g->row_fn) return g->row_fn(k, g->row_ctx, m);
    return dn_add(k, g->a_row0, dn_mul(k, m, dn_i64(k, g->a_sm)));
}

/* Vector j of C row r (offset 'co' of the row's first column): loaded
 * (vector or lane by lane when C is transposed) or stored. */
static LLVMValueRef load_c(DnKernel *k, const DnGemm *g, LLVMValueRef co, int nlast)
{
    int w = lanes(k);
    if (g->c_sn == 1) return wload(k, w, g->c, co, nlast);
    LLVMValueRef v = LLVMConstNull(vec_t(k, w));
    for (int l = 0; l < nlast; l++) {
        LLVMValueRef x = dn_load_f32(k, g->c, dn_add(k, co, dn_i64(k, l * g->c_sn)));
        v = LLVMBuildInsertElement(k->L->b, v, x, dn_i32(k, l), "");
    }
    return v;
}

static void store_c(DnKernel *k, const DnGemm *g, LLVMValueRef co, LLVMValueRef v, int nlast)
{
    int w = lanes(k);
    if (g->relu) {
        LLVMValueRef zero = LLVMConstNull(vec_t(k, w));
        v = LLVMBuildSelect(k->L->b, LLVMBuildFCmp(k->L->b, LLVMRealOLT, v, zero, ""), zero, v, "relu");
    }
    if (g->c_sn == 1) {
        wstore(k, w, g->c, co, v, nlast);
        return;
    }
    for (int l = 0; l < nlast; l++)
        dn_store_f32(k, g->c, dn_add(k, co, dn_i64(k, l * g->c_sn)),
                     LLVMBuildExtractElement(k->L->b, v, dn_i32(k, l), ""));
}

/* Offset of C(m0 + r, n0 + w j), w = lanes(k). */
static LLVMValueRef c_at(DnKernel *k, const DnGemm *g, LLVMValueRef m0, LLVMValueRef n0, int r, int j)
{
    LLVMValueRef o = dn_add(k, g->c_off, dn_mul(k, dn_add(k, m0, dn_i64(k, r)), dn_i64(k, g->c_sm)));
    return dn_add(k, o, dn_mul(k, dn_add(k, n0, dn_i64(k, lanes(k) * j)), dn_i64(k, g->c_sn)));
}

/* The initial accumulators: C, the bias or zero. */
static void init_acc(DnKernel *k, const DnGemm *g, LLVMValueRef m0, LLVMValueRef n0, int mr, int nv, int nlast,
                     LLVMValueRef acc[][DN_GEMM_MAX_NV])
{
    int w = lanes(k);
    LLVMTypeRef vt = vec_t(k, w);
    for (int j = 0; j < nv; j++) {
        int nl = j == nv - 1 ? nlast : w;
        LLVMValueRef bias = LLVMConstNull(vt);
        if (g->bias && !g->bias_rows)
            bias = wload(k, w, g->bias, dn_add(k, g->bias_off, dn_add(k, n0, dn_i64(k, w * j))), nl);
        for (int r = 0; r < mr; r++) {
            LLVMValueRef init = bias;
            if (g->bias && g->bias_rows)
                init = wsplat(k, w, dn_load_f32(k, g->bias, dn_add(k, g->bias_off, dn_add(k, m0, dn_i64(k, r)))));
            if (g->load_c) init = load_c(k, g, c_at(k, g, m0, n0, r, j), nl);
            if (g->load_c_if) /* C is read either way: it is the output, always allocated */
                init = LLVMBuildSelect(k->L->b, g->load_c_if, load_c(k, g, c_at(k, g, m0, n0, r, j), nl), init, "");
            acc[r][j] = dn_var(k, vt, init, "acc");
        }
    }
}

void dn_gemm_tile(DnKernel *k, const DnGemm *g, LLVMValueRef m0, LLVMValueRef n0, int mr, int nv, int nlast)
{
    int w = lanes(k);
    DN_ASSERT(mr >= 1 && mr <= DN_GEMM_MAX_MR && nv >= 1 && nv <= DN_GEMM_MAX_NV && nlast >= 1 && nlast <= w);
    LLVMTypeRef vt = vec_t(k, w);
    LLVMValueRef acc[DN_GEMM_MAX_MR][DN_GEMM_MAX_NV], rows[DN_GEMM_MAX_MR], bv[DN_GEMM_MAX_NV];
    init_acc(k, g, m0, n0, mr, nv, nlast, acc);
    for (int r = 0; r < mr; r++) rows[r] = a_row(k, g, dn_add(k, m0, dn_i64(k, r)));
    LLVMValueRef b0 = dn_add(k, g->b_off, n0);
    DnLoop l0 = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, g->K0 ? g->K0 : 1), "k0");
    LLVMValueRef kk0 = dn_mul(k, l0.i, g->K1);
    LLVMValueRef a0 = dn_mul(k, l0.i, dn_i64(k, g->a_s0));
    DnLoop l1 = dn_loop_begin(k, dn_i64(k, 0), g->K1, "k1");
    LLVMValueRef a1 = dn_add(k, a0, dn_mul(k, l1.i, dn_i64(k, g->a_s1)));
    LLVMValueRef kk1 = dn_mul(k, dn_add(k, kk0, l1.i), dn_i64(k, g->K2));
    LLVMValueRef b1 =
        dn_add(k, b0, dn_add(k, dn_mul(k, l0.i, dn_i64(k, g->b_s0)), dn_mul(k, l1.i, dn_i64(k, g->b_s1))));
    DnLoop l2 = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, g->K2), "k2");
    LLVMValueRef bo = g->b_3d ? dn_add(k, b1, dn_mul(k, l2.i, dn_i64(k, g->b_s2)))
                              : dn_add(k, b0, dn_mul(k, dn_add(k, kk1, l2.i), dn_i64(k, g->ldb)));
    LLVMValueRef ao = dn_add(k, a1, dn_mul(k, l2.i, dn_i64(k, g->a_s2)));
    for (int j = 0; j < nv; j++) bv[j] = wload(k, w, g->b, dn_add(k, bo, dn_i64(k, w * j)), j == nv - 1 ? nlast : w);
    for (int r = 0; r < mr; r++) {
        LLVMValueRef av = wsplat(k, w, dn_load_f32(k, g->a, dn_add(k, rows[r], ao)));
        for (int j = 0; j < nv; j++) dn_set(k, acc[r][j], wfma(k, w, av, bv[j], dn_get(k, acc[r][j], vt)));
    }
    dn_loop_end(k, &l2);
    dn_loop_end(k, &l1);
    dn_loop_end(k, &l0);
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nv; j++)
            store_c(k, g, c_at(k, g, m0, n0, r, j), dn_get(k, acc[r][j], vt), j == nv - 1 ? nlast : w);
}

void dn_gemm_shape(int64_t M, int64_t N, int *mr, int *nv)
{
    *nv = N > 8 ? 2 : 1;
    int lo = *nv == 1 ? 8 : 4, hi = *nv == 1 ? 12 : 6;
    *mr = hi;
    for (int r = hi - 1; M > 0 && r >= lo; r--)
        if ((M + r - 1) / r * r < (M + *mr - 1) / *mr * *mr) *mr = r;
}

/* The column tiles of the row tile at m0 (mr rows). */
static void col_tiles(DnKernel *k, const DnGemm *g, LLVMValueRef m0, int mr, int nv, int64_t N)
{
    int w = lanes(k);
    int64_t nr = w * nv, nfull = N / nr, nrem = N % nr;
    if (nfull > 0) {
        DnLoop lu = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, nfull), "ntile");
        dn_gemm_tile(k, g, m0, dn_mul(k, lu.i, dn_i64(k, nr)), mr, nv, w);
        dn_loop_end(k, &lu);
    }
    if (nrem > 0) {
        int nve = (int)((nrem + w - 1) / w);
        dn_gemm_tile(k, g, m0, dn_i64(k, nfull * nr), mr, nve, (int)(nrem - w * (nve - 1)));
    }
}

void dn_gemm(DnKernel *k, const DnGemm *g, int64_t M, int64_t N)
{
    int mr, nv;
    dn_gemm_shape(0, N, &mr, &nv);
    int64_t mfull = M / mr, mrem = M % mr;
    if (mfull > 0) {
        DnLoop lt = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, mfull), "mtile");
        col_tiles(k, g, dn_mul(k, lt.i, dn_i64(k, mr)), mr, nv, N);
        dn_loop_end(k, &lt);
    }
    if (mrem > 0) col_tiles(k, g, dn_i64(k, mfull * mr), (int)mrem, nv, N);
}

void dn_gemm_rows(DnKernel *k, const DnGemm *g, LLVMValueRef tiles, int mr, int nv, int64_t N)
{
    DnLoop lt = dn_loop_begin(k, dn_i64(k, 0), tiles, "mtile");
    col_tiles(k, g, dn_mul(k, lt.i, dn_i64(k, mr)), mr, nv, N);
    dn_loop_end(k, &lt);
}

void dn_gemm_range(DnKernel *k, const DnGemm *g, LLVMValueRef lo, LLVMValueRef hi, int64_t N)
{
    int mr, nv;
    dn_gemm_shape(0, N, &mr, &nv);
    LLVMValueRef tiles = LLVMBuildSDiv(k->L->b, LLVMBuildSub(k->L->b, hi, lo, ""), dn_i64(k, mr), "tiles");
    DnLoop lt = dn_loop_begin(k, dn_i64(k, 0), tiles, "mtile");
    col_tiles(k, g, dn_add(k, lo, dn_mul(k, lt.i, dn_i64(k, mr))), mr, nv, N);
    dn_loop_end(k, &lt);
    DnLoop lr = dn_loop_begin(k, dn_add(k, lo, dn_mul(k, tiles, dn_i64(k, mr))), hi, "mrow");
    col_tiles(k, g, lr.i, 1, nv, N);
    dn_loop_end(k, &lr);
}

LLVMValueRef dn_scratch_f32(DnKernel *k, int64_t n, const char *name)
{
    LLVMValueRef v = dn_var(k, LLVMArrayType2(k->L->f32, (uint64_t)n), NULL, name);
    LLVMSetAlignment(v, 64);
    return v;
}

void dn_zero_f32(DnKernel *k, LLVMValueRef buf, LLVMValueRef off, int64_t n)
{
    DnLoop l = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, n), "z");
    dn_store_f32(k, buf, dn_add(k, off, l.i), dn_f32(k, 0));
    dn_loop_end(k, &l);
}
