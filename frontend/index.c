/* index.c -- lowering of indexing and slicing, x[...] (PyTorch semantics).
 *
 * On a tensor each index applies to the next axis: an int i (negative
 * counts from the end; out of range is an error) keeps element i and drops
 * the axis; a slice start:stop:step (each part optional; negative bounds
 * count from the end and are clamped as Python does; step >= 1) keeps
 * those elements.  Every axis that changes becomes one slice op; dropped
 * axes then go with one reshape.  The batch axis N accepts only ':' (its
 * size is known only at run time).  On a list (split's result) one int
 * picks an element.
 */
#include "ast.h"

DnValue *dn_lower_slice(Lower *L, DnValue *x, int axis, int64_t start, int64_t stop, int64_t step, DnLoc loc)
{
    if (start == 0 && stop == x->shape.dim[axis] && step == 1) return x;
    DnAttr at[4] = {dn_attr_int("axis", axis), dn_attr_int("start", start), dn_attr_int("stop", stop),
                    dn_attr_int("step", step)};
    return dn_build1(L->cx, L->g, DN_OP_SLICE, 1, &x, 4, at, loc);
}

/* An optional int part of an index; false after an error. */
static bool int_part(Lower *L, Scope *sc, const AstExpr *e, const char *what, bool *given, int64_t *v)
{
    *given = e != NULL;
    if (!e) return true;
    Val x = dn_lower_expr(L, sc, e);
    if (x.kind == VAL_POISON) return false;
    if (x.kind != VAL_INT) {
        dn_error(L->cx, e->loc, "%s must be an int, got %s", what, dn_val_kind_name(x.kind));
        return false;
    }
    *v = x.i;
    return true;
}

static Val index_list(Lower *L, Scope *sc, const AstExpr *e, Val list)
{
    const AstExpr *ix = e->args.data[0].value;
    if (e->args.len != 1 || ix->kind == EXPR_SLICE) {
        dn_error(L->cx, e->loc, "a list takes one int index, as in parts[0]");
        return dn_val_poison();
    }
    bool given;
    int64_t i = 0;
    if (!int_part(L, sc, ix, "a list index", &given, &i)) return dn_val_poison();
    int64_t j = i < 0 ? i + list.n : i;
    if (j < 0 || j >= list.n) {
        dn_error(L->cx, ix->loc, "index %lld is out of range for a list of %d elements", (long long)i, list.n);
        return dn_val_poison();
    }
    return list.items[j];
}

/* One index of axis 'ax' (size d) of x: the slice to take and whether the axis goes. */
static bool one_index(Lower *L, Scope *sc, const AstExpr *ix, const DnValue *x, int ax, int64_t *lo, int64_t *hi,
                      int64_t *step, bool *drop)
{
    int64_t d = x->shape.dim[ax];
    char buf[96];
    *drop = false;
    *step = 1;
    if (ix->kind != EXPR_SLICE) {
        bool given;
        int64_t i = 0;
        if (!int_part(L, sc, ix, "an index", &given, &i)) return false;
        if (d == DN_DIM_N || DN_DIM_IS_SEQ(d)) {
            dn_error(L->cx, ix->loc, "index %lld: cannot index the %s of %s (its size is known only at run time)%s",
                     (long long)i, d == DN_DIM_N ? "batch axis N" : "sequence axis T",
                     dn_type_str(x->dtype, &x->shape, buf, sizeof buf), d == DN_DIM_N ? "" : " yet");
            return false;
        }
        if (i < -d || i >= d) {
            dn_error(L->cx, ix->loc, "index %lld is out of range for axis %d of %s (size %lld)", (long long)i, ax,
                     dn_type_str(x->dtype, &x->shape, buf, sizeof buf), (long long)d);
            return false;
        }
        *lo = i < 0 ? i + d : i;
        *hi = *lo + 1;
        *drop = true;
        return true;
    }
    bool has_lo, has_hi, has_step;
    int64_t a = 0, b = 0, s = 1;
    if (!int_part(L, sc, ix->a, "a slice start", &has_lo, &a) || !int_part(L, sc, ix->b, "a slice stop", &has_hi, &b) ||
        !int_part(L, sc, ix->c, "a slice step", &has_step, &s))
        return false;
    if (has_step && s <= 0) {
        dn_error(L->cx, ix->c->loc, "slice step %lld must be >= 1", (long long)s);
        return false;
    }
    if (d == DN_DIM_N || DN_DIM_IS_SEQ(d)) {
        if (has_lo || has_hi || s != 1) {
            dn_error(L->cx, ix->loc, "cannot slice the %s of %s (its size is known only at run time): write ':'",
                     d == DN_DIM_N ? "batch axis N" : "sequence axis T",
                     dn_type_str(x->dtype, &x->shape, buf, sizeof buf));
            return false;
        }
        *lo = 0, *hi = DN_DIM_N; /* the whole axis */
        return true;
    }
    int64_t na = !has_lo ? 0 : a < 0 ? a + d : a, nb = !has_hi ? d : b < 0 ? b + d : b;
    na = na < 0 ? 0 : na > d ? d : na; /* Python clamps slice bounds */
    nb = nb < 0 ? 0 : nb > d ? d : nb;
    if (na >= nb) {
        dn_error(L->cx, ix->loc, "slice %lld:%lld of axis %d of %s (size %lld) is empty", (long long)a,
                 (long long)(has_hi ? b : d), ax, dn_type_str(x->dtype, &x->shape, buf, sizeof buf), (long long)d);
        return false;
    }
    *lo = na, *hi = nb, *step = s;
    return true;
}

Val dn_lower_index(Lower *L, Scope *sc, const AstExpr *e)
{
    Val base = dn_lower_expr(L, sc, e->a);
    if (base.kind == VAL_POISON) return base;
    if (base.kind == VAL_LIST) return index_list(L, sc, e, base);
    if (base.kind != VAL_TENSOR) {
        dn_error(L->cx, e->loc, "cannot index %s (only tensors and lists)", dn_val_kind_name(base.kind));
        return dn_val_poison();
    }
    DnValue *x = base.t;
    int rank = x->shape.rank;
    if (e->args.len > rank) {
        char buf[96];
        dn_error(L->cx, e->loc, "%d indices for %s, which has %d axes", e->args.len,
                 dn_type_str(x->dtype, &x->shape, buf, sizeof buf), rank);
        return dn_val_poison();
    }
    bool drop[DN_MAX_RANK] = {0}, any_drop = false;
    for (int ax = 0; ax < e->args.len; ax++) {
        int64_t lo, hi, step;
        if (!one_index(L, sc, e->args.data[ax].value, x, ax, &lo, &hi, &step, &drop[ax])) return dn_val_poison();
        any_drop |= drop[ax];
        if (hi == DN_DIM_N) continue;
        x = dn_lower_slice(L, x, ax, lo, hi, step, e->args.data[ax].loc);
        if (!x) return dn_val_poison();
    }
    if (any_drop) {
        int64_t dims[DN_MAX_RANK];
        int n = 0;
        for (int ax = 0; ax < rank; ax++)
            if (!drop[ax]) dims[n++] = x->shape.dim[ax] == DN_DIM_N ? -1 : x->shape.dim[ax];
        DnAttr at = dn_attr_ints("shape", n, dims);
        x = dn_build1(L->cx, L->g, DN_OP_RESHAPE, 1, &x, 1, &at, e->loc);
        if (!x) return dn_val_poison();
    }
    return (Val){.kind = VAL_TENSOR, .t = x};
}
