/* seq_train.h -- dnnrun's training loop for the sequence data sources
 * (text:, pairs:): a task fills batches and evaluates; the loop steps,
 * reports, stops on a non-finite or diverged step and saves each epoch. */
#ifndef DN_SEQ_TRAIN_H
#define DN_SEQ_TRAIN_H

#include "dnnrun.h"

typedef struct SeqTask {
    void *ctx;
    const char *unit; /* what an example is, plural: "windows", "pairs" */
    int bits;         /* 1: losses are per byte, reported also as bits per character (loss / ln 2) */
    int64_t examples; /* per epoch */
    int64_t seq_t;    /* the sequence length train steps run at (0: the model's own, see dnrt.h) */
    /* Before each epoch (a shuffle, or nothing); 'rng' is the run's stream. */
    void (*begin_epoch)(void *ctx, uint64_t *rng);
    /* Fills the batch buffers (all inputs, descriptor order) with examples
     * [first, first + n) of the epoch; may draw from 'rng'. */
    void (*fill)(void *ctx, int64_t first, int64_t n, uint64_t *rng, const void **inputs);
    /* Evaluates the model on the held-out data into 'summary' ("held-out
     * loss ..."); returns 0, or 1 after printing the error. */
    int (*evaluate)(void *ctx, Model *m, char *summary, size_t len);
} SeqTask;

/* Opens o->model for training: a train section, a writable --save, the
 * session, --resume and --lr.  Returns 0 or 1 (error printed). */
int seq_open_training(const Opts *o, Model *m);
/* Evaluates once before training, then runs o->epochs epochs of
 * ceil(examples / batch) steps, evaluating and saving after each. */
int seq_train(Model *m, const Opts *o, SeqTask *t, int64_t batch);

#endif
