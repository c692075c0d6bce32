/* train.c -- lowering of a model's train section.
 *
 * Part of lowering (lower.c calls dn_lower_train after the model body).
 * Adds the train-only inputs after the model inputs, builds the loss in
 * the same graph (g->loss; it may use only model outputs and train
 * inputs), turns 'optimizer = ...' into a complete DnOptimSpec (g->optim,
 * every attribute of the update op's schema in ops.def), marks frozen
 * parameters, and lowers 'augment INPUT: ...' lines to augmentation ops
 * (ops.def) applied to that model input at the top of the graph: every use
 * of the input is rewritten to the augmented value.  Augmentations keep the
 * input's shape (crops take size == [H, W]), so the inference pass can
 * drop them and the model body sees the same shapes in both graphs.
 */
#include "ast.h"

#include <stdlib.h>

/* Arguments of the optimizers; bare names are attributes of the update op,
 * with its kinds and defaults (ops.def; dn_bind_op_args). */
static const char *const sgd_schema = "lr momentum dampening nesterov:bool=false weight_decay warmup";
static const char *const adam_schema = "lr beta1 beta2 eps weight_decay warmup";
static const char *const adamw_schema = "lr beta1 beta2 eps weight_decay:float=1e-2 warmup"; /* AdamW's decay */

typedef struct Sched {
    const char *kind; /* "const" "step" "cosine" */
    int64_t step_size, total_steps;
    double gamma, min_lr;
} Sched;

/* Positional arguments of 'e' evaluated in 'sc' (at most 'max'). */
static int eval_positional(Lower *L, Scope *sc, const AstExpr *e, Val *pos, int max)
{
    int n = 0;
    for (int i = 0; i < e->args.len && n < max; i++)
        if (!e->args.data[i].name) pos[n++] = dn_lower_expr(L, sc, e->args.data[i].value);
    return n;
}

/* schedule = "step" "(" step_size [, gamma] ")" | "cosine" "(" total_steps [, min_lr] ")" | "const" */
static bool lower_schedule(Lower *L, Scope *sc, const AstExpr *e, Sched *s)
{
    bool call = e->kind == EXPR_CALL || e->kind == EXPR_NAME;
    const char *n = call ? e->s : "";
    Val pos[4], a[4];
    if (!strcmp(n, "const")) return true;
    if (strcmp(n, "step") && strcmp(n, "cosine")) {
        dn_error(L->cx, e->loc,
                 call ? "unknown schedule '%s' (expected step, cosine or const)"
                      : "a schedule must be step(...), cosine(...) or const%s",
                 n);
        return false;
    }
    int npos = eval_positional(L, sc, e, pos, 4);
    bool step = !strcmp(n, "step");
    if (!dn_bind_args(L, sc, n, step ? "step_size:int gamma:float=0.1" : "total_steps:int min_lr:float=0", e, pos, npos,
                      a, 4))
        return false;
    if (a[0].i < 1) {
        dn_error(L->cx, e->loc, "%s of %s must be at least 1", step ? "step_size" : "total_steps", n);
        return false;
    }
    s->kind = n;
    if (step)
        s->step_size = a[0].i, s->gamma = a[1].f;
    else
        s->total_steps = a[0].i, s->min_lr = a[1].f;
    return true;
}

/* The call 'e' without its 'schedule' keyword, which is stored in *sched. */
static AstExpr *split_schedule(Lower *L, const AstExpr *e, const AstExpr **sched)
{
    AstExpr *c = dn_arena_alloc(L->a, sizeof *c);
    *c = *e;
    memset(&c->args, 0, sizeof c->args);
    *sched = NULL;
    for (int i = 0; i < e->args.len; i++) {
        const AstArg *a = &e->args.data[i];
        if (a->name && !strcmp(a->name, "schedule") && !*sched)
            *sched = a->value;
        else
            dn_vec_push(L->a, &c->args, *a);
    }
    return c;
}

static DnOptimSpec *make_spec(Lower *L, bool adam, const Val *a, const Sched *s, bool decoupled, DnLoc loc)
{
    DnGraph *g = L->g;
    DnOptimSpec *o = dn_arena_alloc(&g->arena, sizeof *o);
    o->attrs = dn_arena_alloc(&g->arena, 16 * sizeof(DnAttr));
    o->kind = adam ? DN_OP_ADAM_UPDATE : DN_OP_SGD_UPDATE;
    o->loc = dn_graph_loc(g, loc);
    DnAttr *at = o->attrs;
    int n = 0;
    at[n++] = dn_attr_float("lr", a[0].f);
    if (adam) {
        at[n++] = dn_attr_float("beta1", a[1].f);
        at[n++] = dn_attr_float("beta2", a[2].f);
        at[n++] = dn_attr_float("eps", a[3].f);
        at[n++] = dn_attr_float("weight_decay", a[4].f);
        at[n++] = dn_attr_int("decoupled", decoupled);
    } else {
        at[n++] = dn_attr_float("momentum", a[1].f);
        at[n++] = dn_attr_float("dampening", a[2].f);
        at[n++] = dn_attr_int("nesterov", a[3].i);
        at[n++] = dn_attr_float("weight_decay", a[4].f);
    }
    at[n++] = dn_attr_str("sched", dn_arena_strdup(&g->arena, s->kind));
    at[n++] = dn_attr_int("step_size", s->step_size);
    at[n++] = dn_attr_float("gamma", s->gamma);
    at[n++] = dn_attr_int("total_steps", s->total_steps);
    at[n++] = dn_attr_int("warmup", a[5].i);
    at[n++] = dn_attr_float("min_lr", s->min_lr);
    o->nattrs = n;
    return o;
}

/* optimizer = ("sgd" | "adam" | "adamw") "(" args [, schedule=...] [, warmup=K] ")" */
static void lower_optimizer(Lower *L, Scope *sc, const AstExpr *e)
{
    const char *n = e->kind == EXPR_CALL || e->kind == EXPR_NAME ? e->s : "";
    bool adam = !strcmp(n, "adam") || !strcmp(n, "adamw");
    if (!adam && strcmp(n, "sgd")) {
        dn_error(L->cx, e->loc,
                 *n ? "unknown optimizer '%s' (expected sgd, adam or adamw)"
                    : "the optimizer must be sgd(...), adam(...) or adamw(...)%s",
                 n);
        return;
    }
    const AstExpr *sched_e;
    AstExpr *c = split_schedule(L, e, &sched_e);
    Sched s = {"const", 1, 1, 1.0, 0};
    bool ok = !sched_e || lower_schedule(L, sc, sched_e, &s);
    Val pos[8], a[8];
    int npos = eval_positional(L, sc, c, pos, 8);
    const char *schema = !strcmp(n, "sgd") ? sgd_schema : !strcmp(n, "adam") ? adam_schema : adamw_schema;
    if (!dn_bind_op_args(L, sc, n, adam ? DN_OP_ADAM_UPDATE : DN_OP_SGD_UPDATE, schema, c, pos, npos, a, 8) || !ok)
        return;
    if (!(a[0].f > 0)) {
        dn_error(L->cx, e->loc, "the learning rate of %s must be positive, got %g", n, a[0].f);
        return;
    }
    if (a[5].i < 0) {
        dn_error(L->cx, e->loc, "warmup of %s must not be negative", n);
        return;
    }
    if (!adam && a[3].i && (a[1].f <= 0 || a[2].f != 0)) {
        dn_error(L->cx, e->loc, "nesterov momentum requires a momentum and zero dampening");
        return;
    }
    L->g->optim = make_spec(L, adam, a, &s, !strcmp(n, "adamw"), e->loc);
}

static void lower_loss(Lower *L, Scope *sc, const AstStmt *s)
{
    L->in_train = true;
    Val v = dn_lower_expr(L, sc, s->e);
    L->in_train = false;
    if (v.kind == VAL_POISON) return;
    char buf[96];
    if (v.kind != VAL_TENSOR || v.t->dtype != DN_DTYPE_F32 || v.t->shape.rank != 0) {
        dn_error(L->cx, s->e->loc, "the loss must be a scalar f32 tensor, got %s",
                 v.kind == VAL_TENSOR ? dn_type_str(v.t->dtype, &v.t->shape, buf, sizeof buf)
                                      : dn_val_kind_name(v.kind));
        return;
    }
    L->g->loss = v.t;
}

/* Name lookups of a train section, made once: a section may list many
 * inputs, augmentations and freeze paths. */
typedef struct Train {
    const AstDecl *md;
    NameMap inputs;   /* model input name -> its AstParam */
    NameMap outputs;  /* model output name -> its AstParam */
    NameMap slots;    /* model input name -> its slot in 'cur' (see lower_augment) */
    NameMap frozen;   /* freeze paths done (value: the path) */
    DnParam **sorted; /* the parameters by name, made at the first freeze */
    int nsorted;
} Train;

static int by_name(const void *a, const void *b)
{
    return strcmp((*(DnParam *const *)a)->name, (*(DnParam *const *)b)->name);
}

/* Marks every parameter under label 'prefix' (name starts with "prefix.")
 * frozen.  Those names are one run of the parameters sorted by name. */
static void freeze(Lower *L, Train *T, const char *prefix, DnLoc loc)
{
    if (!T->sorted) {
        T->nsorted = L->g->params.len;
        T->sorted = dn_arena_alloc(L->a, (size_t)(T->nsorted + 1) * sizeof *T->sorted);
        memcpy(T->sorted, L->g->params.data, (size_t)T->nsorted * sizeof *T->sorted);
        qsort(T->sorted, (size_t)T->nsorted, sizeof *T->sorted, by_name);
    }
    if (dn_namemap_get(&T->frozen, prefix)) return; /* done, and it had parameters */
    size_t n = strlen(prefix);
    int lo = 0, hi = T->nsorted, hits = 0;
    while (lo < hi) { /* the first name >= "prefix." */
        int mid = lo + (hi - lo) / 2;
        int c = strncmp(T->sorted[mid]->name, prefix, n);
        if (c < 0 || (c == 0 && (unsigned char)T->sorted[mid]->name[n] < '.'))
            lo = mid + 1;
        else
            hi = mid;
    }
    for (int i = lo; i < T->nsorted && !strncmp(T->sorted[i]->name, prefix, n) && T->sorted[i]->name[n] == '.'; i++) {
        hits++;
        if (T->sorted[i]->kind == DN_PARAM_WEIGHT) T->sorted[i]->trainable = false;
    }
    if (!hits)
        dn_error(L->cx, loc, "freeze: no parameters under label '%s'", prefix);
    else
        dn_namemap_put(L->a, &T->frozen, prefix, (void *)prefix);
}

static void add_input(Lower *L, Train *T, Scope *ts, const AstStmt *s)
{
    bool clash =
        dn_namemap_get(&T->inputs, s->name) || dn_namemap_get(&T->outputs, s->name) || dn_scope_find(ts, s->name);
    if (clash) {
        dn_error(L->cx, s->name_loc, "train input '%s' has the name of a model input, output or another train input",
                 s->name);
        return;
    }
    DnShape sh;
    if (!dn_lower_seq_type(L, s->type, s->name_loc, s->name, &sh) ||
        !dn_lower_check_size(L, s->type->dtype, &sh, s->name_loc, s->name)) {
        dn_scope_set(L, ts, s->name, dn_val_poison()); /* no "unknown name" cascade */
        return;
    }
    DnValue *v = dn_graph_add_input(L->g, s->name, s->type->dtype, &sh, s->name_loc);
    v->train_only = true;
    dn_scope_set(L, ts, s->name, (Val){.kind = VAL_TENSOR, .t = v});
}

/* A setting 'loss = ...' or 'optimizer = ...'; 'seen' guards duplicates. */
static void lower_setting(Lower *L, Scope *ts, const AstStmt *s, bool seen[2])
{
    int which = !strcmp(s->name, "loss") ? 0 : !strcmp(s->name, "optimizer") ? 1 : -1;
    if (which < 0) {
        dn_error(L->cx, s->name_loc, "unknown train setting '%s' (expected loss or optimizer)", s->name);
        return;
    }
    if (seen[which]) {
        dn_error(L->cx, s->name_loc, "'%s' is set twice", s->name);
        return;
    }
    seen[which] = true;
    if (which == 0)
        lower_loss(L, ts, s);
    else
        lower_optimizer(L, ts, s->e);
}

/* ---- augmentation ------------------------------------------------------------ */

typedef struct AugInfo {
    const char *name;
    DnOpKind op;
    const char *schema; /* of the call's arguments: attributes of 'op' (dn_bind_op_args) */
} AugInfo;

static const AugInfo augs[] = {
    {"random_flip", DN_OP_RANDOM_FLIP, "p"},
    {"random_crop", DN_OP_RANDOM_CROP, "size pad"},
    {"random_resized_crop", DN_OP_RANDOM_RESIZED_CROP, "size scale_min scale_max ratio_min ratio_max"},
    {"color_jitter", DN_OP_COLOR_JITTER, "brightness contrast"},
    {"pca_lighting", DN_OP_PCA_LIGHTING, "std"},
};
#define NAUGS ((int)(sizeof augs / sizeof augs[0]))

static const AugInfo *find_aug(const AstExpr *e)
{
    if (e->kind != EXPR_CALL && e->kind != EXPR_NAME) return NULL;
    for (int i = 0; i < NAUGS; i++)
        if (!strcmp(augs[i].name, e->s)) return &augs[i];
    return NULL;
}

/* The stage piped into call 'e' ('prev |> e', i.e. e's first positional
 * argument when it is a call or an augmentation's name), or NULL. */
static const AstExpr *piped_stage(const AstExpr *e)
{
    if (e->kind != EXPR_CALL || e->args.len == 0 || e->args.data[0].name) return NULL;
    const AstExpr *a = e->args.data[0].value;
    return a->kind == EXPR_CALL || (a->kind == EXPR_NAME && find_aug(a)) ? a : NULL;
}

/* The 'size' argument as [h, w], which must be the input's [H, W]. */
static bool aug_size(Lower *L, const AstExpr *e, Val v, const DnValue *x, int64_t hw[2])
{
    if (v.kind != VAL_LIST || (v.n != 1 && v.n != 2)) {
        dn_error(L->cx, e->loc, "size of %s must be an int or a list of 2 ints", e->s);
        return false;
    }
    hw[0] = v.items[0].i;
    hw[1] = v.items[v.n - 1].i;
    if (x->shape.rank == 4 && (hw[0] != x->shape.dim[2] || hw[1] != x->shape.dim[3])) {
        char buf[96];
        dn_error(L->cx, e->loc,
                 "%s: size [%lld, %lld] must equal the input's height and width (%s): augmentations keep the "
                 "model input's shape",
                 e->s, (long long)hw[0], (long long)hw[1], dn_type_str(x->dtype, &x->shape, buf, sizeof buf));
        return false;
    }
    return true;
}

/* Lowers one augmentation call 'e' (its own arguments only) applied to 'x'. */
static DnValue *aug_call(Lower *L, Scope *sc, const AugInfo *ai, const AstExpr *e, DnValue *x)
{
    int skip = piped_stage(e) ? 1 : 0, npos = 0;
    Val pos[8], a[8];
    for (int i = skip; i < e->args.len && npos < 8; i++)
        if (!e->args.data[i].name) pos[npos++] = dn_lower_expr(L, sc, e->args.data[i].value);
    AstExpr c = *e;
    if (skip) { /* bind as if the piped value were not there */
        c.args.data = e->args.data + 1;
        c.args.len = e->args.len - 1;
    }
    if (!dn_bind_op_args(L, sc, ai->name, ai->op, ai->schema, &c, pos, npos, a, 8)) return NULL;
    DnAttr at[8];
    int n = 0;
    int64_t hw[2];
    switch (ai->op) {
    case DN_OP_RANDOM_FLIP: at[n++] = dn_attr_float("p", a[0].f); break;
    case DN_OP_RANDOM_CROP:
    case DN_OP_RANDOM_RESIZED_CROP:
        if (!aug_size(L, e, a[0], x, hw)) return NULL;
        at[n++] = dn_attr_ints("size", 2, hw);
        if (ai->op == DN_OP_RANDOM_CROP) {
            at[n++] = dn_attr_int("pad", a[1].i);
            break;
        }
        at[n++] = dn_attr_float("scale_min", a[1].f);
        at[n++] = dn_attr_float("scale_max", a[2].f);
        at[n++] = dn_attr_float("ratio_min", a[3].f);
        at[n++] = dn_attr_float("ratio_max", a[4].f);
        break;
    case DN_OP_COLOR_JITTER:
        at[n++] = dn_attr_float("brightness", a[0].f);
        at[n++] = dn_attr_float("contrast", a[1].f);
        break;
    case DN_OP_PCA_LIGHTING: at[n++] = dn_attr_float("std", a[0].f); break;
    default: DN_UNREACHABLE();
    }
    at[n++] = dn_attr_int("salt", L->next_salt++);
    return dn_build1(L->cx, L->g, ai->op, 1, &x, n, at, e->loc);
}

/* Lowers the chain 'e' (stage |> stage ...) applied to 'x'; NULL after
 * errors.  The stages are collected on L->chain (a chain may be long) and
 * applied from the first. */
static DnValue *aug_chain(Lower *L, Scope *sc, const AstExpr *e, DnValue *x)
{
    int base = L->chain.len;
    for (; e; e = piped_stage(e)) {
        if (!find_aug(e)) {
            if (e->kind == EXPR_CALL || e->kind == EXPR_NAME)
                dn_error(L->cx, e->loc,
                         "unknown augmentation '%s' (expected random_flip, random_crop, "
                         "random_resized_crop, color_jitter or pca_lighting)",
                         e->s);
            else
                dn_error(L->cx, e->loc, "an augmentation must be a call such as random_crop(28, pad=2)");
            L->chain.len = base;
            return NULL;
        }
        dn_vec_push(L->a, &L->chain, e);
    }
    for (int i = L->chain.len - 1; i >= base && x; i--) {
        const AstExpr *stage = L->chain.data[i]; /* re-read: nested lowering may grow the vector */
        x = aug_call(L, sc, find_aug(stage), stage, x);
        if (x && !dn_lower_op_budget(L, stage->loc)) x = NULL;
    }
    L->chain.len = base;
    return x;
}

/* Moves ops [from, g->ops.len) to just after the op defining 'v' (or to the
 * front when 'v' is not an op result).  Legal when they read nothing else
 * defined after that point, which holds for an augmentation chain. */
static void hoist(DnArena *scratch, DnGraph *g, int from, const DnValue *v)
{
    int at = 0, n = g->ops.len - from;
    if (v->kind == DN_VAL_OP)
        for (int i = 0; i < from; i++)
            if (g->ops.data[i] == v->def) at = i + 1;
    DnOp **tmp = dn_arena_alloc(scratch, (size_t)(n ? n : 1) * sizeof *tmp);
    memcpy(tmp, g->ops.data + from, (size_t)n * sizeof *tmp);
    memmove(g->ops.data + at + n, g->ops.data + at, (size_t)(from - at) * sizeof *tmp);
    memcpy(g->ops.data + at, tmp, (size_t)n * sizeof *tmp);
}

/* augment NAME: chain.  T->slots maps each model input to its current
 * (augmented) value. */
static void lower_augment(Lower *L, Train *T, Scope *ts, const AstStmt *s)
{
    DnGraph *g = L->g;
    DnValue **cur = dn_namemap_get(&T->slots, s->name);
    if (!dn_namemap_get(&T->inputs, s->name) || !cur) {
        dn_error(L->cx, s->name_loc, "augment: '%s' is not an input of model '%s'", s->name, T->md->name);
        return;
    }
    int first = g->ops.len;
    DnValue *old = *cur, *y = aug_chain(L, ts, s->e, old);
    if (!y) return;
    for (int i = first; i < g->ops.len; i++) g->ops.data[i]->dead = true; /* not rewritten */
    dn_graph_replace_uses(g, old, y);
    for (int i = first; i < g->ops.len; i++) g->ops.data[i]->dead = false;
    hoist(L->a, g, first, old);
    *cur = y;
}

bool dn_lower_train(Lower *L, const AstDecl *md, const AstDecl *td, Scope *outs)
{
    int nerr = L->cx->nerr;
    Scope ts = {.parent = outs};
    bool seen[2] = {false, false};
    Train T = {.md = md};
    for (int i = 0; i < md->params.len; i++)
        dn_namemap_put(L->a, &T.inputs, md->params.data[i].name, &md->params.data[i]);
    for (int i = 0; i < md->outputs.len; i++)
        dn_namemap_put(L->a, &T.outputs, md->outputs.data[i].name, &md->outputs.data[i]);
    DnValue **cur = dn_arena_alloc(L->a, (size_t)(L->g->inputs.len + 1) * sizeof *cur);
    for (int i = 0; i < L->g->inputs.len; i++) {
        cur[i] = L->g->inputs.data[i];
        if (!dn_namemap_get(&T.slots, cur[i]->name)) dn_namemap_put(L->a, &T.slots, cur[i]->name, &cur[i]);
    }
    for (int i = 0; i < td->body.len; i++)
        if (td->body.data[i]->kind == STMT_INPUT) add_input(L, &T, &ts, td->body.data[i]);
    for (int i = 0; i < td->body.len; i++) {
        const AstStmt *s = td->body.data[i];
        if (s->kind == STMT_ASSIGN)
            lower_setting(L, &ts, s, seen);
        else if (s->kind == STMT_FREEZE)
            for (int j = 0; j < s->names.len; j++) freeze(L, &T, s->names.data[j], s->name_locs.data[j]);
        else if (s->kind == STMT_AUGMENT)
            lower_augment(L, &T, &ts, s);
    }
    if (!seen[0]) dn_error(L->cx, td->loc, "train section of '%s' has no 'loss = ...'", td->name);
    if (!seen[1]) dn_error(L->cx, td->loc, "train section of '%s' has no 'optimizer = ...'", td->name);
    return L->cx->nerr == nerr;
}
