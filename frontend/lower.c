/* lower.c -- semantic analysis and lowering of a model to the graph IR.
 *
 * Third stage of the frontend (lex -> parse -> lower).  Walks the chosen
 * model's body with an environment of compile-time values and graph
 * tensors (Val): hyper-parameter expressions are evaluated here, blocks are
 * inlined with their own scope, 'repeat' is unrolled, 'if' is decided at
 * compile time, and labels build the hierarchical parameter names.  Layers
 * are lowered by the table in layers.c, the train section by train.c.
 * Every error is a diagnostic; a value that failed is VAL_POISON and is
 * propagated without further messages.  Work is bounded (the limits of
 * docs/language.md): chains are walked without recursion, what still
 * recurses counts against MAX_EVAL_DEPTH, and ops, block calls and repeat
 * iterations, statements run and string bytes have budgets checked as
 * they grow.  Names are looked up in hash maps (names.c).
 */
#include "ast.h"

#include <math.h>

enum { MAX_INLINE_DEPTH = 64, MAX_REPEAT = 10000, MAX_WORK = 1000000, MAX_OPS = 20000, MAX_EVAL_DEPTH = 500 };
#define MAX_STEPS     INT64_C(4000000)   /* statements and expressions lowered, beyond one per AST node */
#define MAX_STR_BYTES ((size_t)16 << 20) /* made by string '+' in one model */

/* ---- values and scopes -------------------------------------------------- */

Val dn_val_poison(void) { return (Val){.kind = VAL_POISON}; }
static Val vint(int64_t i) { return (Val){.kind = VAL_INT, .i = i}; }
static Val vfloat(double f) { return (Val){.kind = VAL_FLOAT, .f = f}; }
static Val vbool(bool b) { return (Val){.kind = VAL_BOOL, .i = b}; }
static Val vtensor(DnValue *t) { return t ? (Val){.kind = VAL_TENSOR, .t = t} : dn_val_poison(); }

/* Printable name of a value kind, for messages. */
const char *dn_val_kind_name(ValKind k)
{
    static const char *names[] = {"an erroneous value", "nothing", "int", "float", "bool", "str", "tensor", "list"};
    return names[k];
}

/* Looks 'name' up in 'sc' and its parents; NULL when unbound. */
Binding *dn_scope_find(Scope *sc, const char *name)
{
    for (; sc; sc = sc->parent) {
        Binding *b = dn_namemap_get(&sc->vars, name);
        if (b) return b;
    }
    return NULL;
}

/* Assigns 'name': rebinds it where it is visible, else creates it in 'sc'. */
void dn_scope_set(Lower *L, Scope *sc, const char *name, Val v)
{
    Binding *b = dn_scope_find(sc, name);
    if (!b) {
        b = dn_arena_alloc(L->a, sizeof *b);
        b->name = name;
        dn_namemap_put(L->a, &sc->vars, name, b);
    }
    b->v = v;
}

DnParam *dn_lower_find_param(Lower *L, const char *name) { return dn_namemap_get(&L->params, name); }

DnParam *dn_lower_add_param(Lower *L, const char *name, DnParamKind kind, DnDType t, const DnShape *s, DnInit init,
                            DnLoc loc)
{
    DnParam *p = dn_graph_add_param(L->g, name, kind, t, s, init, loc);
    dn_namemap_put(L->a, &L->params, p->name, p);
    return p;
}

/* Registers label path 'full'; reports a second use of the same path. */
bool dn_lower_use_label(Lower *L, const char *full, DnLoc loc)
{
    if (dn_namemap_get(&L->labels, full)) {
        dn_error(L->cx, loc, "duplicate label '%s'", full);
        return false;
    }
    dn_namemap_put(L->a, &L->labels, full, (void *)full);
    return true;
}

/* The first block named 'name', or NULL. */
static const AstDecl *find_block(Lower *L, const char *name) { return dn_namemap_get(&L->blocks, name); }

static bool over_budget(Lower *L, DnLoc loc)
{
    if (!L->over_budget)
        dn_error(L->cx, loc, "the model unrolls to more than %d ops or %d block calls and repeat iterations", MAX_OPS,
                 MAX_WORK);
    L->over_budget = true;
    return false;
}

/* Counts one unit of unrolling work; false (reported once) when the model
 * unrolls past the limits, so no input makes the compiler run for ages. */
static bool budget(Lower *L, DnLoc loc)
{
    if (++L->work <= MAX_WORK && L->g->ops.len <= MAX_OPS && !L->over_budget) return true;
    return over_budget(L, loc);
}

/* Counts one statement or expression lowered.  Without blocks and repeats
 * lowering visits each AST node at most once; what they unroll may add
 * MAX_STEPS, so a small body repeated a million times stops in time. */
static bool step(Lower *L, DnLoc loc)
{
    if (++L->steps <= L->ast->nodes + MAX_STEPS && !L->over_budget) return true;
    if (!L->over_budget)
        dn_error(L->cx, loc,
                 "blocks and repeats unroll to more than %lld statements and expressions beyond those written",
                 (long long)MAX_STEPS);
    L->over_budget = true;
    return false;
}

bool dn_lower_op_budget(Lower *L, DnLoc loc)
{
    if (L->g->ops.len <= MAX_OPS && !L->over_budget) return true;
    return over_budget(L, loc);
}

/* Enters one level of lowering recursion (an expression evaluated, a body
 * run); false (reported once) past MAX_EVAL_DEPTH, which keeps the C stack
 * bounded however blocks, repeats and expressions nest.  The caller
 * decrements L->depth when it returns true. */
static bool deeper(Lower *L, DnLoc loc)
{
    if (L->too_deep) return false;
    if (L->depth < MAX_EVAL_DEPTH) {
        L->depth++;
        return true;
    }
    dn_error(L->cx, loc,
             "the model nests too deeply (more than %d levels of expressions and bodies, counting inlined blocks)",
             MAX_EVAL_DEPTH);
    L->too_deep = true;
    return false;
}

/* ---- compile-time arithmetic -------------------------------------------- */

static bool is_num(Val v) { return v.kind == VAL_INT || v.kind == VAL_FLOAT; }
static double num(Val v) { return v.kind == VAL_INT ? (double)v.i : v.f; }

static Val int_overflow(Lower *L, DnLoc loc, const char *what)
{
    dn_error(L->cx, loc, "integer overflow: %s does not fit in a 64-bit int", what);
    return dn_val_poison();
}

/* int op int: + - * exactly, / exactly when it divides (else as floats);
 * a result outside int64 is an error at the operator. */
static bool int_arith(Lower *L, TokKind op, int64_t x, int64_t y, DnLoc loc, Val *out)
{
    int64_t r = 0;
    bool over = op == TOK_PLUS    ? __builtin_add_overflow(x, y, &r)
                : op == TOK_MINUS ? __builtin_sub_overflow(x, y, &r)
                : op == TOK_STAR  ? __builtin_mul_overflow(x, y, &r)
                                  : x == INT64_MIN && y == -1;
    if (over) {
        char what[96];
        snprintf(what, sizeof what, "%lld %s %lld", (long long)x, dn_tok_spelling(op), (long long)y);
        *out = int_overflow(L, loc, what);
        return true;
    }
    if (op != TOK_SLASH)
        *out = vint(r);
    else if (x % y == 0) /* y == -1 with x == INT64_MIN is excluded above */
        *out = vint(x / y);
    else
        return false;
    return true;
}

static Val const_arith(Lower *L, TokKind op, Val a, Val b, DnLoc loc)
{
    if (op == TOK_SLASH && num(b) == 0) {
        dn_error(L->cx, loc, "division by zero");
        return dn_val_poison();
    }
    Val v;
    if (a.kind == VAL_INT && b.kind == VAL_INT && int_arith(L, op, a.i, b.i, loc, &v)) return v;
    double x = num(a), y = num(b);
    return vfloat(op == TOK_PLUS ? x + y : op == TOK_MINUS ? x - y : op == TOK_STAR ? x * y : x / y);
}

static Val const_compare(Lower *L, TokKind op, Val a, Val b, DnLoc loc)
{
    int c;
    if (a.kind == VAL_INT && b.kind == VAL_INT) /* exactly: doubles lose ints past 2^53 */
        c = a.i < b.i ? -1 : a.i > b.i;
    else if (is_num(a) && is_num(b))
        c = num(a) < num(b) ? -1 : num(a) > num(b);
    else if (a.kind == VAL_STR && b.kind == VAL_STR)
        c = strcmp(a.s, b.s);
    else if (a.kind == VAL_BOOL && b.kind == VAL_BOOL)
        c = (int)(a.i - b.i);
    else {
        dn_error(L->cx, loc, "cannot compare %s with %s", dn_val_kind_name(a.kind), dn_val_kind_name(b.kind));
        return dn_val_poison();
    }
    if (op != TOK_EQ && op != TOK_NE && !(is_num(a) && is_num(b))) {
        dn_error(L->cx, loc, "'%s' needs numbers, got %s", dn_tok_spelling(op), dn_val_kind_name(a.kind));
        return dn_val_poison();
    }
    switch (op) {
    case TOK_EQ: return vbool(c == 0);
    case TOK_NE: return vbool(c != 0);
    case TOK_LT: return vbool(c < 0);
    case TOK_LE: return vbool(c <= 0);
    case TOK_GT: return vbool(c > 0);
    default: return vbool(c >= 0);
    }
}

/* ---- tensor arithmetic -------------------------------------------------- */

static DnValue *fill_scalar(Lower *L, double value, DnLoc loc)
{
    DnAttr at[] = {dn_attr_float("value", value), dn_attr_ints("shape", 0, NULL)};
    return dn_build1(L->cx, L->g, DN_OP_FILL, 0, NULL, 2, at, loc);
}

static DnValue *scale(Lower *L, DnValue *x, double alpha, DnLoc loc)
{
    DnAttr at = dn_attr_float("alpha", alpha);
    return dn_build1(L->cx, L->g, DN_OP_SCALE, 1, &x, 1, &at, loc);
}

/* a op b where at least one side is a tensor and the other a tensor or number. */
static Val tensor_arith(Lower *L, TokKind op, Val a, Val b, DnLoc loc)
{
    if (op == TOK_AT) {
        if (a.kind != VAL_TENSOR || b.kind != VAL_TENSOR) {
            dn_error(L->cx, loc, "'@' needs two tensors, got %s and %s", dn_val_kind_name(a.kind),
                     dn_val_kind_name(b.kind));
            return dn_val_poison();
        }
        DnValue *in[2] = {a.t, b.t};
        return vtensor(dn_build1(L->cx, L->g, DN_OP_MATMUL, 2, in, 0, NULL, loc));
    }
    if (op == TOK_STAR && b.kind != VAL_TENSOR) return vtensor(scale(L, a.t, num(b), loc));
    if (op == TOK_STAR && a.kind != VAL_TENSOR) return vtensor(scale(L, b.t, num(a), loc));
    if (op == TOK_SLASH && b.kind != VAL_TENSOR) {
        if (num(b) == 0) {
            dn_error(L->cx, loc, "division by zero");
            return dn_val_poison();
        }
        return vtensor(scale(L, a.t, 1.0 / num(b), loc));
    }
    DnValue *in[2] = {a.kind == VAL_TENSOR ? a.t : fill_scalar(L, num(a), loc),
                      b.kind == VAL_TENSOR ? b.t : fill_scalar(L, num(b), loc)};
    DnOpKind k = op == TOK_PLUS ? DN_OP_ADD : op == TOK_MINUS ? DN_OP_SUB : op == TOK_STAR ? DN_OP_MUL : DN_OP_DIV;
    return vtensor(dn_build1(L->cx, L->g, k, 2, in, 0, NULL, loc));
}

/* "a" + "b".  The bytes so made are counted (a chain of n '+' makes about
 * n^2/2), and past MAX_STR_BYTES that is an error at the operator. */
static Val concat(Lower *L, const char *a, const char *b, DnLoc loc)
{
    size_t na = strlen(a), nb = strlen(b);
    L->str_bytes += na + nb;
    if (L->str_bytes > MAX_STR_BYTES) {
        dn_error(L->cx, loc, "string concatenation makes more than %zu bytes of compile-time strings", MAX_STR_BYTES);
        return dn_val_poison();
    }
    char *s = dn_arena_alloc(L->a, na + nb + 1);
    memcpy(s, a, na);
    memcpy(s + na, b, nb + 1);
    return (Val){.kind = VAL_STR, .s = s};
}

/* Binary operator 'e' applied to its left operand's value 'a'. */
static Val lower_binary(Lower *L, Scope *sc, const AstExpr *e, Val a)
{
    if (e->op == TOK_AND || e->op == TOK_OR) { /* short-circuit, so guards work */
        if (a.kind == VAL_POISON) return a;
        if (a.kind != VAL_BOOL) goto notbool;
        if ((e->op == TOK_AND) != (a.i != 0)) return a;
        Val b = dn_lower_expr(L, sc, e->b);
        if (b.kind == VAL_POISON || b.kind == VAL_BOOL) return b;
        a = b;
    notbool:
        dn_error(L->cx, e->loc, "'%s' needs bools, got %s", dn_tok_spelling(e->op), dn_val_kind_name(a.kind));
        return dn_val_poison();
    }
    Val b = dn_lower_expr(L, sc, e->b);
    if (a.kind == VAL_POISON || b.kind == VAL_POISON) return dn_val_poison();
    bool arith = e->op == TOK_PLUS || e->op == TOK_MINUS || e->op == TOK_STAR || e->op == TOK_SLASH || e->op == TOK_AT;
    if (arith && (a.kind == VAL_TENSOR || b.kind == VAL_TENSOR) && (a.kind == VAL_TENSOR || is_num(a)) &&
        (b.kind == VAL_TENSOR || is_num(b)))
        return tensor_arith(L, e->op, a, b, e->loc);
    if (arith && e->op != TOK_AT && is_num(a) && is_num(b)) return const_arith(L, e->op, a, b, e->loc);
    if (arith && e->op == TOK_PLUS && a.kind == VAL_STR && b.kind == VAL_STR) return concat(L, a.s, b.s, e->loc);
    if (!arith && a.kind != VAL_TENSOR && b.kind != VAL_TENSOR) return const_compare(L, e->op, a, b, e->loc);
    dn_error(L->cx, e->loc, "'%s' cannot combine %s and %s", dn_tok_spelling(e->op), dn_val_kind_name(a.kind),
             dn_val_kind_name(b.kind));
    return dn_val_poison();
}

static Val lower_unary(Lower *L, Scope *sc, const AstExpr *e)
{
    Val a = dn_lower_expr(L, sc, e->a);
    if (a.kind == VAL_POISON) return a;
    if (e->op == TOK_NOT) {
        if (a.kind == VAL_BOOL) return vbool(!a.i);
        dn_error(L->cx, e->loc, "'not' needs a bool, got %s", dn_val_kind_name(a.kind));
        return dn_val_poison();
    }
    if (a.kind == VAL_INT && a.i == INT64_MIN) return int_overflow(L, e->loc, "-(-9223372036854775808)");
    if (a.kind == VAL_INT) return vint(-a.i);
    if (a.kind == VAL_FLOAT) return vfloat(-a.f);
    if (a.kind == VAL_TENSOR) return vtensor(scale(L, a.t, -1.0, e->loc));
    dn_error(L->cx, e->loc, "'-' needs a number or tensor, got %s", dn_val_kind_name(a.kind));
    return dn_val_poison();
}

/* cond must be a compile-time bool; reports otherwise and returns -1. */
static int eval_cond(Lower *L, Scope *sc, const AstExpr *e, const char *what)
{
    Val c = dn_lower_expr(L, sc, e);
    if (c.kind == VAL_POISON) return -1;
    if (c.kind == VAL_BOOL) return c.i != 0;
    dn_error(L->cx, e->loc, "%s must be a compile-time bool, got %s", what, dn_val_kind_name(c.kind));
    return -1;
}

/* ---- names and shape queries --------------------------------------------- */

static Val lower_name(Lower *L, Scope *sc, const AstExpr *e)
{
    Binding *b = dn_scope_find(sc, e->s);
    if (b) return b->v;
    if (L->in_train)
        dn_error(L->cx, e->loc, "'%s' is not a model output or a train input", e->s);
    else if (dn_layer_find(e->s) || find_block(L, e->s))
        dn_error(L->cx, e->loc, "'%s' is a layer or block; call it, e.g. x |> %s", e->s, e->s);
    else if (!strcmp(e->s, "T") && L->seq_bound)
        dn_error(L->cx, e->loc,
                 "'T' is the run-time sequence axis, not a compile-time value; only sequence_mask(lengths, "
                 "max_len=T) takes it");
    else
        dn_error(L->cx, e->loc, "unknown name '%s'", e->s);
    return dn_val_poison();
}

/* channels(x) = dim 1;  dim(x, axis);  rank(x).  Returns false if 'e' is none. */
static bool shape_query(Lower *L, const Val *pos, int npos, const AstExpr *e, Val *out)
{
    bool isdim = !strcmp(e->s, "dim");
    if (strcmp(e->s, "channels") && strcmp(e->s, "rank") && !isdim) return false;
    *out = dn_val_poison();
    int want = isdim ? 2 : 1;
    if (npos != want || e->args.len != want || e->args.data[want - 1].name) {
        dn_error(L->cx, e->loc, "%s expects %d argument%s", e->s, want, want > 1 ? "s" : "");
        return true;
    }
    for (int i = 0; i < npos; i++)
        if (pos[i].kind == VAL_POISON) return true;
    if (pos[0].kind != VAL_TENSOR || (isdim && pos[1].kind != VAL_INT)) {
        dn_error(L->cx, e->loc, isdim ? "dim expects a tensor and an int" : "%s expects a tensor", e->s);
        return true;
    }
    const DnShape *s = &pos[0].t->shape;
    int64_t axis = isdim ? pos[1].i : 1;
    if (!strcmp(e->s, "rank"))
        *out = vint(s->rank);
    else if (axis < -s->rank || axis >= s->rank)
        dn_error(L->cx, e->loc, "%s: axis %lld is out of range for rank %d", e->s, (long long)axis, s->rank);
    else if (s->dim[axis < 0 ? axis + s->rank : axis] == DN_DIM_N)
        dn_error(L->cx, e->loc, "%s: the batch dimension N is not known at compile time", e->s);
    else
        *out = vint(s->dim[axis < 0 ? axis + s->rank : axis]);
    return true;
}

/* ---- statements ------------------------------------------------------------ */

typedef struct Exec {
    bool returned; /* a 'return' ran */
    Val ret;       /* its value */
    Val last;      /* value of the last expression statement */
    bool in_block;
} Exec;

static void exec_body(Lower *L, Scope *sc, const AstBody *body, Exec *x);
static Val lower_repeat(Lower *L, Scope *sc, const AstExpr *e, const char *target);

static Val eval_init(Lower *L, Scope *sc, const AstExpr *e, DnInit *init);

static void exec_param(Lower *L, Scope *sc, const AstStmt *s)
{
    DnInit init = {.kind = DN_INIT_ZEROS, .a = 0, .b = 0};
    if (s->e && eval_init(L, sc, s->e, &init).kind == VAL_POISON) return;
    if (dn_shape_has_n(&s->type->shape)) {
        dn_error(L->cx, s->type->loc, "a parameter's shape cannot use the batch dimension N");
        return;
    }
    const char *name = dn_arena_printf(L->a, "%s%s", L->prefix, s->name);
    if (dn_lower_find_param(L, name)) {
        dn_error(L->cx, s->name_loc, "duplicate parameter name '%s'", name);
        return;
    }
    if (!dn_lower_check_size(L, s->type->dtype, &s->type->shape, s->name_loc, s->name)) {
        dn_scope_set(L, sc, s->name, dn_val_poison()); /* no "unknown name" cascade */
        return;
    }
    DnParam *p = dn_lower_add_param(L, name, DN_PARAM_WEIGHT, s->type->dtype, &s->type->shape, init, s->name_loc);
    dn_scope_set(L, sc, s->name, vtensor(p->value));
}

bool dn_lower_check_size(Lower *L, DnDType t, const DnShape *s, DnLoc loc, const char *name)
{
    if (dn_type_fits(t, s)) return true;
    char ty[160];
    dn_error(L->cx, loc, "'%s' of type %s is larger than the %lld bytes a tensor may hold", name,
             dn_type_str(t, s, ty, sizeof ty), (long long)DN_MAX_TENSOR_BYTES);
    return false;
}

static void exec_stmt(Lower *L, Scope *sc, const AstStmt *s, Exec *x)
{
    switch (s->kind) {
    case STMT_ASSIGN:
        if (s->e->kind == EXPR_REPEAT) {
            if (lower_repeat(L, sc, s->e, s->name).kind == VAL_POISON) dn_scope_set(L, sc, s->name, dn_val_poison());
        } else
            dn_scope_set(L, sc, s->name, dn_lower_expr(L, sc, s->e));
        break;
    case STMT_EXPR:
        x->last = s->e->kind == EXPR_REPEAT ? lower_repeat(L, sc, s->e, NULL) : dn_lower_expr(L, sc, s->e);
        break;
    case STMT_RETURN:
        if (!x->in_block) {
            dn_error(L->cx, s->loc, "'return' is only allowed in a block; a model assigns its outputs by name");
            break;
        }
        x->ret = dn_lower_expr(L, sc, s->e);
        x->returned = true;
        break;
    case STMT_IF:
        for (;;) { /* an else-if chain, in a loop */
            int c = eval_cond(L, sc, s->e, "an 'if' condition");
            if (c == 0 && s->els.len == 1 && s->els.data[0]->kind == STMT_IF) {
                s = s->els.data[0];
                continue;
            }
            if (c >= 0) exec_body(L, sc, c ? &s->then : &s->els, x);
            break;
        }
        break;
    case STMT_PARAM: exec_param(L, sc, s); break;
    default: dn_error(L->cx, s->loc, "this statement is only allowed in a train section"); break;
    }
}

static void exec_body(Lower *L, Scope *sc, const AstBody *body, Exec *x)
{
    if (!body->len) return;
    if (!deeper(L, body->data[0]->loc)) { /* poison, so no "ends without 'return'" follows */
        x->returned = true;
        x->ret = x->last = dn_val_poison();
        return;
    }
    for (int i = 0; i < body->len && !x->returned && step(L, body->data[i]->loc); i++)
        exec_stmt(L, sc, body->data[i], x);
    L->depth--;
}

/* repeat K [as i] { body }: unrolled K times, each in a fresh scope with the
 * index bound; a labelled repeat adds "label.i." to the prefix.  With a
 * 'target' (x = repeat ...), each iteration's value becomes x. */
static Val lower_repeat(Lower *L, Scope *sc, const AstExpr *e, const char *target)
{
    Val k = dn_lower_expr(L, sc, e->a);
    if (k.kind == VAL_POISON) return k;
    if (k.kind != VAL_INT) {
        dn_error(L->cx, e->a->loc, "repeat count must be an int, got %s", dn_val_kind_name(k.kind));
        return dn_val_poison();
    }
    if (k.i < 0 || k.i > MAX_REPEAT) {
        dn_error(L->cx, e->a->loc, "repeat count %lld is out of range (0 to %d)", (long long)k.i, MAX_REPEAT);
        return dn_val_poison();
    }
    const char *saved = L->prefix, *base = NULL;
    if (e->label) {
        base = dn_arena_printf(L->a, "%s%s", L->prefix, e->label);
        if (!dn_lower_use_label(L, base, e->label_loc)) return dn_val_poison();
    }
    Val v = {.kind = VAL_NONE};
    int nerr = L->cx->nerr;
    for (int64_t i = 0; i < k.i && L->cx->nerr == nerr && budget(L, e->loc); i++) {
        Scope inner = {.parent = sc};
        if (e->s) dn_scope_set(L, &inner, e->s, vint(i));
        if (base) L->prefix = dn_arena_printf(L->a, "%s.%lld.", base, (long long)i);
        Exec x = {.last = {.kind = VAL_NONE}};
        exec_body(L, &inner, &e->body, &x);
        L->prefix = saved;
        v = x.last;
        if (target && v.kind == VAL_NONE && !L->over_budget) {
            dn_error(L->cx, e->loc, "the body of 'repeat' must end with an expression giving the new value of '%s'",
                     target);
            v = dn_val_poison();
        }
        if (target) dn_scope_set(L, sc, target, v);
    }
    if (L->cx->nerr != nerr) v = dn_val_poison();
    if (target && k.i == 0 && !dn_scope_find(sc, target)) dn_scope_set(L, sc, target, dn_val_poison());
    return v;
}

/* ---- blocks ----------------------------------------------------------------- */

/* Binds one block parameter from 'v' (checked against its type).  A poisoned
 * tensor is bound as it is (what uses it is poisoned in turn, so the rest of
 * the body is still checked); a poisoned hyper-parameter stops the call. */
static bool bind_block_param(Lower *L, Scope *sc, const AstDecl *d, const AstParam *p, Val v, DnLoc loc)
{
    if (v.kind == VAL_POISON) {          /* already reported */
        if (p->hp) return false;         /* the body's compile-time logic needs it */
        dn_scope_set(L, sc, p->name, v); /* a tensor: the body is still checked, its ops on v poisoned */
        return true;
    }
    const char *want = !p->hp ? "tensor" : p->hp;
    bool ok = !p->hp                   ? v.kind == VAL_TENSOR
              : !strcmp(want, "int")   ? v.kind == VAL_INT
              : !strcmp(want, "float") ? is_num(v)
              : !strcmp(want, "bool")  ? v.kind == VAL_BOOL
                                       : v.kind == VAL_STR;
    if (!ok) {
        dn_error(L->cx, loc, "argument '%s' of block '%s' must be %s %s, got %s", p->name, d->name,
                 !strcmp(want, "int") ? "an" : "a", want, dn_val_kind_name(v.kind));
        return false;
    }
    if (p->hp && !strcmp(want, "float")) v = vfloat(num(v));
    dn_scope_set(L, sc, p->name, v);
    return true;
}

/* Fills the block's scope from positional 'pos' and the call's keywords. */
static bool bind_block_args(Lower *L, Scope *caller, Scope *sc, const AstDecl *d, const AstExpr *e, Val *pos, int npos)
{
    if (npos > d->params.len) {
        dn_error(L->cx, e->loc, "block '%s' takes %d argument%s, got %d", d->name, d->params.len,
                 d->params.len == 1 ? "" : "s", npos);
        return false;
    }
    bool ok = true;
    int np = d->params.len < 64 ? d->params.len : 64;
    Val given[np ? np : 1]; /* sized to the block: this frame is live while arguments are lowered */
    DnLoc at[np ? np : 1];
    for (int i = 0; i < np; i++) {
        given[i] = (Val){.kind = VAL_NONE};
        at[i] = e->loc;
    }
    for (int i = 0; i < npos && i < np; i++) given[i] = pos[i];
    for (int i = 0, k = 0; i < e->args.len; i++) {
        const AstArg *a = &e->args.data[i];
        if (!a->name) {
            at[k < np ? k : 0] = a->loc, k++;
            continue;
        }
        int j = 0;
        while (j < np && strcmp(d->params.data[j].name, a->name)) j++;
        if (j == np) {
            dn_error(L->cx, a->loc, "block '%s' has no parameter '%s'", d->name, a->name);
            ok = false;
        } else if (given[j].kind != VAL_NONE) {
            dn_error(L->cx, a->loc, "argument '%s' of block '%s' is given twice", a->name, d->name);
            ok = false;
        } else {
            given[j] = dn_lower_expr(L, caller, a->value);
            at[j] = a->loc;
        }
    }
    for (int i = 0; i < np && ok; i++) {
        const AstParam *p = &d->params.data[i];
        Val v = given[i];
        if (v.kind == VAL_NONE && p->def) v = dn_lower_expr(L, sc, p->def);
        if (v.kind == VAL_NONE) {
            dn_error(L->cx, e->loc, "missing argument '%s' of block '%s'", p->name, d->name);
            ok = false;
        } else
            ok = bind_block_param(L, sc, d, p, v, at[i]);
    }
    return ok;
}

static Val lower_block_call(Lower *L, Scope *sc, const AstDecl *d, const AstExpr *e, Val *pos, int npos)
{
    for (int i = 0; i < L->stack.len; i++)
        if (L->stack.data[i] == d) {
            dn_error(L->cx, e->loc, "block '%s' calls itself (blocks are inlined, so recursion is not allowed)",
                     d->name);
            return dn_val_poison();
        }
    if (!budget(L, e->loc)) return dn_val_poison();
    if (L->stack.len >= MAX_INLINE_DEPTH) {
        dn_error(L->cx, e->loc, "blocks are nested too deeply (more than %d levels)", MAX_INLINE_DEPTH);
        return dn_val_poison();
    }
    const char *saved = L->prefix;
    if (e->label) {
        const char *full = dn_arena_printf(L->a, "%s%s", L->prefix, e->label);
        if (!dn_lower_use_label(L, full, e->label_loc)) return dn_val_poison();
        L->prefix = dn_arena_printf(L->a, "%s.", full);
    }
    Scope inner = {0};
    Val result = dn_val_poison();
    dn_vec_push(L->a, &L->stack, d);
    if (bind_block_args(L, sc, &inner, d, e, pos, npos)) {
        Exec x = {.in_block = true};
        exec_body(L, &inner, &d->body, &x);
        if (x.returned)
            result = x.ret;
        else if (!L->over_budget) /* the budget stops a body half way */
            dn_error(L->cx, d->loc, "block '%s' ends without 'return'", d->name);
    }
    L->stack.len--;
    L->prefix = saved;
    return result;
}

/* ---- calls -------------------------------------------------------------------- */

/* Call 'e'; 'first' (or NULL) is the value of its first argument, which is
 * positional, already evaluated. */
static Val lower_call(Lower *L, Scope *sc, const AstExpr *e, const Val *first)
{
    int n = 0;
    for (int i = 0; i < e->args.len && n < 32; i++) n += !e->args.data[i].name;
    Val pos[n + 1]; /* sized to the call (this frame is live while a block's body is lowered), + 1 for
                     * dn_layer_call's gathered list */
    int npos = 0;
    bool poisoned = false;
    for (int i = 0; i < e->args.len; i++) {
        if (e->args.data[i].name) continue;
        if (npos == 32) {
            dn_error(L->cx, e->args.data[i].loc, "too many arguments (at most 32)");
            return dn_val_poison();
        }
        pos[npos] = i == 0 && first ? *first : dn_lower_expr(L, sc, e->args.data[i].value);
        poisoned |= pos[npos++].kind == VAL_POISON;
    }
    const AstDecl *d = find_block(L, e->s);
    if (d) { /* a poisoned tensor argument poisons what depends on it; the rest of the body is checked */
        Val v = lower_block_call(L, sc, d, e, pos, npos);
        return poisoned ? dn_val_poison() : v;
    }
    Val q;
    if (shape_query(L, pos, npos, e, &q)) return q;
    const LayerInfo *li = dn_layer_find(e->s);
    if (li) return poisoned ? dn_layer_check(L, sc, li, e, pos, npos) : dn_layer_call(L, sc, li, e, pos, npos);
    if (dn_layer_unsupported(e->s))
        dn_error(L->cx, e->loc, "'%s' is not supported yet", e->s);
    else if (dn_scope_find(sc, e->s))
        dn_error(L->cx, e->loc, "'%s' is a value, not a layer or block", e->s);
    else
        dn_error(L->cx, e->loc, "unknown layer or block '%s'", e->s);
    return dn_val_poison();
}

static Val lower_list(Lower *L, Scope *sc, const AstExpr *e)
{
    Val v = {.kind = VAL_LIST, .n = e->args.len};
    v.items = dn_arena_alloc(L->a, (size_t)(v.n + 1) * sizeof(Val));
    for (int i = 0; i < v.n; i++) {
        v.items[i] = dn_lower_expr(L, sc, e->args.data[i].value);
        if (v.items[i].kind == VAL_POISON) return dn_val_poison();
    }
    return v;
}

/* An expression that is not a link of a chain (below). */
static Val lower_leaf(Lower *L, Scope *sc, const AstExpr *e)
{
    switch (e->kind) {
    case EXPR_INT: return vint(e->i);
    case EXPR_FLOAT: return vfloat(e->f);
    case EXPR_BOOL: return vbool(e->i != 0);
    case EXPR_STR: return (Val){.kind = VAL_STR, .s = e->s};
    case EXPR_NAME: return lower_name(L, sc, e);
    case EXPR_CALL: return lower_call(L, sc, e, NULL);
    case EXPR_UNARY: return lower_unary(L, sc, e);
    case EXPR_LIST: return lower_list(L, sc, e);
    case EXPR_REPEAT: return lower_repeat(L, sc, e, NULL);
    case EXPR_INDEX: return dn_lower_index(L, sc, e);
    case EXPR_SLICE: dn_error(L->cx, e->loc, "a slice is only allowed inside [ ]"); return dn_val_poison();
    case EXPR_BINARY:
    case EXPR_TERNARY: break;
    }
    DN_UNREACHABLE();
}

/* A link of a left-deep chain: a binary operator (a + b + c nests in 'a')
 * or a call whose first argument is positional (x |> f |> g nests there).
 * Returns that operand, or NULL. */
static const AstExpr *chain_operand(const AstExpr *e)
{
    if (e->kind == EXPR_BINARY) return e->a;
    if (e->kind == EXPR_CALL && e->args.len && !e->args.data[0].name) return e->args.data[0].value;
    return NULL;
}

/* Evaluates 'e' in 'sc': a compile-time value, or a tensor built in L->g.
 * Chains of any length are walked with an explicit stack (L->chain): down
 * to the innermost operand, then back up applying each link, which is the
 * order of a recursive walk.  What still recurses (other operands, blocks
 * being inlined) is limited to MAX_EVAL_DEPTH levels.  Stops at the op
 * budget as soon as the graph passes it. */
Val dn_lower_expr(Lower *L, Scope *sc, const AstExpr *e)
{
    if (!step(L, e->loc) || !deeper(L, e->loc)) return dn_val_poison();
    DnLoc loc = e->loc;
    int base = L->chain.len;
    Val v;
    for (;;) {
        for (const AstExpr *x; (x = chain_operand(e)); e = x) dn_vec_push(L->a, &L->chain, e);
        if (e->kind != EXPR_TERNARY) {
            v = lower_leaf(L, sc, e);
            break;
        }
        int c = eval_cond(L, sc, e->a, "the condition of '?:'");
        if (c < 0) {
            v = dn_val_poison();
            break;
        }
        e = c ? e->b : e->c; /* a ? b : c ? d : e goes on in the loop */
    }
    while (L->chain.len > base) {
        const AstExpr *link = L->chain.data[--L->chain.len];
        v = link->kind == EXPR_BINARY ? lower_binary(L, sc, link, v) : lower_call(L, sc, link, &v);
        if (!step(L, link->loc) || !dn_lower_op_budget(L, link->loc)) {
            v = dn_val_poison();
            L->chain.len = base;
        }
    }
    if (!dn_lower_op_budget(L, loc)) v = dn_val_poison();
    L->depth--;
    return v;
}

/* ---- raw parameter initializers --------------------------------------------- */

/* init = "zeros" | "ones" | "normal" ["(" [mean=] [std=] ")"] | "uniform" "(" a "," b ")" */
static Val eval_init(Lower *L, Scope *sc, const AstExpr *e, DnInit *init)
{
    const char *n = e->kind == EXPR_NAME || e->kind == EXPR_CALL ? e->s : "";
    Val a[2];
    const char *schema = !strcmp(n, "normal")    ? "mean:float=0 std:float=1"
                         : !strcmp(n, "uniform") ? "a:float b:float"
                                                 : "";
    if (!strcmp(n, "zeros") || !strcmp(n, "ones")) {
        init->kind = !strcmp(n, "zeros") ? DN_INIT_ZEROS : DN_INIT_ONES;
        if (e->args.len == 0) return vint(0);
    } else if (*schema) {
        Val pos[2];
        int npos = 0;
        for (int i = 0; i < e->args.len && npos < 2; i++)
            if (!e->args.data[i].name) pos[npos++] = dn_lower_expr(L, sc, e->args.data[i].value);
        if (!dn_bind_args(L, sc, n, schema, e, pos, npos, a, 2)) return dn_val_poison();
        *init = (DnInit){.kind = !strcmp(n, "normal") ? DN_INIT_NORMAL : DN_INIT_UNIFORM, .a = a[0].f, .b = a[1].f};
        return vint(0);
    }
    dn_error(L->cx, e->loc, "a parameter initializer must be zeros, ones, normal(mean, std) or uniform(a, b)");
    return dn_val_poison();
}

/* ---- models -------------------------------------------------------------------- */

static const AstDecl *pick_model(DnCtx *cx, const DnAst *ast, const char *model)
{
    const AstDecl *found = NULL;
    int n = 0;
    for (int i = 0; i < ast->decls.len; i++) {
        const AstDecl *d = ast->decls.data[i];
        if (d->kind != DECL_MODEL) continue;
        n++;
        if (!model || !strcmp(d->name, model)) found = found && !model ? found : d;
    }
    if (model && !found)
        dn_error(cx, (DnLoc){0}, "no model named '%s' in %s", model, ast->file);
    else if (!n)
        dn_error(cx, (DnLoc){ast->file, 1, 1}, "the file defines no model");
    else if (!model && n > 1) {
        dn_error(cx, (DnLoc){ast->file, 1, 1}, "the file defines %d models; choose one with --model NAME", n);
        return NULL;
    }
    return found;
}

/* Reports duplicate declarations and train sections naming no model; fills
 * L->blocks.  A model and a block may not share a name; a train section
 * may share its model's. */
static void check_decls(Lower *L)
{
    const DnAst *ast = L->ast;
    NameMap models = {0}, decls = {0}, trains = {0}; /* decls: models and blocks */
    for (int i = 0; i < ast->decls.len; i++)
        if (ast->decls.data[i]->kind == DECL_MODEL)
            dn_namemap_put(L->a, &models, ast->decls.data[i]->name, ast->decls.data[i]);
    for (int i = 0; i < ast->decls.len; i++) {
        AstDecl *d = ast->decls.data[i];
        if (d->kind == DECL_TRAIN && !dn_namemap_get(&models, d->name))
            dn_error(L->cx, d->loc, "train section for unknown model '%s'", d->name);
        NameMap *m = d->kind == DECL_TRAIN ? &trains : &decls;
        const AstDecl *o = dn_namemap_get(m, d->name);
        if (o)
            dn_error(L->cx, d->loc, "'%s' is defined twice (first at line %d)", d->name, o->loc.line);
        else
            dn_namemap_put(L->a, m, d->name, d);
        if (d->kind == DECL_BLOCK && !dn_namemap_get(&L->blocks, d->name)) dn_namemap_put(L->a, &L->blocks, d->name, d);
    }
}

/* Binds the model's inputs; checks and adds its outputs.  Returns false on errors. */
static void lower_outputs(Lower *L, const AstDecl *md, Scope *sc, Scope *outs)
{
    for (int i = 0; i < md->outputs.len; i++) {
        const AstParam *o = &md->outputs.data[i];
        Binding *b = dn_namemap_get(&sc->vars, o->name);
        if (!b) {
            if (!L->over_budget && !L->too_deep) /* else lowering stopped half way */
                dn_error(L->cx, o->loc, "output '%s' is never assigned", o->name);
            continue;
        }
        if (b->v.kind == VAL_POISON) continue;
        if (b->v.kind != VAL_TENSOR) {
            dn_error(L->cx, o->loc, "output '%s' must be a tensor, got %s", o->name, dn_val_kind_name(b->v.kind));
            continue;
        }
        DnValue *v = b->v.t;
        DnShape osh;
        if (!dn_lower_seq_type(L, &o->type, o->loc, o->name, &osh)) continue;
        if (v->dtype != o->type.dtype || !dn_shape_eq(&v->shape, &osh)) {
            char want[96], got[96];
            dn_type_str(o->type.dtype, &osh, want, sizeof want);
            dn_type_str(v->dtype, &v->shape, got, sizeof got);
            dn_error(L->cx, o->loc, "output '%s' is declared %s but computed as %s", o->name, want, got);
            continue;
        }
        dn_graph_add_output(L->g, o->name, v);
        dn_scope_set(L, outs, o->name, b->v);
    }
}

bool dn_lower_seq_type(Lower *L, const AstType *ty, DnLoc loc, const char *name, DnShape *out)
{
    *out = ty->shape;
    if (ty->shape.rank < 2) return true;
    int64_t d = ty->shape.dim[1];
    if (d == DN_DIM_SEQ_REF) {
        if (!L->seq_bound) {
            dn_error(L->cx, loc, "'%s' has the sequence axis T, but no model input declares its bound (T<=bound)",
                     name);
            return false;
        }
        out->dim[1] = DN_DIM_SEQ(L->seq_bound);
    } else if (DN_DIM_IS_SEQ(d) && DN_SEQ_BOUND(d) != L->seq_bound) {
        dn_error(L->cx, loc, "'%s' declares T<=%lld, but the model's sequence axis is T<=%lld (one bound per model)",
                 name, (long long)DN_SEQ_BOUND(d), (long long)L->seq_bound);
        return false;
    }
    return true;
}

/* The model's T<=bound: the first input that declares one (0: none). */
static int64_t model_seq_bound(const AstDecl *md)
{
    for (int i = 0; i < md->params.len; i++) {
        const DnShape *s = &md->params.data[i].type.shape;
        if (s->rank >= 2 && s->dim[1] != DN_DIM_SEQ_REF && DN_DIM_IS_SEQ(s->dim[1])) return DN_SEQ_BOUND(s->dim[1]);
    }
    return 0;
}

static void lower_model(Lower *L, const AstDecl *md, Scope *outs)
{
    Scope sc = {0};
    L->seq_bound = model_seq_bound(md);
    for (int i = 0; i < md->params.len; i++) {
        const AstParam *p = &md->params.data[i];
        if (dn_scope_find(&sc, p->name)) {
            dn_error(L->cx, p->loc, "duplicate input name '%s'", p->name);
            continue;
        }
        DnShape sh;
        bool fits = dn_lower_seq_type(L, &p->type, p->loc, p->name, &sh) &&
                    dn_lower_check_size(L, p->type.dtype, &sh, p->loc, p->name);
        DnValue *v = fits ? dn_graph_add_input(L->g, p->name, p->type.dtype, &sh, p->loc) : NULL;
        dn_scope_set(L, &sc, p->name, vtensor(v));
    }
    Exec x = {0};
    exec_body(L, &sc, &md->body, &x);
    lower_outputs(L, md, &sc, outs);
}

DnGraph *dn_lower(DnCtx *cx, const DnAst *ast, const char *model)
{
    if (!ast) return NULL;
    int nerr0 = cx->nerr;
    Lower L = {.cx = cx, .ast = ast, .a = ast->arena, .prefix = "", .next_salt = 1};
    check_decls(&L);
    const AstDecl *md = pick_model(cx, ast, model);
    if (!md) return NULL;
    const AstDecl *td = NULL;
    for (int i = 0; i < ast->decls.len; i++) {
        const AstDecl *d = ast->decls.data[i];
        if (d->kind == DECL_TRAIN && !strcmp(d->name, md->name) && !td) td = d;
    }
    L.g = dn_graph_new(md->name);
    Scope outs = {0};
    lower_model(&L, md, &outs);
    if (td && cx->nerr == nerr0) dn_lower_train(&L, md, td, &outs);
    if (cx->nerr > nerr0) {
        dn_graph_free(L.g);
        return NULL;
    }
    return L.g;
}
