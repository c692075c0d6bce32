/* gradcheck.h -- the gradient-check harness the test_gradcheck*.c suites
 * share (Criterion assertions of the calling test).
 *
 * A case is a tiny .dnn whose loss passes through the op under test, with
 * raw `param`s in front of the op so operand gradients are covered too,
 * trained with sgd(momentum=0.9) at learning rate 0 (set_lr): after one
 * train_step, optim.<p>.momentum_buffer is exactly the analytic gradient
 * and the parameters are unchanged.  'loss' recomputes the loss in double
 * from the case's inputs and parameters; dn_gradcheck compares the library's
 * loss with it and every gradient with central differences of it
 * (|analytic - numeric| <= 1e-3 max|numeric| + 1e-5, and not all zero).
 */
#ifndef DN_GRADCHECK_H
#define DN_GRADCHECK_H

#include <stdint.h>

#define DN_GC_MAXP 4
#define DN_GC_MAXI 3

/* What a reference loss sees: inputs and parameters in double. */
typedef struct Gc {
    int64_t n;
    double *in[DN_GC_MAXI]; /* float inputs (NULL for the label) */
    int32_t *label;
    double *p[DN_GC_MAXP]; /* parameters, in the case's order */
    int64_t pnumel[DN_GC_MAXP];
} Gc;

typedef struct GcCase {
    const char *name, *src;
    int64_t n; /* batch size */
    int nin;
    int64_t in_item[DN_GC_MAXI]; /* elements per batch item; 0 = i32 label input (one per item),
                                    -T = i32 input of T per item (tokens [N, T]) */
    int nclasses;                /* label range */
    int np;
    const char *pname[DN_GC_MAXP]; /* trainable parameters checked */
    double (*loss)(const Gc *g);
} GcCase;

/* Compiles c->src, runs one train step on random inputs (labels in
 * [0, nclasses)) and checks every listed parameter's gradient. */
void dn_gradcheck(const GcCase *c);

#endif
