/* init.c -- state tensors at session creation: descriptor checks and the
 * initializers (zeros, ones, uniform(a, b), normal(mean a, std b)).
 *
 * dnrt_state_nonfinite finds a NaN or an infinity in the state (save and
 * a refused train_step use it).
 * Random initializers draw from the Philox stream of philox.h keyed by the
 * session seed with the tensor's index as stream, so a tensor's values
 * depend only on (seed, index, shape), not on thread count or on other
 * tensors.  Normal uses Box-Muller on word pairs (0,1) and (2,3) of each
 * block.  Integer tensors (counters) start at zero.
 */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "philox.h"

int64_t dnrt_state_nbytes(const dnrt_tensor_desc *t) { return dnrt_numel(t->rank, t->dim) * dnrt_dtype_size(t->dtype); }

/* By the bits, not isfinite, so no compiler flag can fold the test away. */
int32_t dnrt_state_nonfinite(const dnrt_model_desc *d, const uint8_t *state, int64_t *elem, float *value)
{
    for (int32_t i = 0; i < d->nstate; i++) {
        const dnrt_tensor_desc *t = &d->state[i];
        if (t->dtype != DNRT_F32) continue;
        const uint8_t *p = state + t->offset;
        int64_t n = dnrt_numel(t->rank, t->dim);
        for (int64_t k = 0; k < n; k++) {
            uint32_t u;
            memcpy(&u, p + 4 * k, 4);
            if ((u & 0x7f800000u) == 0x7f800000u) {
                *elem = k;
                memcpy(value, &u, 4);
                return i;
            }
        }
    }
    return -1;
}

int dnrt_check_state_desc(const dnrt_model_desc *d, int32_t index, dnrt_error *err)
{
    const dnrt_tensor_desc *t = &d->state[index];
    const char *name = t->name ? t->name : "?";
    if (!t->name) return dnrt_fail(err, DNRT_ERR_ARG, "create: state tensor %d has no name", index);
    if (dnrt_dtype_size(t->dtype) == 0 || t->rank < 0 || t->rank > 6)
        return dnrt_fail(err, DNRT_ERR_ARG, "create: state tensor '%s': bad dtype or rank", name);
    int64_t numel = dnrt_numel(t->rank, t->dim);
    if (numel < 0 || numel > INT64_MAX / 8)
        return dnrt_fail(err, DNRT_ERR_ARG, "create: state tensor '%s': shape is not static", name);
    if (t->offset < 0 || t->offset % DNRT_ALIGN || t->offset > d->state_bytes - numel * dnrt_dtype_size(t->dtype))
        return dnrt_fail(err, DNRT_ERR_ARG, "create: state tensor '%s': offset %lld outside the state block", name,
                         (long long)t->offset);
    if (t->init < DNRT_INIT_ZEROS || t->init > DNRT_INIT_NORMAL)
        return dnrt_fail(err, DNRT_ERR_ARG, "create: state tensor '%s': unknown initializer %d", name, t->init);
    if (t->init_zero_row < 0 || (t->init_zero_row > 0 && (t->rank < 1 || t->init_zero_row > t->dim[0])))
        return dnrt_fail(err, DNRT_ERR_ARG, "create: state tensor '%s': zeroed row %lld is outside axis 0", name,
                         (long long)t->init_zero_row - 1);
    return 0;
}

static void fill_uniform(float *x, int64_t n, float a, float b, uint64_t seed, uint32_t stream)
{
    uint32_t w[4];
    for (int64_t i = 0; i < n; i++) {
        if (i % 4 == 0) dnrt_philox_block(seed, stream, DNRT_PHILOX_INIT, (uint64_t)i / 4, w);
        float v = a + (b - a) * dnrt_u01(w[i % 4]);
        x[i] = v < b || a == b ? v : a; /* rounding can reach b; keep [a, b) */
    }
}

static void fill_normal(float *x, int64_t n, float mean, float std, uint64_t seed, uint32_t stream)
{
    uint32_t w[4];
    double z[4];
    for (int64_t i = 0; i < n; i++) {
        if (i % 4 == 0) {
            dnrt_philox_block(seed, stream, DNRT_PHILOX_INIT, (uint64_t)i / 4, w);
            for (int k = 0; k < 4; k += 2) {
                double u1 = ((w[k] >> 8) + 1.0) * (1.0 / 16777216.0); /* (0, 1] */
                double u2 = (w[k + 1] >> 8) * (1.0 / 16777216.0);
                double r = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
                z[k] = r * cos(th);
                z[k + 1] = r * sin(th);
            }
        }
        x[i] = (float)(mean + std * z[i % 4]);
    }
}

void dnrt_init_tensor(const dnrt_model_desc *d, int32_t index, uint8_t *state, uint64_t seed)
{
    const dnrt_tensor_desc *t = &d->state[index];
    uint8_t *p = state + t->offset;
    int64_t n = dnrt_numel(t->rank, t->dim);
    if (t->dtype != DNRT_F32 || t->init == DNRT_INIT_ZEROS) {
        memset(p, 0, (size_t)dnrt_state_nbytes(t));
        return;
    }
    float *x = (float *)p;
    if (t->init == DNRT_INIT_ONES)
        for (int64_t i = 0; i < n; i++) x[i] = 1.0f;
    else if (t->init == DNRT_INIT_UNIFORM)
        fill_uniform(x, n, t->init_a, t->init_b, seed, (uint32_t)index);
    else
        fill_normal(x, n, t->init_a, t->init_b, seed, (uint32_t)index);
    if (t->init_zero_row > 0) { /* checked by create: a row of axis 0 */
        int64_t row = n / t->dim[0];
        memset(x + (t->init_zero_row - 1) * row, 0, sizeof(float) * (size_t)row);
    }
}
