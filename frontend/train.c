/* train.c -- lowering of a model's train section.
 *
 * Part of lowering (lower.c calls dn_lower_train after the model body).
 * Adds the train-only inputs after the model inputs, builds the loss in
 * the same graph (g->loss; it may use only model outputs and train
 * inputs), turns 'optimizer = ...' into a complete DnOptimSpec (g->optim,
 * every attribute of the update op's schema in ops.def), marks frozen
 * parameters, and checks 'augment' before rejecting it (not lowered yet).
 */
#include "ast.h"

static const char *const sgd_schema =
    "lr:float momentum:float=0 dampening:float=0 nesterov:bool=false weight_decay:float=0 warmup:int=0";
static const char *const adam_schema =
    "lr:float=1e-3 beta1:float=0.9 beta2:float=0.999 eps:float=1e-8 weight_decay:float=0 warmup:int=0";
static const char *const adamw_schema =
    "lr:float=1e-3 beta1:float=0.9 beta2:float=0.999 eps:float=1e-8 weight_decay:float=1e-2 warmup:int=0";

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
        dn_error(L->cx, e->loc, call ? "unknown schedule '%s' (expected step, cosine or const)"
                                     : "a schedule must be step(...), cosine(...) or const%s", n);
        return false;
    }
    int npos = eval_positional(L, sc, e, pos, 4);
    bool step = !strcmp(n, "step");
    if (!dn_bind_args(L, sc, n, step ? "step_size:int gamma:float=0.1" : "total_steps:int min_lr:float=0", e, pos, npos, a, 4))
        return false;
    if (a[0].i < 1) {
        dn_error(L->cx, e->loc, "%s of %s must be at least 1", step ? "step_size" : "total_steps", n);
        return false;
    }
    s->kind = n;
    if (step) s->step_size = a[0].i, s->gamma = a[1].f;
    else s->total_steps = a[0].i, s->min_lr = a[1].f;
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
        if (a->name && !strcmp(a->name, "schedule") && !*sched) *sched = a->value;
        else dn_vec_push(L->a, &c->args, *a);
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
        dn_error(L->cx, e->loc, *n ? "unknown optimizer '%s' (expected sgd, adam or adamw)" : "the optimizer must be sgd(...), adam(...) or adamw(...)%s", n);
        return;
    }
    const AstExpr *sched_e;
    AstExpr *c = split_schedule(L, e, &sched_e);
    Sched s = {"const", 1, 1, 1.0, 0};
    bool ok = !sched_e || lower_schedule(L, sc, sched_e, &s);
    Val pos[8], a[8];
    int npos = eval_positional(L, sc, c, pos, 8);
    const char *schema = !strcmp(n, "sgd") ? sgd_schema : !strcmp(n, "adam") ? adam_schema : adamw_schema;
    if (!dn_bind_args(L, sc, n, schema, c, pos, npos, a, 8) || !ok) return;
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
                 v.kind == VAL_TENSOR ? dn_type_str(v.t->dtype, &v.t->shape, buf, sizeof buf) : dn_val_kind_name(v.kind));
        return;
    }
    L->g->loss = v.t;
}

/* Marks every parameter under label 'prefix' (name starts with "prefix.") frozen. */
static void freeze(Lower *L, const char *prefix, DnLoc loc)
{
    size_t n = strlen(prefix);
    int hits = 0;
    for (int i = 0; i < L->g->params.len; i++) {
        DnParam *p = L->g->params.data[i];
        if (!strncmp(p->name, prefix, n) && p->name[n] == '.') {
            hits++;
            if (p->kind == DN_PARAM_WEIGHT) p->trainable = false;
        }
    }
    if (!hits) dn_error(L->cx, loc, "freeze: no parameters under label '%s'", prefix);
}

static bool is_model_input(const AstDecl *md, const char *name)
{
    for (int i = 0; i < md->params.len; i++)
        if (!strcmp(md->params.data[i].name, name)) return true;
    return false;
}

static void add_input(Lower *L, const AstDecl *md, Scope *ts, const AstStmt *s)
{
    bool clash = is_model_input(md, s->name) || dn_scope_find(ts, s->name);
    for (int i = 0; i < md->outputs.len && !clash; i++) clash = !strcmp(md->outputs.data[i].name, s->name);
    if (clash) {
        dn_error(L->cx, s->name_loc, "train input '%s' has the name of a model input, output or another train input", s->name);
        return;
    }
    DnValue *v = dn_graph_add_input(L->g, s->name, s->type.dtype, &s->type.shape, s->name_loc);
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
    if (which == 0) lower_loss(L, ts, s);
    else lower_optimizer(L, ts, s->e);
}

bool dn_lower_train(Lower *L, const AstDecl *md, const AstDecl *td, Scope *outs)
{
    int nerr = L->cx->nerr;
    Scope ts = {.parent = outs};
    bool seen[2] = {false, false};
    for (int i = 0; i < td->body.len; i++)
        if (td->body.data[i]->kind == STMT_INPUT) add_input(L, md, &ts, td->body.data[i]);
    for (int i = 0; i < td->body.len; i++) {
        const AstStmt *s = td->body.data[i];
        if (s->kind == STMT_ASSIGN) lower_setting(L, &ts, s, seen);
        else if (s->kind == STMT_FREEZE)
            for (int j = 0; j < s->names.len; j++) freeze(L, s->names.data[j], s->name_locs.data[j]);
        else if (s->kind == STMT_AUGMENT) {
            if (!is_model_input(md, s->name)) dn_error(L->cx, s->name_loc, "augment: '%s' is not an input of model '%s'", s->name, md->name);
            else dn_error(L->cx, s->loc, "augmentation is not supported yet");
        }
    }
    if (!seen[0]) dn_error(L->cx, td->loc, "train section of '%s' has no 'loss = ...'", td->name);
    if (!seen[1]) dn_error(L->cx, td->loc, "train section of '%s' has no 'optimizer = ...'", td->name);
    return L->cx->nerr == nerr;
}
