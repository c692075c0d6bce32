/* gpu_kernel_attention.c -- flash_attention and flash_attention_bwd on the
 * GPU (ops.def; shapes and bias strides from dn_attention_geom).  No
 * kernel holds the [Tq, Tk] scores: a work-group owns a tile of rows of
 * one head (bh, of n * lead or lead), one row per work item, and walks the
 * other side's rows tile by tile through LOCAL memory, which the group
 * loads cooperatively between two barriers (every item reaches them; only
 * the work is guarded).  Each item keeps its row and its accumulators in
 * private arrays of d or dv floats.  With s = scale q_i·k_j + bias_ij
 * (the bias read from global memory at the geometry's strides) and, when
 * causal, the keys j > i left out:
 *
 *   flash_attention: a group per tile of BQ query rows, LOCAL tiles of BK
 *     key and value rows (causal: only the key tiles up to the group's
 *     last query).  Per key the online softmax: when s exceeds the running
 *     maximum m, the sum l and the accumulator acc[dv] are rescaled by
 *     e^(m - s); then p = e^(s - m), l += p, acc += p v_j (a score of -inf
 *     is skipped).  o_i = acc / l, lse_i = m + log l.
 *   flash_attention_bwd: two kernels, run in order, neither writing what
 *     the other reads, no atomics.  "kv": a group per tile of BK key rows;
 *     each item holds k_j, v_j and accumulates dk_j, dv_j over LOCAL tiles
 *     of BQ query rows (q_i, do_i, lse_i and D_i = do_i·o_i, D computed by
 *     the group as it loads the tile; causal: the queries from the group's
 *     first key on):  p = e^(s - lse_i), ds = p (do_i·v_j - D_i),
 *     dv_j += p do_i, dk_j += ds q_i.  "q": a group per tile of BQ query
 *     rows; each item holds q_i, do_i, lse_i, D_i and accumulates
 *     dq_i += ds k_j over LOCAL tiles of BK key and value rows.  dq and dk
 *     get the scale when written.
 *
 * Tiles: block_q / block_k when nonzero (clamped to the rows, to 256 rows
 * for a group's side and to what fits LOCAL memory for a LOCAL tile), else
 * the generator's choice: at most 64 rows (fewer when 64 LOCAL rows would
 * not fit), evened out over the tiles (Tq = 80: two tiles of 40).  LOCAL
 * memory stays within 32 KiB, OpenCL's guaranteed minimum: 4 BK (d + dv)
 * bytes forward and for "q", 4 BQ (d + dv + 2) for "kv" (64 rows when
 * d + dv <= 126; d = dv = 64 gives LOCAL query tiles of up to 63 rows);
 * a head too wide for one LOCAL row is a diagnostic at the op.  The group
 * size is the group's tile rows rounded up to a multiple of 32 (at least
 * 32).  Sums in float in a fixed order: deterministic, run to run.
 */
#include "gpu_internal.h"

#define LL(v)      ((long long)(v))
#define LOCAL_MAX  32768
#define TILE_MAX   64
#define GROUP_ROWS 256

typedef struct Att {
    DnAttnGeom a;
    const char *scale; /* the scale as dialect text */
    const char *heads; /* the head count as text: "(n * 2)" or "2" */
} Att;

static Att att_of(DnGpuGen *G)
{
    Att t = {.a = dn_attention_geom(G->op)};
    t.scale = dn_gk_float(G, (float)t.a.scale);
    t.heads = dn_arena_printf(&G->H->cx->arena, t.a.has_n ? "(n * %lld)" : "%lld", LL(t.a.lead));
    return t;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* The rows of a tile over T rows: the attribute when nonzero, else at most
 * TILE_MAX evened out over the tiles; both within 'cap'. */
static int64_t tile_rows(int64_t attr, int64_t T, int64_t cap)
{
    if (T < 1) T = 1;
    if (attr > 0) return min64(min64(attr, T), cap);
    int64_t most = min64(TILE_MAX, cap);
    return ceil_div(T, ceil_div(T, most));
}

/* The most LOCAL rows of 'floats' floats each that fit; 0 (and a
 * diagnostic) when not even one does. */
static int64_t local_rows(DnGpuGen *G, const DnAttnGeom *a, int64_t floats)
{
    int64_t rows = LOCAL_MAX / (4 * floats);
    if (rows > 0) return rows;
    dn_error(G->H->cx, G->op->loc,
             "%s: the GPU kernels keep tiles of rows of %lld floats (d = %lld, dv = %lld) in local memory, at most "
             "%d bytes",
             dn_op_info[G->op->kind].name, LL(floats), LL(a->d), LL(a->dv), LOCAL_MAX);
    G->failed = true;
    return 0;
}

static int group_of(int64_t rows) { return (int)(rows < 32 ? 32 : (rows + 31) / 32 * 32); }

/* Launch: a group of 'gs' items per tile of every head. */
static void end_tiles(DnGpuGen *G, const DnAttnGeom *a, int64_t tiles, int gs)
{
    int64_t items = a->lead * tiles * gs;
    dn_gk_end(G, a->has_n ? items : 0, a->has_n ? 0 : items, gs);
}

/* i64 boff = the bias offset of head 'bh' (dn_attention_geom's strides). */
static void bias_offset(DnGpuGen *G, const DnAttnGeom *a)
{
    dn_gk_line(G, "i64 boff = 0, rem = bh;");
    for (int i = a->nlead - 1; i > 0; i--) {
        if (a->b_lead[i]) dn_gk_line(G, "boff += (rem %% %lld) * %lld;", LL(a->lead_dim[i]), LL(a->b_lead[i]));
        dn_gk_line(G, "rem = rem / %lld;", LL(a->lead_dim[i]));
    }
    if (a->nlead > 0 && a->b_lead[0]) dn_gk_line(G, "boff += rem * %lld;", LL(a->b_lead[0]));
}

/* The group's head bh and tile (rows r0.. of 'rows' each, 'tiles' per
 * head), the item's row 'r' and whether it has one ('on'), and the
 * bias offset. */
static void group_head(DnGpuGen *G, const Att *t, int64_t tiles, int64_t rows, int64_t T, const char *r)
{
    const DnAttnGeom *a = &t->a;
    if (tiles == 1)
        dn_gk_line(G, "i64 bh = GROUP_ID, %s0 = 0, li = LOCAL_ID;", r);
    else
        dn_gk_line(G, "i64 bh = GROUP_ID / %lld, %s0 = (GROUP_ID %% %lld) * %lld, li = LOCAL_ID;", LL(tiles), r,
                   LL(tiles), LL(rows));
    dn_gk_line(G, "if (bh >= %s) return;", t->heads);
    dn_gk_line(G, "i64 %s = %s0 + li;", r, r);
    dn_gk_line(G, "int on = li < %lld && %s < %lld;", LL(rows), r, LL(T));
    if (a->bias) bias_offset(G, a);
}

/* The head's keys and values (kh, vh), for the kernels that walk key tiles. */
static void key_rows(DnGpuGen *G, const DnAttnGeom *a)
{
    dn_gk_line(G, "GLOBAL float *kh = k + bh * %lld, *vh = v + bh * %lld;", LL(a->Tk * a->d), LL(a->Tk * a->dv));
}

/* float pr[w] = the item's row of 'src' (w floats a row), zeros when off. */
static void private_row(DnGpuGen *G, const char *pr, const char *src, const char *r, int64_t w)
{
    dn_gk_line(G, "float %s[%lld];", pr, LL(w));
    dn_gk_line(G, "for (i64 c = 0; c < %lld; c++) %s[c] = on ? %s[%s * %lld + c] : 0.0f;", LL(w), pr, src, r, LL(w));
}

static void zeros(DnGpuGen *G, const char *name, int64_t w)
{
    dn_gk_line(G, "float %s[%lld];", name, LL(w));
    dn_gk_line(G, "for (i64 c = 0; c < %lld; c++) %s[c] = 0.0f;", LL(w), name);
}

/* Loads 'cnt' rows of 'w' floats from row 'from' of src into LOCAL dst, the group's items strided. */
static void load_tile(DnGpuGen *G, const char *dst, const char *src, const char *from, const char *cnt, int64_t w,
                      int gs)
{
    dn_gk_line(G, "    for (i64 e = li; e < %s * %lld; e += %d) %s[e] = %s[%s * %lld + e];", cnt, LL(w), gs, dst, src,
               from, LL(w));
}

/* float s = the score of query i and key j: the dot of 'qrow' and 'krow' (expressions indexed by c). */
static void score(DnGpuGen *G, const Att *t, const char *ind, const char *qrow, const char *krow)
{
    const DnAttnGeom *a = &t->a;
    dn_gk_line(G, "%sfloat s = 0.0f;", ind);
    dn_gk_line(G, "%sfor (i64 c = 0; c < %lld; c++) s += %s * %s;", ind, LL(a->d), qrow, krow);
    dn_gk_line(G, "%ss = s * %s;", ind, t->scale);
    if (a->bias)
        dn_gk_line(G, "%ss += bias[boff%s%s];", ind,
                   a->b_si ? dn_arena_printf(&G->H->cx->arena, " + i * %lld", LL(a->b_si)) : "",
                   a->b_sj ? dn_arena_printf(&G->H->cx->arena, " + j * %lld", LL(a->b_sj)) : "");
}

/* After score: float p = e^(s - lse) and ds = p (do·v - D), with 'dor' and
 * 'vrow' the rows of do and v as expressions indexed by c. */
static void weight_grads(DnGpuGen *G, const DnAttnGeom *a, const char *lse, const char *dor, const char *vrow,
                         const char *D)
{
    dn_gk_line(G, "        float p = expf(s - %s);", lse);
    dn_gk_line(G, "        float dp = 0.0f;");
    dn_gk_line(G, "        for (i64 c = 0; c < %lld; c++) dp += %s * %s;", LL(a->dv), dor, vrow);
    dn_gk_line(G, "        float ds = p * (dp - %s);", D);
}

/* The key tiles a query group walks: j0 over 0..jend in steps of bk,
 * jend = Tk (causal: up to the group's last query); each loaded into LOCAL
 * ks and vs; then, for an item with a row, the keys jj of the tile (causal:
 * j <= i) open with i64 j in scope.  Closed by keys_end. */
static void keys_begin(DnGpuGen *G, const Att *t, int64_t bq, int64_t bk, int gs)
{
    const DnAttnGeom *a = &t->a;
    if (a->causal) {
        int64_t lim = min64(a->Tq, a->Tk);
        dn_gk_line(G, "i64 jend = i0 + %lld < %lld ? i0 + %lld : %lld;", LL(bq), LL(lim), LL(bq), LL(lim));
    } else
        dn_gk_line(G, "i64 jend = %lld;", LL(a->Tk));
    dn_gk_line(G, "for (i64 j0 = 0; j0 < jend; j0 += %lld) {", LL(bk));
    dn_gk_line(G, "    i64 nj = jend - j0 < %lld ? jend - j0 : %lld;", LL(bk), LL(bk));
    dn_gk_line(G, "    BARRIER();");
    load_tile(G, "ks", "kh", "j0", "nj", a->d, gs);
    load_tile(G, "vs", "vh", "j0", "nj", a->dv, gs);
    dn_gk_line(G, "    BARRIER();");
    dn_gk_line(G, "    if (!on) continue;");
    if (a->causal) dn_gk_line(G, "    if (i + 1 - j0 < nj) nj = i + 1 - j0;");
    dn_gk_line(G, "    for (i64 jj = 0; jj < nj; jj++) {");
    dn_gk_line(G, "        i64 j = j0 + jj;");
}

static void keys_end(DnGpuGen *G)
{
    dn_gk_line(G, "    }");
    dn_gk_line(G, "}");
}

static void operands(DnGpuGen *G, int nin, bool bwd)
{
    dn_gk_ptr(G, 0, "float", "q");
    dn_gk_ptr(G, 1, "float", "k");
    dn_gk_ptr(G, 2, "float", "v");
    if (bwd) {
        dn_gk_ptr(G, 3, "float", "o");
        dn_gk_ptr(G, 4, "float", "lse");
        dn_gk_ptr(G, 5, "float", "dout");
    }
    if (nin > (bwd ? 6 : 3)) dn_gk_ptr(G, bwd ? 6 : 3, "float", "bias");
}

void dn_gpu_kernel_flash_attention(DnGpuGen *G)
{
    Att t = att_of(G);
    const DnAttnGeom *a = &t.a;
    int nin = G->op->nin;
    int64_t kcap = local_rows(G, a, a->d + a->dv);
    if (!kcap) return;
    int64_t bq = tile_rows(dn_op_int(G->op, "block_q"), a->Tq, GROUP_ROWS);
    int64_t bk = tile_rows(dn_op_int(G->op, "block_k"), a->Tk, kcap);
    int64_t tiles = ceil_div(a->Tq, bq);
    int gs = group_of(bq);
    dn_gk_begin(G, "");
    operands(G, nin, false);
    dn_gk_ptr(G, nin, "float", "out");
    dn_gk_ptr(G, nin + 1, "float", "lse");
    dn_gk_line(G, "LOCAL float ks[%lld];", LL(bk * a->d));
    dn_gk_line(G, "LOCAL float vs[%lld];", LL(bk * a->dv));
    group_head(G, &t, tiles, bq, a->Tq, "i");
    key_rows(G, a);
    dn_gk_line(G, "i64 row = bh * %lld + i;", LL(a->Tq));
    private_row(G, "qr", "q", "row", a->d);
    zeros(G, "acc", a->dv);
    dn_gk_line(G, "float m = -F32_INF, l = 0.0f;");
    keys_begin(G, &t, bq, bk, gs);
    score(G, &t, "        ", "qr[c]", dn_arena_printf(&G->H->cx->arena, "ks[jj * %lld + c]", LL(a->d)));
    dn_gk_line(G, "        if (s == -F32_INF) continue;");
    dn_gk_line(G, "        if (s > m) {");
    dn_gk_line(G, "            float r = expf(m - s);");
    dn_gk_line(G, "            l *= r;");
    dn_gk_line(G, "            for (i64 c = 0; c < %lld; c++) acc[c] *= r;", LL(a->dv));
    dn_gk_line(G, "            m = s;");
    dn_gk_line(G, "        }");
    dn_gk_line(G, "        float p = expf(s - m);");
    dn_gk_line(G, "        l += p;");
    dn_gk_line(G, "        for (i64 c = 0; c < %lld; c++) acc[c] += p * vs[jj * %lld + c];", LL(a->dv), LL(a->dv));
    keys_end(G);
    dn_gk_line(G, "if (!on) return;");
    dn_gk_line(G, "for (i64 c = 0; c < %lld; c++) out[row * %lld + c] = acc[c] / l;", LL(a->dv), LL(a->dv));
    dn_gk_line(G, "lse[row] = m + logf(l);");
    end_tiles(G, a, tiles, gs);
}

void dn_gpu_kernel_flash_attention_bwd(DnGpuGen *G)
{
    Att t = att_of(G);
    const DnAttnGeom *a = &t.a;
    int nin = G->op->nin;
    int64_t kcap = local_rows(G, a, a->d + a->dv), qcap = kcap ? local_rows(G, a, a->d + a->dv + 2) : 0;
    if (!kcap || !qcap) return;
    int64_t block_q = dn_op_int(G->op, "block_q"), block_k = dn_op_int(G->op, "block_k");

    /* kv: a group per key tile, LOCAL query tiles */
    int64_t gk_rows = tile_rows(block_k, a->Tk, GROUP_ROWS), lq_rows = tile_rows(block_q, a->Tq, qcap);
    int64_t tiles = ceil_div(a->Tk, gk_rows);
    int gs = group_of(gk_rows);
    dn_gk_begin(G, "kv");
    operands(G, nin, true);
    dn_gk_ptr(G, nin + 1, "float", "dk");
    dn_gk_ptr(G, nin + 2, "float", "dv");
    dn_gk_line(G, "LOCAL float qs[%lld];", LL(lq_rows * a->d));
    dn_gk_line(G, "LOCAL float dos[%lld];", LL(lq_rows * a->dv));
    dn_gk_line(G, "LOCAL float ls[%lld];", LL(lq_rows));
    dn_gk_line(G, "LOCAL float Ds[%lld];", LL(lq_rows));
    group_head(G, &t, tiles, gk_rows, a->Tk, "j");
    dn_gk_line(G, "GLOBAL float *qh = q + bh * %lld, *oh = o + bh * %lld;", LL(a->Tq * a->d), LL(a->Tq * a->dv));
    dn_gk_line(G, "GLOBAL float *doh = dout + bh * %lld, *lh = lse + bh * %lld;", LL(a->Tq * a->dv), LL(a->Tq));
    dn_gk_line(G, "i64 row = bh * %lld + j;", LL(a->Tk));
    private_row(G, "kr", "k", "row", a->d);
    private_row(G, "vr", "v", "row", a->dv);
    zeros(G, "gk", a->d);
    zeros(G, "gv", a->dv);
    dn_gk_line(G, "for (i64 i0 = %s; i0 < %lld; i0 += %lld) {", a->causal ? "j0" : "0", LL(a->Tq), LL(lq_rows));
    dn_gk_line(G, "    i64 ni = %lld - i0 < %lld ? %lld - i0 : %lld;", LL(a->Tq), LL(lq_rows), LL(a->Tq), LL(lq_rows));
    dn_gk_line(G, "    BARRIER();");
    load_tile(G, "qs", "qh", "i0", "ni", a->d, gs);
    load_tile(G, "dos", "doh", "i0", "ni", a->dv, gs);
    dn_gk_line(G, "    for (i64 r = li; r < ni; r += %d) {", gs);
    dn_gk_line(G, "        float D = 0.0f;");
    dn_gk_line(G, "        for (i64 c = 0; c < %lld; c++) D += doh[(i0 + r) * %lld + c] * oh[(i0 + r) * %lld + c];",
               LL(a->dv), LL(a->dv), LL(a->dv));
    dn_gk_line(G, "        Ds[r] = D;");
    dn_gk_line(G, "        ls[r] = lh[i0 + r];");
    dn_gk_line(G, "    }");
    dn_gk_line(G, "    BARRIER();");
    dn_gk_line(G, "    if (!on) continue;");
    dn_gk_line(G, "    for (i64 ii = %s; ii < ni; ii++) {", a->causal ? "j > i0 ? j - i0 : 0" : "0");
    dn_gk_line(G, "        i64 i = i0 + ii;");
    score(G, &t, "        ", dn_arena_printf(&G->H->cx->arena, "qs[ii * %lld + c]", LL(a->d)), "kr[c]");
    weight_grads(G, a, "ls[ii]", dn_arena_printf(&G->H->cx->arena, "dos[ii * %lld + c]", LL(a->dv)), "vr[c]", "Ds[ii]");
    dn_gk_line(G, "        for (i64 c = 0; c < %lld; c++) gv[c] += p * dos[ii * %lld + c];", LL(a->dv), LL(a->dv));
    dn_gk_line(G, "        for (i64 c = 0; c < %lld; c++) gk[c] += ds * qs[ii * %lld + c];", LL(a->d), LL(a->d));
    dn_gk_line(G, "    }");
    dn_gk_line(G, "}");
    dn_gk_line(G, "if (!on) return;");
    dn_gk_line(G, "for (i64 c = 0; c < %lld; c++) dk[row * %lld + c] = gk[c] * %s;", LL(a->d), LL(a->d), t.scale);
    dn_gk_line(G, "for (i64 c = 0; c < %lld; c++) dv[row * %lld + c] = gv[c];", LL(a->dv), LL(a->dv));
    end_tiles(G, a, tiles, gs);

    /* q: a group per query tile, LOCAL key tiles */
    int64_t bq = tile_rows(block_q, a->Tq, GROUP_ROWS), bk = tile_rows(block_k, a->Tk, kcap);
    tiles = ceil_div(a->Tq, bq);
    gs = group_of(bq);
    dn_gk_begin(G, "q");
    operands(G, nin, true);
    dn_gk_ptr(G, nin, "float", "dq");
    dn_gk_line(G, "LOCAL float ks[%lld];", LL(bk * a->d));
    dn_gk_line(G, "LOCAL float vs[%lld];", LL(bk * a->dv));
    group_head(G, &t, tiles, bq, a->Tq, "i");
    key_rows(G, a);
    dn_gk_line(G, "i64 row = bh * %lld + i;", LL(a->Tq));
    private_row(G, "qr", "q", "row", a->d);
    private_row(G, "dor", "dout", "row", a->dv);
    dn_gk_line(G, "float D = 0.0f;");
    dn_gk_line(G, "for (i64 c = 0; c < %lld; c++) D += on ? dor[c] * o[row * %lld + c] : 0.0f;", LL(a->dv), LL(a->dv));
    dn_gk_line(G, "float L = on ? lse[row] : 0.0f;");
    zeros(G, "gq", a->d);
    keys_begin(G, &t, bq, bk, gs);
    score(G, &t, "        ", "qr[c]", dn_arena_printf(&G->H->cx->arena, "ks[jj * %lld + c]", LL(a->d)));
    weight_grads(G, a, "L", "dor[c]", dn_arena_printf(&G->H->cx->arena, "vs[jj * %lld + c]", LL(a->dv)), "D");
    dn_gk_line(G, "        for (i64 c = 0; c < %lld; c++) gq[c] += ds * ks[jj * %lld + c];", LL(a->d), LL(a->d));
    keys_end(G);
    dn_gk_line(G, "if (!on) return;");
    dn_gk_line(G, "for (i64 c = 0; c < %lld; c++) dq[row * %lld + c] = gq[c] * %s;", LL(a->d), LL(a->d), t.scale);
    end_tiles(G, a, tiles, gs);
}
