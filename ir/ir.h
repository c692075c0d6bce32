/* ir.h -- the graph IR: values, ops, parameters, the op table, and the
 * operations every layer uses on them.
 *
 * A DnGraph is one function: inputs, parameters, ops in topological order,
 * outputs.  Values are SSA (written once); side-effect ops (optimizer
 * updates, batchnorm running statistics) write parameters in place and are
 * kept by DCE.  Shapes are static except axis 0, which may be the symbolic
 * batch N (DN_DIM_N), and axis 1 after N, which may be the run-time
 * sequence axis T (DN_DIM_SEQ, ir/seq.c).  Everything lives in the graph's
 * arena.
 *
 * Files:  ir/graph.c (construction), ir/attrs.c (attribute schemas,
 * defaults), ir/shape.c (op table, builder), ir/shape_rules.c (shape
 * rules), ir/verify.c, ir/print.c, ir/read.c (text form, docs/ir.md),
 * ir/autodiff.c (reverse mode) with ir/grad_rules.c (gradient rules),
 * ir/cost.c (cost model), ir/ranges.c (ranges of integer inputs),
 * ir/seq.c (the sequence axis T).
 */
#ifndef DN_IR_H
#define DN_IR_H

#include "support.h"

/* ---- dtypes and shapes ------------------------------------------------ */

typedef enum { DN_DTYPE_F32, DN_DTYPE_I32, DN_DTYPE_I64, DN_DTYPE_COUNT } DnDType; /* ORDER DN_DTYPE */

#define DN_MAX_RANK 6
#define DN_DIM_N    (-1) /* the symbolic batch dimension; only ever dim[0] */
/* The run-time sequence axis T<=bound (ir/seq.c): only ever dim[1], after N.
 * The dim holds its bound, so a shape says what it is on its own. */
#define DN_DIM_SEQ(bound) (-(int64_t)(bound)-1)
#define DN_DIM_IS_SEQ(d)  ((d) < DN_DIM_N)
#define DN_SEQ_BOUND(d)   (-(d)-1)
#define DN_MAX_SEQ_BOUND  (INT64_C(1) << 24)

typedef struct DnShape {
    int rank;                 /* 0 = scalar */
    int64_t dim[DN_MAX_RANK]; /* dim[0] may be DN_DIM_N, dim[1] (after N) DN_DIM_SEQ */
} DnShape;

int dn_dtype_size(DnDType t);          /* bytes per element */
const char *dn_dtype_name(DnDType t);  /* "f32", "i32", "i64" */
bool dn_shape_has_n(const DnShape *s); /* dim[0] == DN_DIM_N */
/* Elements per batch item when has_n (product of dims 1..), else all
 * elements; a sequence axis T counts as its bound (what the arena holds). */
int64_t dn_shape_numel_static(const DnShape *s);
bool dn_shape_eq(const DnShape *a, const DnShape *b);
/* Size limits that keep every byte count and index of a plan inside int64:
 * a tensor (per batch item when it has N) holds at most DN_MAX_TENSOR_BYTES;
 * window attributes (pad, stride, dilation, kernel) are at most DN_MAX_WINDOW. */
#define DN_MAX_TENSOR_BYTES (INT64_C(1) << 40)
#define DN_MAX_WINDOW       (INT64_C(1) << 20)
/* True when a tensor of this type is within DN_MAX_TENSOR_BYTES (computed
 * without overflow) and no static dimension is negative. */
bool dn_type_fits(DnDType t, const DnShape *s);
/* Writes "f32[N, 1, 28, 28]" (the form diagnostics use) into buf; returns buf. */
char *dn_type_str(DnDType t, const DnShape *s, char *buf, size_t len);

/* ---- attributes --------------------------------------------------------- */

typedef enum { DN_ATTR_INT, DN_ATTR_INTS, DN_ATTR_FLOAT, DN_ATTR_STR } DnAttrKind;

typedef struct DnAttr {
    const char *name;
    DnAttrKind kind;
    int64_t i; /* DN_ATTR_INT */
    int nints; /* DN_ATTR_INTS */
    int64_t *ints;
    double f;      /* DN_ATTR_FLOAT */
    const char *s; /* DN_ATTR_STR */
} DnAttr;

/* ---- op table ----------------------------------------------------------- */

typedef enum {
#define OP(E, name, mi, ma, no, fl, at) DN_OP_##E,
#include "ops.def"
#undef OP
    DN_OP_COUNT
} DnOpKind;

/* ORDER DN_OPF: the flag names in ir/ops_help.c */
enum {
    DN_OPF_ELEMWISE = 1 << 0,    /* pointwise (with broadcasting): fusable */
    DN_OPF_VIEW = 1 << 1,        /* result aliases the operand's bytes (reshape) */
    DN_OPF_SIDE_EFFECT = 1 << 2, /* writes operands in place; never dead */
    DN_OPF_RANDOM = 1 << 3,      /* uses the philox stream (seed, salt, step) */
    DN_OPF_GUARD = 1 << 4,       /* result 0 is an i32[] status: when it is non-zero after the op, the
                                    entry function skips every later op and returns it; never dead */
    DN_OPF_STRIDED_OUT = 1 << 5, /* every backend's kernel writes result 0 at the memory plan's item
                                    stride (a strided view: a concat operand written in place) */
};

typedef struct DnOpInfo {
    const char *name;
    int min_in, max_in, nout;
    unsigned flags;
    const char *attrs; /* schema, see ops.def */
} DnOpInfo;

extern const DnOpInfo dn_op_info[DN_OP_COUNT];
/* Looks an op up by its text name; returns DN_OP_COUNT when unknown. */
DnOpKind dn_op_lookup(const char *name);

/* ---- values, ops, parameters, graphs ----------------------------------- */

typedef enum {
    DN_VAL_INPUT, /* graph input: 'index' into g->inputs */
    DN_VAL_PARAM, /* parameter or state tensor: 'index' into g->params */
    DN_VAL_OP,    /* result 'index' of op 'def' */
} DnValueKind;

typedef struct DnOp DnOp;

typedef struct DnValue {
    int id; /* unique in the graph, dense from 0; printing renumbers */
    DnValueKind kind;
    int index; /* see DnValueKind */
    DnOp *def; /* DN_VAL_OP only */
    DnDType dtype;
    DnShape shape;
    const char *name; /* inputs and params: their name; op results: optional hint */
    bool train_only;  /* inputs only: exists only in training (labels) */
    DnLoc loc;
} DnValue;

struct DnOp {
    int id; /* position when last numbered; unique */
    DnOpKind kind;
    int nin, nout;
    DnValue **in;
    DnValue **out;
    int nattrs;
    DnAttr *attrs;
    DnLoc loc;
    bool dead; /* unlinked by a pass; skipped by every iterator */
};

typedef enum {
    DN_INIT_ZEROS,   /* 0 */
    DN_INIT_ONES,    /* 1 */
    DN_INIT_UNIFORM, /* U(a, b) */
    DN_INIT_NORMAL,  /* N(mean = a, std = b) */
} DnInitKind;

typedef struct DnInit {
    DnInitKind kind;
    double a, b;
    int64_t zero_row; /* 1 + an index along axis 0 whose row is set to 0 after the fill
                         (embedding's padding_idx, as nn.Embedding); 0: none */
} DnInit;

typedef enum {
    DN_PARAM_WEIGHT, /* learnable (or frozen) parameter: saved, loaded */
    DN_PARAM_BUFFER, /* state that is not learned (running_mean...): saved, loaded */
    DN_PARAM_OPTIM,  /* optimizer state ("optim.<param>.m"): saved with training state */
    DN_PARAM_CACHE,  /* decoding state (a KV cache, written by cached_attention): zeros at session
                        create, neither saved nor loaded */
} DnParamKind;

typedef struct DnParam {
    const char *name; /* hierarchical: "layer1.0.conv1.weight" */
    DnParamKind kind;
    DnDType dtype;
    DnShape shape; /* fully static */
    DnInit init;
    bool trainable; /* WEIGHT only: false when frozen */
    DnValue *value; /* the graph value that reads it */
    DnLoc loc;
} DnParam;

/* The optimizer a train section asks for: an update op kind
 * (DN_OP_SGD_UPDATE or DN_OP_ADAM_UPDATE) with its attributes, complete
 * per the op's schema. */
typedef struct DnOptimSpec {
    DnOpKind kind;
    int nattrs;
    DnAttr *attrs;
    DnLoc loc;
} DnOptimSpec;

/* graph.c: the float attribute 'name' of optimizer spec 'o' ("lr", "momentum", ...);
 * a missing one, or one of another kind, is a bug (dn_die). */
double dn_optim_float(const DnOptimSpec *o, const char *name);

typedef struct DnGraph {
    DnArena arena;    /* owns everything below */
    const char *name; /* model name: C identifier */
    DN_VEC(DnValue *) inputs;
    DN_VEC(DnValue *) outputs;
    DN_VEC(const char *) output_names; /* parallel to outputs */
    DN_VEC(DnParam *) params;
    DN_VEC(DnOp *) ops; /* topological order; may contain dead ops */
    int nvalues;        /* next value id */
    /* Training (set by the frontend's train section, NULL otherwise):
     * 'loss' is a scalar f32 value computed from outputs and train-only
     * inputs; the training pass differentiates it and appends 'optim'
     * updates.  The inference pass clears both. */
    DnValue *loss;
    DnOptimSpec *optim;
} DnGraph;

/* ---- graph.c ------------------------------------------------------------ */

/* Returns a new empty graph named 'name'; free with dn_graph_free. */
DnGraph *dn_graph_new(const char *name);
void dn_graph_free(DnGraph *g);
DnValue *dn_graph_add_input(DnGraph *g, const char *name, DnDType t, const DnShape *s, DnLoc loc);
/* Adds a parameter; returns it with p->value set.  'name' is copied. */
DnParam *dn_graph_add_param(DnGraph *g, const char *name, DnParamKind kind, DnDType t, const DnShape *s, DnInit init,
                            DnLoc loc);
DnParam *dn_graph_find_param(const DnGraph *g, const char *name);
void dn_graph_add_output(DnGraph *g, const char *name, DnValue *v);
/* Returns a deep copy in its own arena (values, ops, params; dead ops dropped). */
DnGraph *dn_graph_clone(const DnGraph *g);
/* Use counts: fills uses[v->id] for every value (array of g->nvalues ints, in 'scratch'). */
int *dn_fill_uses(const DnGraph *g, DnArena *scratch);
/* Whether 'v' is one of g's outputs or its loss (its storage is the caller's or the step's). */
bool dn_graph_is_output(const DnGraph *g, const DnValue *v);
/* Replaces every operand use of 'from' (and output) by 'to'. */
void dn_graph_replace_uses(DnGraph *g, DnValue *from, DnValue *to);

/* ---- shape.c: the builder ------------------------------------------------
 * dn_build appends op 'kind' with operands 'in' and attributes 'attrs'
 * (missing ones take their defaults; see the op's schema), infers result
 * shapes with the op's shape rule and returns the op.  On a shape or
 * attribute error it reports a diagnostic at 'loc' through 'cx' (message
 * names the op and the offending types, e.g.
 * "conv2d expects a 4-d input, got f32[N, 784]") and returns NULL; callers
 * propagate NULL as "poisoned" without further messages.  Never aborts on
 * user input. */
DnOp *dn_build(DnCtx *cx, DnGraph *g, DnOpKind kind, int nin, DnValue **in, int nattrs, const DnAttr *attrs, DnLoc loc);
/* Convenience: the first result of dn_build, or NULL. */
DnValue *dn_build1(DnCtx *cx, DnGraph *g, DnOpKind kind, int nin, DnValue **in, int nattrs, const DnAttr *attrs,
                   DnLoc loc);

/* Attribute constructors (strings and arrays are copied into 'g' by dn_build). */
DnAttr dn_attr_int(const char *name, int64_t v);
DnAttr dn_attr_float(const char *name, double v);
DnAttr dn_attr_str(const char *name, const char *s);
DnAttr dn_attr_ints(const char *name, int n, const int64_t *v);

/* True for the per-axis window attributes (stride, pad, dilation, kernel):
 * one value stands for both axes, and their size is bounded (DN_MAX_WINDOW). */
bool dn_attr_is_window(const char *name);

/* Attribute access on a built op (missing attributes are a bug: dn_die). */
const DnAttr *dn_op_attr(const DnOp *op, const char *name);
int64_t dn_op_int(const DnOp *op, const char *name);
double dn_op_float(const DnOp *op, const char *name);
const char *dn_op_str(const DnOp *op, const char *name);
/* Returns the ints and stores their count in *n. */
const int64_t *dn_op_ints(const DnOp *op, const char *name, int *n);

/* ---- cost.c ------------------------------------------------------------- */

/* Work of one op as  coefficient * n + fixed  (n: the batch size). */
typedef struct DnCost {
    int64_t flops_n, flops_b; /* multiply-add = 2; pointwise = 1 per result element */
    int64_t bytes_n, bytes_b; /* bytes of all operands and results */
} DnCost;
void dn_op_cost(const DnOp *op, DnCost *c);

/* ---- ranges.c ----------------------------------------------------------- */

/* The values an integer input 'v' of 'g' may hold, from the ops that read it
 * (a class label of cross_entropy: [0, classes - 1]).  Returns false when
 * nothing constrains it. */
bool dn_input_range(const DnGraph *g, const DnValue *v, int64_t *lo, int64_t *hi);
/* A value every reader of 'v' accepts besides its range (cross_entropy's
 * ignore_index, when outside [0, classes - 1]); false when there is none or
 * the readers disagree. */
bool dn_input_extra(const DnGraph *g, const DnValue *v, int64_t *extra);

/* ---- verify.c ----------------------------------------------------------- */

/* Checks SSA, topological order, arity, attribute schema and that every
 * result's recorded shape equals its shape rule's.  Reports problems
 * through 'cx' at the op's location; returns DN_ERR if any. */
DnStatus dn_verify(DnCtx *cx, const DnGraph *g);

/* ---- print.c / read.c: the text form (docs/ir.md) ---------------------- */

/* Writes 'g' in the stable text form; deterministic, round-trips. */
void dn_graph_print(const DnGraph *g, FILE *out);
/* Parses the text form; 'file' names the input in diagnostics.  Returns
 * NULL (and diagnostics in 'cx') on a syntax or shape error. */
DnGraph *dn_graph_read(DnCtx *cx, const char *file, const char *text);

/* ---- additions of the IR core (graph.c, shape.c, read.c) ---------------- */

#define DN_MAX_ATTRS 16 /* most attributes any op's schema lists */
#define DN_MAX_OUTS  4  /* most results any op has */

/* One entry of an op's attribute schema (ops.def), in schema order. */
typedef struct DnAttrSpec {
    char name[32];
    DnAttrKind kind;
    bool has_default; /* false: the attribute is required */
    char def[32];     /* has_default: the default as written in ops.def */
    int ref;          /* has_default: index of the earlier entry whose value is
                         the default (def is its name), or -1 for a literal */
} DnAttrSpec;

/* Parses op 'kind's schema into 'out' (DN_MAX_ATTRS entries); returns the
 * count.  A malformed schema is a bug in ops.def (dn_die). */
int dn_op_schema(DnOpKind kind, DnAttrSpec *out);
/* Parses schema text 'schema' (the syntax of ops.def's header) into 'out'
 * (DN_MAX_ATTRS entries) and returns the count, checking every default
 * against its kind; on a malformed schema returns -1 with a message in
 * 'err' ('errlen' bytes). */
int dn_schema_parse(const char *schema, DnAttrSpec *out, char *err, size_t errlen);
/* Prints every op of ops.def with its operand and result counts, flags and
 * attributes (kinds and defaults): the text of `dnnc --help-ops`. */
void dn_ops_print(FILE *out);
/* "int", "ints", "float", "str". */
const char *dn_attr_kind_name(DnAttrKind k);
/* Appends a fresh value (id g->nvalues++) in g's arena; the caller sets
 * kind-specific fields (index, def, name).  Never NULL. */
DnValue *dn_graph_new_value(DnGraph *g, DnValueKind kind, DnDType t, const DnShape *s, DnLoc loc);
/* Runs op's shape rule on its operands and attributes (already complete):
 * fills dt[i], sh[i] for its op->nout results (arrays of at least
 * DN_MAX_OUTS entries).  On error reports through 'cx' at op->loc, returns DN_ERR. */
DnStatus dn_infer_shapes(DnCtx *cx, const DnOp *op, DnDType *dt, DnShape *sh);
/* Returns 'loc' with its file name owned by g's arena (copies are shared
 * with the graph's most recent ops, so a graph holds few copies). */
DnLoc dn_graph_loc(DnGraph *g, DnLoc loc);
/* Completes attribute list 'attrs' of an op of 'kind' against its schema:
 * checks names (unknown or repeated: error) and kinds (an int is accepted
 * where a float is expected, and as a one-element list where ints are;
 * stride/pad/dilation/kernel given as one int apply to both axes), fills
 * the schema's defaults (ops.def: e.g. pool stride = kernel, axis = -1),
 * normalizes negative axes against in[0], and copies everything into g's
 * arena in schema order.  'in' may be NULL (then 'axis' stays as given or
 * defaulted, e.g. -1).
 * Returns the array and its length in *nout, or NULL after reporting. */
DnAttr *dn_attrs_complete(DnCtx *cx, DnGraph *g, DnOpKind kind, DnValue *const *in, int nattrs, const DnAttr *attrs,
                          DnLoc loc, int *nout);
/* Numpy broadcasting of 'a' and 'b' into *out, with the batch rule: N
 * matches N and 1 but no static size > 1, and must end up in axis 0.
 * Returns false when the shapes do not broadcast. */
bool dn_shape_broadcast(const DnShape *a, const DnShape *b, DnShape *out);
/* A shape seen as [rows, D]: the last 'trailing' axes make the row of D
 * elements, the others the rows: lead of them, times n when has_n. */
typedef struct DnRows {
    int64_t lead, D;
    bool has_n;
} DnRows;
DnRows dn_shape_rows(const DnShape *s, int trailing);
/* The geometry of a flash_attention or flash_attention_bwd op
 * (attention_geom.c), for the kernel generators: q [lead..., Tq, d],
 * k [lead..., Tk, d], v [lead..., Tk, dv]; the leading axes (N first when
 * has_n) flattened into bh = n * lead (or lead) heads, each contiguous.
 * The bias element of head bh, query i, key j is at
 *     sum over leading axes a of idx_a(bh) * b_lead[a] + i * b_si + j * b_sj
 * (0 strides where the bias is broadcast), idx_a the head's index along
 * axis a (bh's mixed-radix digits over lead_dim, axis 0 the most
 * significant). */
typedef struct DnAttnGeom {
    int nlead;                     /* leading axes (rank - 2) */
    int64_t lead_dim[DN_MAX_RANK]; /* their sizes (DN_DIM_N for axis 0 when has_n) */
    int64_t lead;                  /* product of the static ones */
    bool has_n, causal, bias;
    int64_t Tq, Tk, d, dv;
    int64_t b_lead[DN_MAX_RANK], b_si, b_sj; /* bias strides, when 'bias' */
    double scale;
} DnAttnGeom;
DnAttnGeom dn_attention_geom(const DnOp *op);
/* Builds a shape from a list: dn_shape_make(3, (int64_t[]){DN_DIM_N, 10, 4}). */
DnShape dn_shape_make(int rank, const int64_t *dims);

/* ---- seq.c: the run-time sequence axis T (DN_DIM_SEQ) -------------------- */

bool dn_shape_has_seq(const DnShape *s);
/* The bound of the graph's sequence axis (its inputs'), 0 when it has none. */
int64_t dn_graph_seq_bound(const DnGraph *g);
bool dn_op_has_seq(const DnOp *op);      /* an operand or result has T */
int64_t dn_op_seq_bound(const DnOp *op); /* the bound of T in the op's values, 0 when none has T */
/* Whether ops of this kind may take a value with T at all (checked before
 * their shape rule runs, so rules of other kinds never see T). */
bool dn_op_kind_takes_seq(DnOpKind k);
typedef enum {
    DN_SEQ_NONE,        /* no value of the op has T */
    DN_SEQ_ROWS,        /* every (n, t) position alike: the kernel of dn_op_seq_rows, with n * t items */
    DN_SEQ_AWARE,       /* the kernel reads t (rnn_scan, rnn_scan_bwd, sequence_mask, matmul aᵀ·b over T) */
    DN_SEQ_UNSUPPORTED, /* *why says what is missing */
} DnSeqForm;
DnSeqForm dn_op_seq_form(const DnOp *op, const char **why);
/* Whether the operands and attributes of an op with T allow a supported
 * form, checked before its shape rule runs (a matmul whose result would put
 * T on another axis fails here, not in the rule); false sets *why. */
bool dn_op_seq_operands_ok(const DnOp *op, const char **why);
/* A copy of 'op' (in 'a') whose [N, T, ...] values are [N, ...], N standing
 * for n * t, with its axis and shape attributes renumbered to match.  The
 * copies keep their value ids, so plans and kernels address them as the
 * originals.  For DN_SEQ_ROWS ops. */
DnOp *dn_op_seq_rows(const DnOp *op, DnArena *a);

/* ---- autodiff.c --------------------------------------------------------- */

/* Reverse mode over 'g' from the scalar value 'loss'.  Appends backward ops
 * to 'g' (one gradient rule per op kind, in the op table's order of rules)
 * and returns, in grads[i], the gradient value of g->params[i] (NULL when
 * the parameter is not a trainable weight or does not influence the loss).
 * 'grads' has g->params.len entries, allocated by the caller. */
DnStatus dn_autodiff(DnCtx *cx, DnGraph *g, DnValue *loss, DnValue **grads);

#endif
