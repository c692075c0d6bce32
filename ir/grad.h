/* grad.h -- private interface between autodiff's driver (ir/autodiff.c:
 * which ops need gradients, accumulation, the reverse walk) and the
 * gradient rules (ir/grad_rules.c: one grad_<op> per op kind).
 *
 * A rule receives the forward op and the gradients of its results (NULL
 * where a result has none) and contributes the gradients of its operands
 * with dn_ad_acc, building backward ops with dn_ad_build.  It only builds
 * what dn_ad_needs says is needed.  Errors from dn_build poison the result
 * (NULL), which dn_ad_acc records in a->failed.
 */
#ifndef DN_GRAD_H
#define DN_GRAD_H

#include "ir.h"

typedef struct DnAd {
    DnCtx *cx;
    DnGraph *g;
    int nfwd;       /* values with id < nfwd are forward values */
    bool *needs;    /* [nfwd]: a trainable weight flows into the value */
    DnValue **grad; /* [nfwd]: accumulated gradient, NULL when none yet */
    DnLoc loc;      /* location of the op whose rule is running */
    bool failed;    /* a backward op could not be built */
} DnAd;

/* A gradient rule; 'dy' has op->nout entries. */
typedef void (*DnGradRule)(DnAd *a, const DnOp *op, DnValue *const *dy);

/* Indexed by DnOpKind; NULL for ops without a gradient (backward ops,
 * updates).  Built from ops.def in grad_rules.c. */
DN_INTERNAL extern const DnGradRule dn_grad_rules[DN_OP_COUNT];

/* True when 'v' needs a gradient (it depends on a trainable weight). */
DN_INTERNAL bool dn_ad_needs(const DnAd *a, const DnValue *v);
/* Adds 'd' to the gradient of 'v' (with an add op when one exists already);
 * ignores values that need none; 'd' NULL marks the walk failed. */
DN_INTERNAL void dn_ad_acc(DnAd *a, DnValue *v, DnValue *d);
/* dn_build1 at a->loc; returns NULL without building when an operand is
 * NULL (poisoned). */
DN_INTERNAL DnValue *dn_ad_build(DnAd *a, DnOpKind kind, int nin, DnValue **in, int nattrs, const DnAttr *attrs);
/* The "shape" attribute describing 's' (-1 for N); arrays in g's arena. */
DN_INTERNAL DnAttr dn_ad_shape_attr(DnAd *a, const char *name, const DnShape *s);

#endif
