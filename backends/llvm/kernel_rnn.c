/* kernel_rnn.c -- CPU kernels of rnn_scan and rnn_scan_bwd (ir/rnn_cell.h
 * has the cells, the operand layouts and the save slots).
 *
 * Both run in parallel over batch items: a call takes items [begin, end)
 * and walks the whole sequence for them, the step loop outside the item
 * loop so that each row of w_hh is read once per step for all the call's
 * items (it stays in L1 while they use it).  An item's arithmetic does not
 * depend on which other items share its call, so the results are the same
 * for any thread count.
 *
 * rnn_scan per step t: slot 0 of save[n, t] = h (from the running state,
 * which is the result s_T itself, initialised to s0); slots 1..G = hg =
 * b_hh + w_hh h (a dot of H per gate row, a reduction the vectorizer
 * splits into lanes); then the cell's pointwise pass turns slots 1..G into
 * the activated gates and writes the other slots, y and the state.  A
 * masked step zeroes slots 1..K-1 and y and leaves the state.
 *
 * rnn_scan_bwd walks the steps in the reverse order of the forward, with
 * the running dh (dc) in its result ds0, initialised to ds: the pointwise
 * pass reads dh = (h part of ds0) + dy[t], writes dxg and dhg of the step
 * and sets ds0 to the part of dh_prev (dc_prev) not through w_hh; then
 * every gate row r adds dhg[r] w_hh[r, :] to the h part of ds0.  A masked step writes zeros to dxg
 * and dhg and carries dh and dc unchanged.
 */
#include "../../ir/rnn_cell.h"
#include "llvm_internal.h"

typedef struct Rnn {
    const DnRnnCellInfo *c;
    int64_t H, G, S, K;
    LLVMValueRef T; /* steps: a constant, or k->t for the sequence axis */
    bool rev;
    LLVMValueRef mask; /* NULL when absent */
} Rnn;

static Rnn rnn_of(DnKernel *k, const DnValue *seq, int imask)
{
    Rnn r = {.c = dn_rnn_cell(dn_op_str(k->op, "cell"))};
    DN_ASSERT(r.c);
    r.H = k->op->in[3 - 2 * (k->op->kind == DN_OP_RNN_SCAN)]->shape.dim[1]; /* w_hh: operand 1 / 3 */
    r.T = dn_dim(k, seq, 1);
    r.G = r.c->gates, r.S = r.c->state, r.K = r.c->saved;
    r.rev = dn_op_int(k->op, "reverse") != 0;
    r.mask = k->op->nin > imask ? k->in[imask] : NULL;
    bool n = dn_shape_has_n(&seq->shape);
    k->par_n = n ? 1 : 0;
    k->par_b = n ? 0 : seq->shape.dim[0];
    return r;
}

static LLVMValueRef ld(DnKernel *k, LLVMValueRef base, LLVMValueRef at, int64_t off)
{
    return dn_load_f32(k, base, dn_add(k, at, dn_i64(k, off)));
}

static void st(DnKernel *k, LLVMValueRef base, LLVMValueRef at, int64_t off, LLVMValueRef v)
{
    dn_store_f32(k, base, dn_add(k, at, dn_i64(k, off)), v);
}

static LLVMValueRef fsub(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(k->L->b, a, b, ""); }
static LLVMValueRef one_minus(DnKernel *k, LLVMValueRef a) { return fsub(k, dn_f32(k, 1), a); }

/* 1 / (1 + exp(-x)), as the sigmoid op */
static LLVMValueRef sigm(DnKernel *k, LLVMValueRef x)
{
    LLVMValueRef e = dn_call_f32(k, "llvm.exp.f32", LLVMBuildFNeg(k->L->b, x, ""));
    return LLVMBuildFDiv(k->L->b, dn_f32(k, 1), dn_fadd(k, dn_f32(k, 1), e), "");
}

static LLVMValueRef ftanh(DnKernel *k, LLVMValueRef x) { return dn_call_f32(k, "tanhf", x); }

/* The step t of loop index s: forward order (backward = the reverse of it). */
static LLVMValueRef step_t(DnKernel *k, const Rnn *r, LLVMValueRef s, bool backward)
{
    if (r->rev == backward) return s;
    return LLVMBuildSub(k->L->b, LLVMBuildSub(k->L->b, r->T, dn_i64(k, 1), ""), s, "t");
}

/* Whether step t of item 'item' is part of its sequence (true without a mask). */
static LLVMValueRef valid_step(DnKernel *k, const Rnn *r, LLVMValueRef row)
{
    if (!r->mask) return LLVMConstInt(k->L->i1, 1, 0);
    return LLVMBuildFCmp(k->L->b, LLVMRealUNE, dn_load_f32(k, r->mask, row), dn_f32(k, 0), "valid");
}

/* base[at + j] = 0 for j in [0, len) */
static void zero_run(DnKernel *k, LLVMValueRef base, LLVMValueRef at, int64_t len)
{
    DnLoop l = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, len), "z");
    dn_store_f32(k, base, dn_add(k, at, l.i), dn_f32(k, 0));
    dn_loop_end(k, &l);
}

/* ---- rnn_scan ---------------------------------------------------------------- */

/* The cell's pointwise pass at element j of an item's step: xb, sv, so, yb
 * the offsets of the step's xg row, save row, the item's state, its y row. */
static void cell_fwd(DnKernel *k, const Rnn *r, LLVMValueRef j, LLVMValueRef xb, LLVMValueRef sv, LLVMValueRef so,
                     LLVMValueRef yb)
{
    LLVMValueRef xg = k->in[0], save = k->out[2], s = k->out[1];
    int64_t H = r->H;
    xb = dn_add(k, xb, j), sv = dn_add(k, sv, j), so = dn_add(k, so, j);
    LLVMValueRef h;
    if (r->c->cell == DN_RNN_LSTM) {
        LLVMValueRef gi = sigm(k, dn_fadd(k, ld(k, xg, xb, 0), ld(k, save, sv, H)));
        LLVMValueRef gf = sigm(k, dn_fadd(k, ld(k, xg, xb, H), ld(k, save, sv, 2 * H)));
        LLVMValueRef gg = ftanh(k, dn_fadd(k, ld(k, xg, xb, 2 * H), ld(k, save, sv, 3 * H)));
        LLVMValueRef go = sigm(k, dn_fadd(k, ld(k, xg, xb, 3 * H), ld(k, save, sv, 4 * H)));
        LLVMValueRef cp = ld(k, s, so, H);
        LLVMValueRef c = dn_fadd(k, dn_fmul(k, gf, cp), dn_fmul(k, gi, gg));
        h = dn_fmul(k, go, ftanh(k, c));
        LLVMValueRef slots[6] = {gi, gf, gg, go, cp, c};
        for (int i = 0; i < 6; i++) st(k, save, sv, (i + 1) * H, slots[i]);
        st(k, s, so, H, c);
    } else if (r->c->cell == DN_RNN_GRU) {
        LLVMValueRef hn = ld(k, save, sv, 3 * H);
        LLVMValueRef gr = sigm(k, dn_fadd(k, ld(k, xg, xb, 0), ld(k, save, sv, H)));
        LLVMValueRef gz = sigm(k, dn_fadd(k, ld(k, xg, xb, H), ld(k, save, sv, 2 * H)));
        LLVMValueRef gn = ftanh(k, dn_fadd(k, ld(k, xg, xb, 2 * H), dn_fmul(k, gr, hn)));
        h = dn_fadd(k, dn_fmul(k, one_minus(k, gz), gn), dn_fmul(k, gz, ld(k, save, sv, 0)));
        LLVMValueRef slots[4] = {gr, gz, gn, hn};
        for (int i = 0; i < 4; i++) st(k, save, sv, (i + 1) * H, slots[i]);
    } else {
        LLVMValueRef pre = dn_fadd(k, ld(k, xg, xb, 0), ld(k, save, sv, H));
        if (r->c->cell == DN_RNN_TANH)
            h = ftanh(k, pre);
        else /* relu; NaN stays NaN */
            h = LLVMBuildSelect(k->L->b, LLVMBuildFCmp(k->L->b, LLVMRealOLT, pre, dn_f32(k, 0), ""), dn_f32(k, 0), pre,
                                "");
        st(k, save, sv, H, h);
    }
    st(k, s, so, 0, h);
    dn_store_f32(k, k->out[0], dn_add(k, yb, j), h);
}

/* in xg, w_hh, b_hh, s0, mask?;  out y, s_T, save */
void dn_kernel_rnn_scan(DnKernel *k)
{
    Rnn r = rnn_of(k, k->op->in[0], 4);
    LLVMBuilderRef b = k->L->b;
    int64_t H = r.H, GH = r.G * H, SH = r.S * H, KH = r.K * H;
    LLVMValueRef w = k->in[1], bias = k->in[2], save = k->out[2], s = k->out[1];

    DnLoop li = dn_loop_begin(k, dn_mul(k, k->begin, dn_i64(k, SH)), dn_mul(k, k->end, dn_i64(k, SH)), "e");
    dn_store_f32(k, s, li.i, dn_load_f32(k, k->in[3], li.i));
    dn_loop_end(k, &li);

    DnLoop ls = dn_loop_begin(k, dn_i64(k, 0), r.T, "s");
    LLVMValueRef t = step_t(k, &r, ls.i, false);
#define ROW(item) dn_add(k, dn_mul(k, (item), r.T), t)
    /* slot 0: the h the step starts from */
    DnLoop l0 = dn_loop_begin(k, k->begin, k->end, "n");
    LLVMValueRef sv0 = dn_mul(k, ROW(l0.i), dn_i64(k, KH)), so0 = dn_mul(k, l0.i, dn_i64(k, SH));
    DnLoop lj0 = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, H), "j");
    dn_store_f32(k, save, dn_add(k, sv0, lj0.i), dn_load_f32(k, s, dn_add(k, so0, lj0.i)));
    dn_loop_end(k, &lj0);
    dn_loop_end(k, &l0);
    /* slots 1..G: hg[g] = b_hh[g] + w_hh[g, :] . h */
    DnLoop lg = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, GH), "g");
    LLVMValueRef wrow = dn_mul(k, lg.i, dn_i64(k, H)), bg = dn_load_f32(k, bias, lg.i);
    DnLoop ln = dn_loop_begin(k, k->begin, k->end, "n");
    LLVMValueRef sv = dn_mul(k, ROW(ln.i), dn_i64(k, KH));
    LLVMValueRef acc = dn_var(k, k->L->f32, dn_f32(k, 0), "acc");
    DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, H), "j");
    LLVMValueRef prod = dn_fmul(k, dn_load_f32(k, w, dn_add(k, wrow, lj.i)), dn_load_f32(k, save, dn_add(k, sv, lj.i)));
    dn_set(k, acc, dn_fadd(k, dn_get(k, acc, k->L->f32), prod));
    dn_loop_end(k, &lj);
    st(k, save, dn_add(k, sv, lg.i), H, dn_fadd(k, bg, dn_get(k, acc, k->L->f32)));
    dn_loop_end(k, &ln);
    dn_loop_end(k, &lg);
    /* the cell */
    DnLoop lc = dn_loop_begin(k, k->begin, k->end, "n");
    LLVMValueRef row = ROW(lc.i), svc = dn_mul(k, row, dn_i64(k, KH)), yb = dn_mul(k, row, dn_i64(k, H));
    LLVMValueRef valid = valid_step(k, &r, row);
    LLVMBasicBlockRef after = dn_if_begin(k, valid);
    DnLoop ljc = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, H), "j");
    cell_fwd(k, &r, ljc.i, dn_mul(k, row, dn_i64(k, GH)), svc, dn_mul(k, lc.i, dn_i64(k, SH)), yb);
    dn_loop_end(k, &ljc);
    dn_if_end(k, after);
    after = dn_if_begin(k, LLVMBuildNot(b, valid, ""));
    zero_run(k, save, dn_add(k, svc, dn_i64(k, H)), KH - H);
    zero_run(k, k->out[0], yb, H);
    dn_if_end(k, after);
    dn_loop_end(k, &lc);
#undef ROW
    dn_loop_end(k, &ls);
}

/* ---- rnn_scan_bwd ------------------------------------------------------------ */

/* The backward pointwise pass at element j: gb, sv, so, yb the offsets of
 * the step's gate rows (dxg, dhg), its save row, the item's ds0, its dy row. */
static void cell_bwd(DnKernel *k, const Rnn *r, LLVMValueRef j, LLVMValueRef gb, LLVMValueRef sv, LLVMValueRef so,
                     LLVMValueRef yb)
{
    LLVMValueRef save = k->in[2], dxg = k->out[0], dhg = k->out[1], ds = k->out[2];
    int64_t H = r->H;
    gb = dn_add(k, gb, j), sv = dn_add(k, sv, j), so = dn_add(k, so, j);
    LLVMValueRef dh = dn_fadd(k, ld(k, ds, so, 0), dn_load_f32(k, k->in[0], dn_add(k, yb, j)));
    LLVMValueRef dx[4], dg[4], dprev = dn_f32(k, 0);
    if (r->c->cell == DN_RNN_LSTM) {
        LLVMValueRef gi = ld(k, save, sv, H), gf = ld(k, save, sv, 2 * H), gg = ld(k, save, sv, 3 * H);
        LLVMValueRef go = ld(k, save, sv, 4 * H), cp = ld(k, save, sv, 5 * H), tc = ftanh(k, ld(k, save, sv, 6 * H));
        LLVMValueRef dc =
            dn_fadd(k, ld(k, ds, so, H), dn_fmul(k, dn_fmul(k, dh, go), one_minus(k, dn_fmul(k, tc, tc))));
        dx[0] = dn_fmul(k, dn_fmul(k, dc, gg), dn_fmul(k, gi, one_minus(k, gi)));
        dx[1] = dn_fmul(k, dn_fmul(k, dc, cp), dn_fmul(k, gf, one_minus(k, gf)));
        dx[2] = dn_fmul(k, dn_fmul(k, dc, gi), one_minus(k, dn_fmul(k, gg, gg)));
        dx[3] = dn_fmul(k, dn_fmul(k, dh, tc), dn_fmul(k, go, one_minus(k, go)));
        for (int i = 0; i < 4; i++) dg[i] = dx[i];
        st(k, ds, so, H, dn_fmul(k, dc, gf));
    } else if (r->c->cell == DN_RNN_GRU) {
        LLVMValueRef gr = ld(k, save, sv, H), gz = ld(k, save, sv, 2 * H), gn = ld(k, save, sv, 3 * H);
        LLVMValueRef hn = ld(k, save, sv, 4 * H), hp = ld(k, save, sv, 0);
        LLVMValueRef dn = dn_fmul(k, dn_fmul(k, dh, one_minus(k, gz)), one_minus(k, dn_fmul(k, gn, gn)));
        LLVMValueRef dr = dn_fmul(k, dn_fmul(k, dn, hn), dn_fmul(k, gr, one_minus(k, gr)));
        LLVMValueRef dz = dn_fmul(k, dn_fmul(k, dh, fsub(k, hp, gn)), dn_fmul(k, gz, one_minus(k, gz)));
        dx[0] = dg[0] = dr;
        dx[1] = dg[1] = dz;
        dx[2] = dn;
        dg[2] = dn_fmul(k, dn, gr);
        dprev = dn_fmul(k, dh, gz);
    } else {
        LLVMValueRef h = ld(k, save, sv, H);
        if (r->c->cell == DN_RNN_TANH)
            dx[0] = dn_fmul(k, dh, one_minus(k, dn_fmul(k, h, h)));
        else
            dx[0] = LLVMBuildSelect(k->L->b, LLVMBuildFCmp(k->L->b, LLVMRealOGT, h, dn_f32(k, 0), ""), dh, dn_f32(k, 0),
                                    "");
        dg[0] = dx[0];
    }
    for (int i = 0; i < r->G; i++) st(k, dxg, gb, i * H, dx[i]), st(k, dhg, gb, i * H, dg[i]);
    st(k, ds, so, 0, dprev);
}

/* in dy, ds, save, w_hh, mask?;  out dxg, dhg, ds0 */
void dn_kernel_rnn_scan_bwd(DnKernel *k)
{
    Rnn r = rnn_of(k, k->op->in[0], 4);
    LLVMBuilderRef b = k->L->b;
    int64_t H = r.H, GH = r.G * H, SH = r.S * H, KH = r.K * H;
    LLVMValueRef w = k->in[3], dhg = k->out[1], ds = k->out[2];

    DnLoop li = dn_loop_begin(k, dn_mul(k, k->begin, dn_i64(k, SH)), dn_mul(k, k->end, dn_i64(k, SH)), "e");
    dn_store_f32(k, ds, li.i, dn_load_f32(k, k->in[1], li.i));
    dn_loop_end(k, &li);

    DnLoop ls = dn_loop_begin(k, dn_i64(k, 0), r.T, "s");
    LLVMValueRef t = step_t(k, &r, ls.i, true);
#define ROW(item) dn_add(k, dn_mul(k, (item), r.T), t)
    /* the cell: dxg, dhg of the step, ds0 = the parts of dh_prev, dc_prev not through w_hh */
    DnLoop lc = dn_loop_begin(k, k->begin, k->end, "n");
    LLVMValueRef row = ROW(lc.i), gb = dn_mul(k, row, dn_i64(k, GH));
    LLVMValueRef valid = valid_step(k, &r, row);
    LLVMBasicBlockRef after = dn_if_begin(k, valid);
    DnLoop ljc = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, H), "j");
    cell_bwd(k, &r, ljc.i, gb, dn_mul(k, row, dn_i64(k, KH)), dn_mul(k, lc.i, dn_i64(k, SH)),
             dn_mul(k, row, dn_i64(k, H)));
    dn_loop_end(k, &ljc);
    dn_if_end(k, after);
    after = dn_if_begin(k, LLVMBuildNot(b, valid, ""));
    zero_run(k, k->out[0], gb, GH);
    zero_run(k, dhg, gb, GH);
    dn_if_end(k, after);
    dn_loop_end(k, &lc);
    /* dh_prev += dhg[g] w_hh[g, :] for every gate row g, in order (masked steps add zeros: skipped) */
    DnLoop lg = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, GH), "g");
    LLVMValueRef wrow = dn_mul(k, lg.i, dn_i64(k, H));
    DnLoop ln = dn_loop_begin(k, k->begin, k->end, "n");
    LLVMValueRef rown = ROW(ln.i), so = dn_mul(k, ln.i, dn_i64(k, SH));
    after = dn_if_begin(k, valid_step(k, &r, rown));
    LLVMValueRef d = dn_load_f32(k, dhg, dn_add(k, dn_mul(k, rown, dn_i64(k, GH)), lg.i));
    DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, H), "j");
    LLVMValueRef at = dn_add(k, so, lj.i);
    dn_store_f32(k, ds, at, dn_fma(k, dn_load_f32(k, w, dn_add(k, wrow, lj.i)), d, dn_load_f32(k, ds, at)));
    dn_loop_end(k, &lj);
    dn_if_end(k, after);
    dn_loop_end(k, &ln);
    dn_loop_end(k, &lg);
#undef ROW
    dn_loop_end(k, &ls);
}
