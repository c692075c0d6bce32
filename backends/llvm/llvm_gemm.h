/* llvm_gemm.h -- the register-blocked GEMM micro-kernel for kernel
 * generators (llvm_gemm.c) and the fast kernels built on it:
 * kernel_conv_gemm.c (conv2d), kernel_conv_bwd_gemm.c and
 * kernel_conv_bwd_dot.c (its gradients), kernel_matmul_gemm.c (matmul).
 * Each fast kernel is offered the op first by the op's own generator and
 * returns false, emitting nothing, for shapes it does not take; compiling
 * with dnnc --direct-kernels keeps every op on the direct
 * loops (for A/B timing and tests/unit/test_gemm.c).
 *
 * The micro-kernel computes one MR x (W*NV) tile of
 *     C[m, n] (+)= sum_k A[m, k] * B[k, n]
 * with the tile's accumulators in <W x float> registers, W = 16 where the
 * target has AVX-512 (DnHost.vec_regs 32), else 8: per k it loads NV
 * vectors of B (one row), broadcasts MR scalars of A (one column) and
 * issues MR * NV llvm.fma.vWf32.  B and C are row-major with n contiguous
 * (C may also be written transposed); A is addressed per row through a
 * base offset and a reduction index in up to three levels, so an operand
 * that is not a plain matrix (an input image seen as im2col rows or
 * columns) needs no copy.
 */
#ifndef DN_LLVM_GEMM_H
#define DN_LLVM_GEMM_H

#include "llvm_internal.h"

enum { DN_GEMM_MAX_MR = 12, DN_GEMM_MAX_NV = 3 };

/* ---- llvm_gemm.c ----------------------------------------------------------- */

/* W, the micro-kernel's vector width in floats: 16 or 8. */
int dn_gemm_lanes(DnKernel *k);

/* <8 x float> building blocks (always 8 lanes, whatever W).  'nlast' < 8 loads (stores) only the first
 * nlast lanes (llvm.masked.load/store; the other lanes load as 0). */
LLVMTypeRef dn_v8_t(DnKernel *k);
LLVMValueRef dn_vec_load(DnKernel *k, LLVMValueRef base, LLVMValueRef off, int nlast);
void dn_vec_store(DnKernel *k, LLVMValueRef base, LLVMValueRef off, LLVMValueRef v, int nlast);
LLVMValueRef dn_vec_splat(DnKernel *k, LLVMValueRef s);
LLVMValueRef dn_vec_fma(DnKernel *k, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c); /* a * b + c */
/* The sum of the 8 lanes of 'v'. */
LLVMValueRef dn_vec_hsum(DnKernel *k, LLVMValueRef v);

/* The offset of A(m, 0) for row 'm' (an i64 value). */
typedef LLVMValueRef (*DnGemmRowFn)(DnKernel *k, void *ctx, LLVMValueRef m);

/* One product C = [bias +] [C +] A·B, with a reduction index in three
 * levels k = (k0 * K1 + k1) * K2 + k2:
 *   A(m, k) at a[row(m) + k0 * a_s0 + k1 * a_s1 + k2 * a_s2],
 *           row(m) = row_fn(m) when row_fn is set, else a_row0 + m * a_sm;
 *   B(k, n) at b[b_off + k * ldb + n]  (n contiguous), or with b_3d at
 *           b[b_off + k0 * b_s0 + k1 * b_s1 + k2 * b_s2 + n];
 *   C(m, n) at c[c_off + m * c_sm + n * c_sn]  (c_sn == 1: vector stores;
 *           otherwise c_sm must be 1 and C is written transposed, lane by lane). */
typedef struct DnGemm {
    LLVMValueRef a, b, c; /* f32 base pointers */
    LLVMValueRef a_row0;  /* i64 */
    int64_t a_sm;
    DnGemmRowFn row_fn; /* optional */
    void *row_ctx;
    int64_t K0;      /* outer reduction count (0 counts as 1) */
    LLVMValueRef K1; /* i64 middle reduction count (may be run-time) */
    int64_t K2;      /* inner reduction count */
    int64_t a_s0, a_s1, a_s2;
    LLVMValueRef b_off; /* i64 */
    int64_t ldb;
    bool b_3d; /* B strides per reduction level (b_s0..2) instead of ldb */
    int64_t b_s0, b_s1, b_s2;
    LLVMValueRef c_off; /* i64 */
    int64_t c_sm, c_sn;
    bool load_c;                 /* accumulate into C (else overwrite) */
    LLVMValueRef load_c_if;      /* optional i1, with load_c false: accumulate into C where it is true */
    LLVMValueRef bias, bias_off; /* optional: C starts from bias[bias_off + n] (with load_c false) */
    bool bias_rows;              /* ... from bias[bias_off + m] instead */
    bool relu;                   /* C = max(C, 0) at the end */
} DnGemm;

/* Emits one tile: rows m0 .. m0+mr-1 (mr <= DN_GEMM_MAX_MR), columns n0 ..
 * n0+W*nv-1 (nv <= DN_GEMM_MAX_NV; m0, n0 i64 values); only the first
 * 'nlast' lanes (1..W) of the last vector are read from B and bias and
 * read or written in C (masked).  Reads A only at rows of the tile. */
void dn_gemm_tile(DnKernel *k, const DnGemm *g, LLVMValueRef m0, LLVMValueRef n0, int mr, int nv, int nlast);

/* The register tile for an M x N problem: *nv vectors wide (2 when N > 8,
 * else 1) and *mr rows (4..6 for nv = 2, 8..12 for nv = 1: the count that
 * pads M least to a multiple of *mr, the largest on ties; the largest
 * when M is 0). */
void dn_gemm_shape(int64_t M, int64_t N, int *mr, int *nv);

/* Emits the whole product for M (static) rows and N columns: full tiles in
 * loops, then a narrower last column tile and a shorter last row tile
 * where M, N do not divide. */
void dn_gemm(DnKernel *k, const DnGemm *g, int64_t M, int64_t N);

/* The same for 'tiles' (an i64 value) full tiles of mr x W*nv, rows
 * [0, tiles * mr): the caller provides room in C for rows past its valid
 * ones, and row(m) offsets that are safe to read there. */
void dn_gemm_rows(DnKernel *k, const DnGemm *g, LLVMValueRef tiles, int mr, int nv, int64_t N);

/* The same for the rows [lo, hi) (i64 values): full tiles, then the
 * remaining rows one at a time (a one-row tile). */
void dn_gemm_range(DnKernel *k, const DnGemm *g, LLVMValueRef lo, LLVMValueRef hi, int64_t N);

/* An f32 scratch array of 'n' elements on the kernel's stack (entry-block
 * alloca, 64-byte aligned); 'n' is static.  Large arrays belong in the
 * op's workspace instead (dn_ws_slice_f32, llvm_internal.h). */
LLVMValueRef dn_scratch_f32(DnKernel *k, int64_t n, const char *name);
/* buf[off + i] = 0 for i < n ('off' an i64 value). */
void dn_zero_f32(DnKernel *k, LLVMValueRef buf, LLVMValueRef off, int64_t n);

/* ---- kernel_conv_bwd.c: convolution geometry ------------------------------- */
typedef struct DnConvGeom {
    int64_t C, H, W, O, OH, OW, KH, KW, G, Cg, Og;
    int64_t sh, sw, ph, pw, dh, dw;
} DnConvGeom;

/* The geometry of a conv2d with input 'x', weight 'w' and output 'y'
 * (attributes stride, pad, dilation, groups of 'op'). */
DnConvGeom dn_conv_geom(const DnOp *op, const DnValue *x, const DnValue *w, const DnValue *y);

/* The outputs o in [*lo, *hi) whose input coordinate o * s - p + t * d
 * lies in [0, lim), for kernel tap 't' (i64 value). */
void dn_conv_valid_range(DnKernel *k, LLVMValueRef t, int64_t s, int64_t p, int64_t d, int64_t lim, int64_t nout,
                         LLVMValueRef *lo, LLVMValueRef *hi);

/* ---- the fast kernels ------------------------------------------------------- */

/* kernel_conv_gemm.c: conv2d forward as a GEMM (implicit im2col); false,
 * emitting nothing, for an epilogue other than none/relu or a shape whose
 * one-channel, one-row band does not fit the stack budget. */
bool dn_conv_fwd_gemm(DnKernel *k);
/* Its scratch (per worker), or false exactly when it declines the op (the
 * --direct-kernels test is the caller's). */
bool dn_conv_fwd_gemm_scratch(const DnOp *op, DnScratch *s);
/* Copies channels g*Cg .. g*Cg+Cg-1 of item 'n' of the NCHW tensor 'x' into
 * 'xp' laid out [Cg, H + 2 ph, W + 2 pw] at offset (ph, pw) of each plane;
 * the border of 'xp' is left as it is (the caller zeroes it once). */
void dn_conv_pad_image(DnKernel *k, const DnConvGeom *c, LLVMValueRef x, LLVMValueRef xp, LLVMValueRef n,
                       LLVMValueRef g);

/* kernel_conv_winograd.c: conv2d forward by Winograd F(2x2, 3x3) for 3x3,
 * stride 1, one-group layers with enough channels and tiles (two phases:
 * the weight transform, then the convolution); false, emitting nothing,
 * for the other shapes and under --no-winograd or --direct-kernels.  Its
 * scratch ('o' the backend options, NULL for the defaults), or false
 * exactly when it declines. */
bool dn_conv_winograd(DnKernel *k);
bool dn_conv_winograd_scratch(const DnOp *op, const DnBackendOptions *o, DnScratch *s);
/* The same form for any convolution of geometry 'c' with the operands of
 * 'op' (DnConvBand, below: the weights as its strides say, a_sg unused as
 * there is one group); 'xv' is the value x belongs to.  Its scratch, or
 * false exactly when it declines. */
typedef struct DnConvBand DnConvBand;
bool dn_conv_winograd_form(DnKernel *k, const DnConvGeom *c, const DnConvBand *op, const DnValue *xv);
bool dn_conv_winograd_form_scratch(const DnConvGeom *c, const DnBackendOptions *o, DnScratch *s);
/* kernel_conv_bwd_gemm.c: conv2d_bwd_data at stride 1 as the Winograd form
 * of the flipped convolution (false, emitting nothing, where it declines). */
bool dn_conv_bwd_data_winograd(DnKernel *k);
bool dn_conv_bwd_data_winograd_scratch(const DnOp *op, const DnBackendOptions *o, DnScratch *s);

/* kernel_conv_gemm.c: the band form of a convolution with geometry 'c'
 * (any shape whose one-channel, one-row band fits the scratch budget; false,
 * emitting nothing, otherwise): y[n, o, oh, ow] = [bias[o] +] sum over
 * m = (ci, kh, kw) of A(o, m) x[n, g*Cg + ci, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw]
 * [then relu], with A(o, m) = w[g*a_sg + o*a_sm + ci*a_s0 + kh*a_s1 + kw*a_s2 + a_base]
 * (o, ci within group g).  A forward conv2d reads w as stored; conv2d_bwd_data
 * at stride 1 is the same form on dy with the kernel flipped and transposed.
 * 'xv' is the value x belongs to (for its batch axis). */
struct DnConvBand {
    LLVMValueRef x, w, y, bias; /* f32 base pointers; bias optional */
    bool relu;
    int64_t a_sg, a_sm, a_s0, a_s1, a_s2, a_base;
    int64_t y_item; /* elements from one item of y to the next; 0: O * OH * OW */
};
bool dn_conv_band(DnKernel *k, const DnConvGeom *c, const DnConvBand *op, const DnValue *xv);
/* Elements from one batch item of conv2d k->op's result to the next: O * OH * OW,
 * or the stride of the memory plan's view when the result is written into a
 * concat in place (DN_OPF_STRIDED_OUT). */
int64_t dn_conv_y_item(const DnKernel *k, const DnConvGeom *c);
/* The band form's scratch for geometry 'c' (its band buffer, per worker),
 * or false exactly when dn_conv_band would decline. */
bool dn_conv_band_scratch(const DnConvGeom *c, DnScratch *s);
/* Where band element (cc, t, kw, ow) lies in a band buffer:
 * cc*s_c + t*s_t + kw*s_kw + ow, for t < BH (a run of OW floats each);
 * band row t is input row ih0 + t * ih_step (0 counts as 1). */
typedef struct DnBandLayout {
    int64_t BH, s_c, s_t, s_kw, ih_step;
} DnBandLayout;
/* The band buffer of dn_conv_band: band(cc, t, kw, ow) =
 * x[ch0 + cc, ih0 + t*ih_step, ow*sw - pw + kw*dw] (channel index with the item's
 * offset included; 0 outside the image) for cc < nch, t < lay->BH, ow < OW,
 * placed as 'lay' says; nothing else in 'buf' is written. */
void dn_conv_band_copy(DnKernel *k, const DnConvGeom *c, LLVMValueRef x, LLVMValueRef buf, LLVMValueRef ch0,
                       LLVMValueRef nch, LLVMValueRef ih0, const DnBandLayout *lay);

/* kernel_conv_bwd_gemm.c: GEMM forms of conv2d's gradient kernels.  Each
 * returns false, emitting nothing, when even its banded scratch buffers
 * would not fit the scratch budget (the caller then emits the direct kernel).
 * Their scratch is workspace (dn_ws_slice_f32); ..._scratch says how
 * much, or returns false exactly when the generator would (the
 * --direct-kernels test is the caller's). */
bool dn_conv_bwd_filter_gemm(DnKernel *k);
bool dn_conv_bwd_filter_gemm_scratch(const DnOp *op, DnScratch *s);
bool dn_conv_bwd_data_gemm(DnKernel *k);
bool dn_conv_bwd_data_gemm_scratch(const DnOp *op, DnScratch *s);
/* kernel_conv_bwd_dot.c: conv2d_bwd_filter for narrow output groups (see
 * there); false, emitting nothing, for the other shapes; its scratch as
 * for the GEMM form. */
bool dn_conv_bwd_filter_dot(DnKernel *k);
bool dn_conv_bwd_filter_dot_scratch(const DnOp *op, DnScratch *s);
/* kernel_matmul_gemm.c: matmul of two matrices (rank 2, no trans_b) on
 * the micro-kernel, b packed in cache blocks when it is large; false,
 * emitting nothing, for the other forms (and so for its scratch). */
bool dn_matmul_gemm(DnKernel *k);
bool dn_matmul_gemm_scratch(const DnOp *op, DnScratch *s);

/* kernel_attention.c: the workspace of flash_attention and flash_attention_bwd
 * (all per worker; always true). */
bool dn_attention_scratch(const DnOp *op, DnScratch *s);

#endif
