/* seq_train.c -- see seq_train.h.  Stops as the Fashion-MNIST loop does:
 * at the first step the library refuses as non-finite and at the first
 * loss above --diverge times the mean of the run's first DIVERGE_BASE
 * steps, without saving again (--save keeps the last good epoch). */
#include "seq_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int seq_open_training(const Opts *o, Model *m)
{
    if (open_model(o->model, m)) return 1;
    if (!m->d->trains || !m->api->train_step)
        return runtime_error("%s: model '%s' was compiled without a train section: cannot train", o->model, m->d->name);
    if (check_save(o->save) || (o->resume && not_regular("--resume: ", o->resume)) || create_session(m, o)) return 1;
    dnrt_error err = {0};
    if (o->resume && m->api->load(m->s, o->resume, &err)) return runtime_error("--resume: %s", err.message);
    if (o->has_lr && m->api->set_learning_rate(m->s, o->lr, &err)) return runtime_error("--lr: %s", err.message);
    return 0;
}

static const char *loss_str(const SeqTask *t, double loss, char *buf, size_t len)
{
    if (t->bits)
        snprintf(buf, len, "%.4f (%.4f bits/char)", loss, loss / log(2.0));
    else
        snprintf(buf, len, "%.4f", loss);
    return buf;
}

static const char *kept(int64_t epoch, char *buf, size_t len)
{
    if (epoch > 1)
        snprintf(buf, len, "the weights saved after epoch %lld", (long long)epoch - 1);
    else
        snprintf(buf, len, "what it held before");
    return buf;
}

/* One epoch: returns 0, or 1 after the error. */
static int run_epoch(Model *m, const Opts *o, SeqTask *t, int64_t batch, int64_t epoch, uint64_t *rng, double *loss_sum,
                     double *base_sum, int64_t *base_n)
{
    int64_t steps = (t->examples + batch - 1) / batch, every = steps / 10 > 0 ? steps / 10 : 1;
    const void *in[64];
    char why[64], ls[64];
    for (int64_t step = 0; step < steps; step++) {
        int64_t first = step * batch, n = t->examples - first < batch ? t->examples - first : batch;
        t->fill(t->ctx, first, n, rng, in);
        dnrt_error err = {0};
        float loss = 0;
        if (m->api->train_step_seq(m->s, n, t->seq_t, in, &loss, &err)) {
            if (err.code == DNRT_ERR_NONFINITE)
                return runtime_error("epoch %lld, step %lld of %lld went non-finite: %s; training stopped, --save %s "
                                     "not written (it keeps %s)",
                                     (long long)epoch, (long long)step + 1, (long long)steps, err.message, o->save,
                                     kept(epoch, why, sizeof why));
            return runtime_error("train_step (epoch %lld, step %lld): %s", (long long)epoch, (long long)step + 1,
                                 err.message);
        }
        double ref = *base_n ? *base_sum / *base_n : 0;
        if (o->diverge > 0 && ref > 0 && loss > o->diverge * ref)
            return runtime_error("epoch %lld, step %lld of %lld: the loss %g is more than %g times the mean loss %g of "
                                 "the run's first %lld steps: training diverged (--diverge); stopped, --save %s not "
                                 "written (it keeps %s)",
                                 (long long)epoch, (long long)step + 1, (long long)steps, (double)loss, o->diverge, ref,
                                 (long long)*base_n, o->save, kept(epoch, why, sizeof why));
        if (*base_n < DIVERGE_BASE) *base_sum += loss, ++*base_n;
        *loss_sum += loss;
        if ((step + 1) % every == 0 || step + 1 == steps)
            printf("epoch %lld/%lld  step %lld/%lld  loss %s\n", (long long)epoch, (long long)o->epochs,
                   (long long)step + 1, (long long)steps, loss_str(t, *loss_sum / (step + 1), ls, sizeof ls));
    }
    return 0;
}

int seq_train(Model *m, const Opts *o, SeqTask *t, int64_t batch)
{
    if (m->d->ninputs > 64) return runtime_error("%s: more than 64 inputs", o->model);
    char summary[512], ls[64];
    printf("training %s on %lld %s per epoch, batch %lld, %lld epoch(s), lr %g\n", m->d->name, (long long)t->examples,
           t->unit, (long long)batch, (long long)o->epochs, m->api->get_lr ? m->api->get_lr(m->s) : m->d->lr);
    if (t->evaluate(t->ctx, m, summary, sizeof summary)) return 1;
    printf("before training: %s\n", summary);
    fflush(stdout);
    uint64_t rng = o->seed ^ 0x5DEECE66Dull;
    double base_sum = 0;
    int64_t base_n = 0, steps = (t->examples + batch - 1) / batch;
    for (int64_t epoch = 1; epoch <= o->epochs; epoch++) {
        double t0 = now_s(), loss_sum = 0;
        if (t->begin_epoch) t->begin_epoch(t->ctx, &rng);
        if (run_epoch(m, o, t, batch, epoch, &rng, &loss_sum, &base_sum, &base_n)) return 1;
        double secs = now_s() - t0;
        if (t->evaluate(t->ctx, m, summary, sizeof summary)) return 1;
        printf("epoch %lld/%lld done: train time %.2f s (%.0f %s/s), train loss %s, %s\n", (long long)epoch,
               (long long)o->epochs, secs, secs > 0 ? t->examples / secs : 0.0, t->unit,
               loss_str(t, loss_sum / steps, ls, sizeof ls), summary);
        fflush(stdout);
        if (save_weights(m, o->save)) return 1;
        printf("saved %s\n", o->save);
    }
    return 0;
}
