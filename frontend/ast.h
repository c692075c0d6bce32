/* ast.h -- the frontend's private types: tokens, the AST, and the banner
 * sections of the files that share them.
 *
 * lex.c turns a source text into a token array (with NEWLINE tokens that
 * end statements); parse.c builds the AST below in an arena; ast_print.c
 * dumps it for --emit=ast; lower.c, layers.c and train.c walk it and build
 * the graph.  Everything lives in the arena passed to dn_parse.
 */
#ifndef DN_FRONTEND_AST_H
#define DN_FRONTEND_AST_H

#include "frontend.h"

/* ---- tokens (lex.c) ------------------------------------------------------ */

/* ORDER TOK: keep in sync with tok_names[] in lex.c */
typedef enum {
    TOK_EOF,
    TOK_NEWLINE,
    TOK_IDENT,
    TOK_INT,
    TOK_FLOAT,
    TOK_STRING,
    /* keywords */
    TOK_MODEL,
    TOK_BLOCK,
    TOK_TRAIN,
    TOK_RETURN,
    TOK_REPEAT,
    TOK_AS,
    TOK_IF,
    TOK_ELSE,
    TOK_PARAM,
    TOK_AND,
    TOK_OR,
    TOK_NOT,
    TOK_TRUE,
    TOK_FALSE,
    /* punctuation */
    TOK_LPAREN,
    TOK_RPAREN,
    TOK_LBRACKET,
    TOK_RBRACKET,
    TOK_LBRACE,
    TOK_RBRACE,
    TOK_COMMA,
    TOK_COLON,
    TOK_DOT,
    TOK_ASSIGN,
    TOK_ARROW,
    TOK_PIPE,
    TOK_QUESTION,
    TOK_PLUS,
    TOK_MINUS,
    TOK_STAR,
    TOK_SLASH,
    TOK_AT,
    TOK_EQ,
    TOK_NE,
    TOK_LT,
    TOK_LE,
    TOK_GT,
    TOK_GE,
    TOK_COUNT
} TokKind;

typedef struct Token {
    TokKind kind;
    int len; /* of 'text' */
    DnLoc loc;
    const char *text; /* points into the source; 'len' bytes */
    union {
        int64_t ival;    /* TOK_INT */
        double fval;     /* TOK_FLOAT */
        const char *str; /* TOK_STRING: unescaped, in the arena */
    };
} Token;

typedef DN_VEC(Token) TokenVec;

/* Tokenizes 'text' into 'out' (always ending with TOK_EOF), the token array
 * and string contents allocated in 'a'.  Lexical errors are reported
 * through 'cx' and the offending bytes skipped.  NEWLINE tokens are emitted
 * at the end of each non-empty logical line, except inside ( ) and [ ],
 * after '|>', and before a line starting with '|>'. */
void dn_lex(DnCtx *cx, const char *file, const char *text, DnArena *a, TokenVec *out);
/* dn_lex over the 'len' bytes at 'text' (text[len] is NUL): a NUL byte
 * among them is an error ("NUL byte in source") and is skipped.  String
 * contents go to 'a'; the token array is malloc'd: free(out->data) when
 * done with it ('out' starts empty). */
void dn_lex_n(DnCtx *cx, const char *file, const char *text, size_t len, DnArena *a, TokenVec *out);
/* Incremental dn_lex_n, so the parser holds only the tokens of the
 * statement it reads: a lexer (in 'a') that appends to 'out' as asked. */
typedef struct Lexer Lexer;
Lexer *dn_lexer_new(DnCtx *cx, const char *file, const char *text, size_t len, DnArena *a, TokenVec *out);
/* Appends tokens up to a NEWLINE (sometimes one more, the '}' after it),
 * or through the final EOF; returns false, appending nothing, after EOF.
 * 'out' may be compacted in between (tokens dropped from its front). */
bool dn_lexer_more(Lexer *lx);
/* "'('", "identifier 'foo'", "newline", "end of file": for messages. */
const char *dn_tok_describe(const Token *t, char *buf, size_t len);
/* The fixed spelling of a keyword or punctuation kind ("|>", "model"). */
const char *dn_tok_spelling(TokKind k);

/* ---- AST (parse.c) -------------------------------------------------------- */

typedef enum {
    EXPR_INT,     /* 'i' */
    EXPR_FLOAT,   /* 'f' */
    EXPR_STR,     /* 's' */
    EXPR_BOOL,    /* 'i' is 0 or 1 */
    EXPR_NAME,    /* 's' */
    EXPR_CALL,    /* 's' callee, 'args', 'label' (may be NULL), 'parens' */
    EXPR_BINARY,  /* 'op', 'a', 'b' */
    EXPR_UNARY,   /* 'op' (TOK_MINUS or TOK_NOT), 'a' */
    EXPR_TERNARY, /* 'a' ? 'b' : 'c' */
    EXPR_INDEX,   /* 'a'[args...] (each arg value an expression or EXPR_SLICE) */
    EXPR_SLICE,   /* 'a':'b' or 'a':'b':'c' (start:stop:step) inside an index; each may be NULL */
    EXPR_LIST,    /* [args...] */
    EXPR_REPEAT,  /* repeat 'a' [as 's'] 'body'; 'label' may be set */
} ExprKind;

typedef struct AstExpr AstExpr;
typedef struct AstStmt AstStmt;
typedef DN_VEC(AstStmt *) AstBody;

typedef struct AstArg {
    const char *name; /* keyword argument's name; NULL when positional */
    AstExpr *value;
    DnLoc loc;
} AstArg;

struct AstExpr {
    ExprKind kind;
    TokKind op;
    DnLoc loc;
    union {
        int64_t i; /* INT, BOOL */
        double f;  /* FLOAT */
    };
    const char *s;
    AstExpr *a, *b, *c;
    DN_VEC(AstArg) args;
    const char *label; /* CALL/REPEAT: "conv1" or "downsample.0"; NULL if unlabelled */
    DnLoc label_loc;
    AstBody body; /* REPEAT */
    bool parens;  /* CALL: written with an argument list */
};

typedef struct AstType {
    DnDType dtype;
    DnShape shape; /* dim[0] may be DN_DIM_N, dim[1] DN_DIM_SEQ(bound) or DN_DIM_SEQ_REF */
    DnLoc loc;
} AstType;
/* A bare T in a type: the model's sequence axis, whose bound an input
 * declares (T<=bound); lowering replaces it with DN_DIM_SEQ(bound). */
#define DN_DIM_SEQ_REF INT64_MIN

typedef enum {
    STMT_ASSIGN,  /* 'name' = 'e' */
    STMT_EXPR,    /* 'e' */
    STMT_RETURN,  /* return 'e' */
    STMT_IF,      /* if 'e' 'then' else 'els' ('has_else') */
    STMT_PARAM,   /* param 'name': 'type' [= 'e'] */
    STMT_INPUT,   /* train: 'name': 'type' */
    STMT_FREEZE,  /* train: freeze 'names' */
    STMT_AUGMENT, /* train: augment 'name': 'e' */
} StmtKind;

struct AstStmt {
    StmtKind kind;
    DnLoc loc;
    const char *name;
    DnLoc name_loc;
    AstExpr *e;
    union {            /* by 'kind' */
        AstType *type; /* PARAM, INPUT */
        struct {       /* IF */
            AstBody then, els;
            bool has_else;
        };
        struct { /* FREEZE */
            DN_VEC(const char *) names;
            DN_VEC(DnLoc) name_locs;
        };
    };
};

/* A model input/output, or a block parameter. */
typedef struct AstParam {
    const char *name;
    DnLoc loc;
    bool has_type;  /* model: always; block: hyper-parameter when true */
    AstType type;   /* model inputs/outputs */
    const char *hp; /* block hyper-parameter type: "int" "float" "bool" "str" */
    AstExpr *def;   /* block default; may be NULL */
} AstParam;

typedef enum { DECL_MODEL, DECL_BLOCK, DECL_TRAIN } DeclKind;
typedef DN_VEC(AstParam) AstParamVec;

typedef struct AstDecl {
    DeclKind kind;
    const char *name;
    DnLoc loc;           /* of the name */
    AstParamVec params;  /* model inputs; block parameters */
    AstParamVec outputs; /* model only */
    AstBody body;
} AstDecl;

struct DnAst {
    const char *file;
    DN_VEC(AstDecl *) decls;
    DnArena *arena;
    int64_t nodes; /* expressions and statements: one pass of lowering is about this much work */
};

/* ---- lower.c / layers.c / train.c: shared lowering state ----------------- */

typedef enum { VAL_POISON, VAL_NONE, VAL_INT, VAL_FLOAT, VAL_BOOL, VAL_STR, VAL_TENSOR, VAL_LIST } ValKind;

/* A value during lowering: a compile-time constant or a graph tensor.
 * VAL_POISON means "an error was already reported": consumers propagate it
 * without further messages. */
typedef struct Val {
    ValKind kind;
    int64_t i;     /* INT, BOOL */
    double f;      /* FLOAT */
    const char *s; /* STR */
    DnValue *t;    /* TENSOR */
    int n;         /* LIST: 'n' elements in 'items' */
    struct Val *items;
} Val;

/* ---- names.c: a string-keyed hash map in an arena ----------------------- */

/* Zero-initialized is empty.  Keys are not copied (they must live as long
 * as the map); values are never NULL. */
typedef struct NameMap {
    const char **keys;
    void **vals;
    int cap, len;
} NameMap;

/* The value stored under 'key', or NULL. */
void *dn_namemap_get(const NameMap *m, const char *key);
/* Stores 'val' under 'key', replacing any earlier value; tables live in 'a'. */
void dn_namemap_put(DnArena *a, NameMap *m, const char *key, void *val);

/* ---- lower.c / layers.c / train.c: shared lowering state (cont.) --------- */

typedef struct Binding {
    const char *name;
    Val v;
} Binding;

typedef struct Scope {
    NameMap vars;         /* name -> Binding */
    struct Scope *parent; /* NULL at block/model top: blocks do not see callers */
} Scope;

/* Automatic-name counters: per (prefix, layer kind). */
typedef struct Counter {
    int n;
} Counter;

typedef struct Lower {
    DnCtx *cx;
    const DnAst *ast;
    DnGraph *g;
    DnArena *a;                    /* scratch: the AST's arena */
    const char *prefix;            /* current label prefix, "" or "layer1.0." */
    NameMap counters;              /* "prefix|kind" -> Counter */
    NameMap labels;                /* full label paths used so far (value: the path) */
    NameMap blocks;                /* block name -> its first AstDecl */
    NameMap params;                /* parameter name -> DnParam, mirroring L->g */
    DN_VEC(const AstDecl *) stack; /* blocks being inlined (recursion check) */
    int next_salt;                 /* dropout salts count from 1 */
    int64_t work;                  /* block calls + repeat iterations so far (budget) */
    int64_t steps;                 /* statements and expressions lowered so far (budget) */
    bool over_budget;              /* the budget error was reported */
    size_t str_bytes;              /* made by string concatenation so far (limit) */
    int depth;                     /* expressions and bodies being lowered (limit) */
    bool too_deep;                 /* the depth error was reported */
    DN_VEC(const AstExpr *) chain; /* links of chains being evaluated (dn_lower_expr) */
    bool in_train;                 /* lowering the train section's loss */
    int64_t seq_bound;             /* the model's T<=bound, 0 when no input has T */
} Lower;

/* lower.c */
/* 'ty' with a bare T replaced by the model's DN_DIM_SEQ(L->seq_bound);
 * false (reported at 'loc', naming 'name') when the model has no bound for
 * it or 'ty' declares another one. */
bool dn_lower_seq_type(Lower *L, const AstType *ty, DnLoc loc, const char *name, DnShape *out);
Val dn_lower_expr(Lower *L, Scope *sc, const AstExpr *e);
/* False (reported once) when the graph has more ops than lowering allows;
 * called as ops are built, so nothing goes on building past it. */
bool dn_lower_op_budget(Lower *L, DnLoc loc);
/* Poison constructor and printable kind name ("int", "tensor"). */
Val dn_val_poison(void);
const char *dn_val_kind_name(ValKind k);
/* Looks 'name' up through 'sc' and its parents; NULL when unbound. */
Binding *dn_scope_find(Scope *sc, const char *name);
void dn_scope_set(Lower *L, Scope *sc, const char *name, Val v);
/* The parameter of L->g named 'name', or NULL (a hash lookup). */
DnParam *dn_lower_find_param(Lower *L, const char *name);
/* dn_graph_add_param on L->g, recorded for dn_lower_find_param. */
DnParam *dn_lower_add_param(Lower *L, const char *name, DnParamKind kind, DnDType t, const DnShape *s, DnInit init,
                            DnLoc loc);
/* Registers label path 'full' (without trailing '.'); reports a duplicate. */
bool dn_lower_use_label(Lower *L, const char *full, DnLoc loc);
/* False (with a diagnostic at 'loc' naming 'name') when a tensor of this type
 * would exceed DN_MAX_TENSOR_BYTES. */
bool dn_lower_check_size(Lower *L, DnDType t, const DnShape *s, DnLoc loc, const char *name);

/* index.c: x[...] on a tensor (slice ops, then a reshape for int indices) or a list. */
Val dn_lower_index(Lower *L, Scope *sc, const AstExpr *e);
/* y = x[start:stop:step] on 'axis' (x itself when that is all of it); NULL after an error. */
DnValue *dn_lower_slice(Lower *L, DnValue *x, int axis, int64_t start, int64_t stop, int64_t step, DnLoc loc);

/* layers.c: the layer table. */
typedef struct LayerInfo LayerInfo;
/* Returns the layer named 'name', or NULL. */
const LayerInfo *dn_layer_find(const char *name);
/* True when 'name' is an operator of the language that has no lowering yet. */
bool dn_layer_unsupported(const char *name);
/* A trainable f32 parameter '<layer>.<leaf>' of shape 'dims' (a diagnostic
 * and NULL for a duplicate name or an invalid shape). */
DnValue *dn_layer_param(Lower *L, const char *layer, const char *leaf, int rank, const int64_t *dims, DnInit init,
                        DnLoc loc);
/* rnn, lstm and gru (layers_rnn.c): the output sequence, or with
 * return_state a list [output, h_n] (lstm: [output, h_n, c_n]). */
Val dn_build_rnn(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a);
/* Lowers call 'e' to layer 'li' with evaluated positional 'pos' (tensors
 * first) and the call's keyword arguments evaluated in 'sc'.  'pos' has
 * room for npos + 1 entries: a layer whose schema gathers the trailing
 * positionals into one list (reshape's dims) writes it after the tensors,
 * which is pos[npos] when there are none. */
Val dn_layer_call(Lower *L, Scope *sc, const LayerInfo *li, const AstExpr *e, Val *pos, int npos);
/* The same call when an operand is poisoned (an error was reported where it
 * was made): checks what can be checked without it (the arguments, the
 * label) and returns a poison, so one run reports every such error. */
Val dn_layer_check(Lower *L, Scope *sc, const LayerInfo *li, const AstExpr *e, Val *pos, int npos);
/* PyTorch's default initializer of Linear and Conv weights: U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
DnInit dn_layer_kaiming(double fan_in);
/* layers_attention.c: the builder of attention(query, keys, ...) (its
 * contract there); the context tensor, or the list [context, weights] with
 * return_weights=true; a poison after an error. */
Val dn_build_attention(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a);
/* scaled_dot_product_attention (layers_sdpa.c): the output [..., Tq, dv];
 * dn_lower_sdpa is its lowering for other layers (mask: f32, 1 = take part,
 * broadcast to the scores; NULL for none; errors named after e->s). */
DnValue *dn_build_sdpa(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a);
DnValue *dn_lower_sdpa(Lower *L, const AstExpr *e, DnValue *q, DnValue *k, DnValue *v, DnValue *mask, bool causal,
                       double p, double scale);
/* multihead_attention (layers_mha.c): nn.MultiheadAttention(batch_first=True)'s output. */
DnValue *dn_build_mha(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a);
/* The same layer named 'name' as a decoding step over a KV cache of S rows
 * (layers_mha.c): x [B, 1, E], pos i32 [B, 1]; NULL after a diagnostic. */
DnValue *dn_lower_cached_mha(Lower *L, const AstExpr *e, const char *name, DnValue *x, int64_t H, int64_t S,
                             DnValue *pos);
/* transformer_encoder_layer (layers_encoder.c): nn.TransformerEncoderLayer(batch_first=True)'s output. */
DnValue *dn_build_encoder_layer(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a);
/* transformer_decoder_layer (layers_encoder.c): nn.TransformerDecoderLayer(batch_first=True)'s output. */
DnValue *dn_build_decoder_layer(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a);
/* One transformer layer as layers_encoder.c builds it, for every layer made
 * of them (transformer_*_layer, transformer, vit_*): its sizes, dropouts,
 * activation, norm placement, masks and the leaf names of its parts. */
enum { TF_NORM1, TF_SELF_ATTN, TF_NORM2, TF_LINEAR1, TF_LINEAR2, TF_CROSS_ATTN, TF_NORM3, TF_NPARTS };
typedef struct DnTfLayer {
    int64_t d, heads, ff; /* d_model, heads, the feed-forward width */
    double p, p_attn;     /* dropout after each block and inside ff; on the attention weights */
    double eps;           /* of every layernorm */
    const char *act;      /* "relu" or "gelu" (exact) */
    bool norm_first;
    bool vit_init;               /* linear weights xavier-uniform and biases N(0, 1e-6) (torchvision's MLPBlock) */
    const char *leaf[TF_NPARTS]; /* TF_CROSS_ATTN and TF_NORM3: decoder only */
    Val kpm, am, causal;         /* the self-attention's key_padding_mask, attn_mask, is_causal (VAL_NONE/false) */
    Val mem_kpm, mem_am;         /* decoder: the cross-attention's */
    int64_t cache;               /* > 0: a decoding step, the self-attention over a KV cache of this many rows */
    DnValue *pos;                /* with cache: the step's positions, i32 [B, 1] */
} DnTfLayer;
/* The layer named 'name' on x [N, T, d] (decoder: and memory [N, S, d]);
 * NULL after a diagnostic naming e->s. */
DnValue *dn_tf_encoder_layer(Lower *L, const AstExpr *e, const char *name, DnValue *x, const DnTfLayer *s);
DnValue *dn_tf_decoder_layer(Lower *L, const AstExpr *e, const char *name, DnValue *x, DnValue *mem,
                             const DnTfLayer *s);
/* A layer with PyTorch's part names (norm1, self_attn, ..., norm3), the
 * attention's dropout the blocks' own, no masks, no cache. */
DnTfLayer dn_tf_torch_layer(int64_t d, int64_t heads, int64_t ff, double p, const char *act, double eps,
                            bool norm_first);
/* nn.LayerNorm(d, eps) over x's last axis, its parameters <name>.<leaf>.{weight, bias}. */
DnValue *dn_tf_norm(Lower *L, const AstExpr *e, const char *name, const char *leaf, DnValue *x, double eps);
/* transformer (nn.Transformer), transformer_encoder (nn.TransformerEncoder)
 * and vit_encoder_block, vit_encoder
 * (torchvision's EncoderBlock and Encoder): layers_transformer.c. */
DnValue *dn_build_transformer(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a);
DnValue *dn_build_transformer_encoder(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a);
DnValue *dn_build_vit_block(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a);
DnValue *dn_build_vit_encoder(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a);

/* Binding of call arguments to a schema "name:kind[=default] ..." (kinds
 * int float bool str ints, tensor (default none: absent, a VAL_NONE), and
 * ints* for the rest of the positionals as one list).  Fills out[i] per
 * schema entry from positional 'pos' and the call's keywords (evaluated in
 * 'sc'); reports missing/unknown/duplicate/ill-typed ones as "WHAT: ..."
 * and returns false. */
bool dn_bind_args(Lower *L, Scope *sc, const char *what, const char *schema, const AstExpr *call, const Val *pos,
                  int npos, Val *out, int nout);
/* dn_bind_args where a schema entry may also be a bare name: attribute
 * 'name' of op 'op', with the kind and default its schema gives in ops.def
 * (so "kernel stride pad" of maxpool2d reads kernel:ints
 * stride:ints=kernel pad:ints=0; =NAME takes the value bound to argument
 * NAME, listed earlier). */
bool dn_bind_op_args(Lower *L, Scope *sc, const char *what, DnOpKind op, const char *schema, const AstExpr *call,
                     const Val *pos, int npos, Val *out, int nout);

/* train.c */
/* Lowers train section 'td' for the model just lowered into L->g, whose
 * output bindings are in 'outs'.  Reports errors; returns false on any. */
bool dn_lower_train(Lower *L, const AstDecl *model, const AstDecl *td, Scope *outs);

#endif
