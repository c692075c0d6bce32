/* dnnrun.h -- what the files of dnnrun share (tools/dnnrun.c is the driver):
 * the options, an opened library, errors and the seeded random stream.
 * Each data source or command beyond Fashion-MNIST lives in its own file:
 * data_text.c (text:FILES), data_pairs.c (pairs:FILE), seq_train.c (the
 * training loop of both), generate.c (the generate command). */
#ifndef DNNRUN_H
#define DNNRUN_H

#include <stdint.h>
#include <stdio.h>

#include "dnrt.h"

#define DIVERGE_FACTOR 1e4 /* default --diverge */
#define DIVERGE_BASE   10  /* steps whose mean loss divergence is measured against */

typedef enum DataKind { DATA_FASHION = 0, DATA_TEXT = 1, DATA_PAIRS = 2 } DataKind;

typedef struct Opts {
    const char *cmd, *model;
    int data;             /* DataKind */
    const char *data_dir; /* fashion-mnist */
    const char *files;    /* text: the comma-separated files; pairs: the training file */
    const char *test;     /* pairs: --test FILE */
    int64_t epochs, batch, limit, count, acc_every, threads;
    int64_t seq_len; /* --seq-len: the sequence length t of a model with T<=bound (0: the bound) */
    uint64_t seed;
    float lr;
    double diverge;
    int has_lr, standardize;
    const char *save, *resume, *weights;
    /* generate */
    const char *prompt;
    int64_t length, top_k;
    double temperature;
    int greedy;
} Opts;

typedef struct Model {
    void *handle;
    const dnrt_model_desc *d;
    const dnrt_api *api;
    dnrt_session *s;
    int64_t classes;
} Model;

/* "dnnrun: error: ..." on stderr; returns 1. */
int runtime_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
double now_s(void);
/* splitmix64: every random stream of dnnrun (shuffles, windows, sampling). */
uint64_t next_random(uint64_t *state);
/* A double uniform in [0, 1) from the stream. */
double next_uniform(uint64_t *state);

/* Fails, naming 'path' after 'what', when it exists but is not a regular file. */
int not_regular(const char *what, const char *path);
/* Fails unless a file can be created beside --save 'path'. */
int check_save(const char *path);
int open_model(const char *path, Model *m);
int create_session(Model *m, const Opts *o);
/* After open_model: create_session and load --weights, each failure named. */
int load_weights(const Opts *o, Model *m);
void close_model(Model *m);
int save_weights(Model *m, const char *path);
void print_shape(FILE *f, const dnrt_tensor_desc *t);
/* The shape as print_shape writes it, into 'buf'. */
const char *shape_str(const dnrt_tensor_desc *t, char *buf, size_t len);
int shape_is(const dnrt_tensor_desc *t, int32_t dtype, int rank, const int64_t *dims);
/* Elements of 't' at batch 'n' (dim -1 counts as n). */
int64_t tensor_numel(const dnrt_tensor_desc *t, int64_t n);

#endif
