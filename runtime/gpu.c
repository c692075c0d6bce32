/* gpu.c -- the GPU side of a session (device.h): the device's copy of the
 * state, the arena and the staged inputs and outputs, the launch function
 * generated GPU entries call, and the state's round trips to the host.
 *
 * The session keeps its host state block (load, save, dnrt_session_state,
 * the non-finite checks all work on it) and the device keeps the copy the
 * kernels use; two flags say which is newer, and each side is refreshed
 * only when it is read: a training loop on the device copies nothing
 * until save.  Input and output staging buffers grow like the arena and
 * are reused across calls.
 */
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "internal.h"

static const dnrt_device_ops *ops_for(int32_t api)
{
    return api == DNRT_GPU_CUDA ? &dnrt_device_cuda : api == DNRT_GPU_OPENCL ? &dnrt_device_opencl : NULL;
}

int dnrt_gpu_open(dnrt_session *s, const dnrt_options *opt, dnrt_error *err)
{
    const dnrt_model_desc *d = s->d;
    const dnrt_device_ops *ops = ops_for(d->gpu->api);
    if (!ops) return dnrt_fail(err, DNRT_ERR_ARG, "create: model '%s' names unknown GPU API %d", d->name, d->gpu->api);
    struct dnrt_device *dev = dnrt_malloc(sizeof *dev);
    int32_t nio = d->ninputs + (d->noutputs > 1 ? d->noutputs : 1);
    uint64_t *bufs = dnrt_malloc(sizeof(uint64_t) * 2 * (size_t)nio);
    size_t *sizes = dnrt_malloc(sizeof(size_t) * 2 * (size_t)nio);
    if (!dev || !bufs || !sizes) {
        dnrt_free(dev), dnrt_free(bufs), dnrt_free(sizes);
        return dnrt_fail(err, DNRT_ERR_NOMEM, "create: out of memory");
    }
    memset(bufs, 0, sizeof(uint64_t) * 2 * (size_t)nio);
    memset(sizes, 0, sizeof(size_t) * 2 * (size_t)nio);
    *dev = (struct dnrt_device){.ops = ops, .d = d, .device_io = opt ? opt->device_io : 0};
    dev->in = bufs, dev->out = bufs + d->ninputs;
    dev->in_bytes = sizes, dev->out_bytes = sizes + d->ninputs;
    s->dev = dev;
    dnrt_error e = {0};
    if (ops->open(d->gpu, &dev->impl, &e)) {
        dnrt_fail(err, e.code ? e.code : DNRT_ERR_DEVICE, "create: model '%s' was built for %s: %s", d->name, ops->name,
                  e.message);
        return -1;
    }
    size_t sb = d->state_bytes > 0 ? (size_t)d->state_bytes : 64;
    if (ops->alloc(dev->impl, sb, &dev->state, err) ||
        (d->state_bytes > 0 && ops->write(dev->impl, dev->state, 0, s->state, (size_t)d->state_bytes, err)))
        return -1;
    return 0;
}

void dnrt_gpu_close(dnrt_session *s)
{
    struct dnrt_device *dev = s->dev;
    if (!dev) return;
    if (dev->impl) {
        int32_t nio = s->d->ninputs + (s->d->noutputs > 1 ? s->d->noutputs : 1);
        for (int32_t i = 0; i < nio; i++) dev->ops->free(dev->impl, dev->in[i]);
        dev->ops->free(dev->impl, dev->arena);
        dev->ops->free(dev->impl, dev->state);
        dev->ops->close(dev->impl);
    }
    dnrt_free(dev->in);
    dnrt_free(dev->in_bytes);
    dnrt_free(dev);
    s->dev = NULL;
}

/* Makes *buf hold at least 'need' bytes (64 at least), zeroed when new as
 * the CPU's arena is (so a kernel's stray read is at least repeatable); 0 or -1. */
static int reserve(struct dnrt_device *dev, uint64_t *buf, size_t *cap, size_t need, dnrt_error *err)
{
    if (need < 64) need = 64;
    if (*buf && *cap >= need) return 0;
    uint64_t nb;
    if (dev->ops->alloc(dev->impl, need, &nb, err)) return -1;
    if (dev->ops->zero(dev->impl, nb, 0, need, err)) {
        dev->ops->free(dev->impl, nb);
        return -1;
    }
    dev->ops->free(dev->impl, *buf);
    *buf = nb, *cap = need;
    return 0;
}

/* Bytes of tensor 'd' at batch size n and sequence length t (its dims are
 * checked by create, n and t by the caller). */
static size_t tensor_bytes(const dnrt_tensor_desc *d, int64_t n, int64_t t)
{
    return (size_t)dnrt_tensor_count(d, n, t) * (size_t)dnrt_dtype_size(d->dtype);
}

int32_t dnrt_gpu_run(dnrt_session *s, dnrt_entry_fn entry, int64_t n, int64_t t, const void *const *inputs,
                     const dnrt_tensor_desc *in_desc, int32_t ninputs, void *const *outputs,
                     const dnrt_tensor_desc *out_desc, int32_t noutputs, int host_outputs, int64_t arena_bytes,
                     dnrt_error *err)
{
    struct dnrt_device *dev = s->dev;
    const dnrt_device_ops *ops = dev->ops;
    if (dev->dev_stale) {
        if (ops->write(dev->impl, dev->state, 0, s->state, (size_t)s->d->state_bytes, err)) return -1;
        dev->dev_stale = 0;
    }
    if (reserve(dev, &dev->arena, &dev->arena_bytes, (size_t)arena_bytes, err)) return -1;
    uint64_t cur_in[64], cur_out[64];
    uint64_t *ci = ninputs <= 64 ? cur_in : dnrt_malloc(sizeof(uint64_t) * (size_t)ninputs);
    uint64_t *co = noutputs <= 64 ? cur_out : dnrt_malloc(sizeof(uint64_t) * (size_t)noutputs);
    int32_t code = -1;
    if (!ci || !co) {
        dnrt_fail(err, DNRT_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int32_t i = 0; i < ninputs; i++) {
        size_t nb = tensor_bytes(&in_desc[i], n, t);
        if (dev->device_io) {
            ci[i] = (uint64_t)(uintptr_t)inputs[i];
            continue;
        }
        if (reserve(dev, &dev->in[i], &dev->in_bytes[i], nb, err) ||
            ops->write(dev->impl, dev->in[i], 0, inputs[i], nb, err))
            goto done;
        ci[i] = dev->in[i];
    }
    for (int32_t i = 0; i < noutputs; i++) {
        size_t nb = tensor_bytes(&out_desc[i], n, t);
        if (dev->device_io && !host_outputs)
            co[i] = (uint64_t)(uintptr_t)outputs[i];
        else if (reserve(dev, &dev->out[i], &dev->out_bytes[i], nb, err))
            goto done;
        else
            co[i] = dev->out[i];
    }
    dev->cur_in = ci, dev->cur_out = co;
    dev->fail.code = 0;
    dnrt_call c = {.n = n, .t = t, .step = s->step, .seed = s->seed, .lr = s->lr, .dev = dev};
    code = entry(&c);
    dev->cur_in = dev->cur_out = NULL;
    if (code < 0 || dev->fail.code) {
        dnrt_fail(err, dev->fail.code ? dev->fail.code : DNRT_ERR_DEVICE, "%s",
                  dev->fail.code ? dev->fail.message : "the device failed");
        code = -1;
        goto done;
    }
    if (ops->sync(dev->impl, err)) {
        code = -1;
        goto done;
    }
    if (!dev->device_io || host_outputs)
        for (int32_t i = 0; i < noutputs; i++)
            if (ops->read(dev->impl, co[i], 0, outputs[i], tensor_bytes(&out_desc[i], n, t), err)) {
                code = -1;
                goto done;
            }
done:
    if (ci != cur_in) dnrt_free(ci);
    if (co != cur_out) dnrt_free(co);
    return code;
}

int32_t dnrt_gpu_launch_kernel(const dnrt_call *c, const dnrt_gpu_launch *l)
{
    struct dnrt_device *dev = c->dev;
    if (!dev || dev->fail.code) return -1;
    int64_t kn = l->batch == DNRT_BATCH_NT ? c->n * c->t : c->n; /* the kernel's n */
    int64_t items = l->items_n * kn + l->items_b;
    if (items <= 0) return 0;
    dnrt_karg a[1 + 32];
    if (l->nargs > 32) {
        dnrt_fail(&dev->fail, DNRT_ERR_DEVICE, "kernel %d: %d arguments, more than 32", l->kernel, l->nargs);
        return -1;
    }
    a[0] = (dnrt_karg){.kind = DNRT_KARG_I64, .i = kn};
    for (int32_t i = 0; i < l->nargs; i++) {
        const dnrt_gpu_arg *g = &l->args[i];
        dnrt_karg *k = &a[1 + i];
        int64_t off = g->a * c->n + g->b; /* a buffer's offset */
        switch (g->kind) {
        case DNRT_ARG_ARENA: *k = (dnrt_karg){.kind = DNRT_KARG_BUF, .buf = dev->arena, .i = off}; break;
        case DNRT_ARG_STATE: *k = (dnrt_karg){.kind = DNRT_KARG_BUF, .buf = dev->state, .i = off}; break;
        case DNRT_ARG_INPUT: *k = (dnrt_karg){.kind = DNRT_KARG_BUF, .buf = dev->cur_in[g->index], .i = off}; break;
        case DNRT_ARG_OUTPUT: *k = (dnrt_karg){.kind = DNRT_KARG_BUF, .buf = dev->cur_out[g->index], .i = off}; break;
        case DNRT_ARG_I64: *k = (dnrt_karg){.kind = DNRT_KARG_I64, .i = g->a * kn + g->b}; break;
        case DNRT_ARG_F32: *k = (dnrt_karg){.kind = DNRT_KARG_F32, .f = g->f}; break;
        case DNRT_ARG_STEP: *k = (dnrt_karg){.kind = DNRT_KARG_I64, .i = c->step}; break;
        case DNRT_ARG_SEED: *k = (dnrt_karg){.kind = DNRT_KARG_I64, .i = (int64_t)c->seed}; break;
        case DNRT_ARG_LR: *k = (dnrt_karg){.kind = DNRT_KARG_F32, .f = c->lr}; break;
        case DNRT_ARG_SEQ: *k = (dnrt_karg){.kind = DNRT_KARG_I64, .i = c->t}; break;
        default:
            dnrt_fail(&dev->fail, DNRT_ERR_DEVICE, "kernel %d: argument %d has unknown kind %d", l->kernel, i, g->kind);
            return -1;
        }
    }
    int64_t groups = (items + l->group - 1) / l->group;
    if (dev->ops->launch(dev->impl, l->kernel, groups, l->group, 1 + l->nargs, a, &dev->fail)) return -1;
    if (l->guard < 0) return 0;
    const dnrt_karg *gb = &a[1 + l->guard];
    int32_t flag = 0;
    if (dev->ops->read(dev->impl, gb->buf, (size_t)gb->i, &flag, sizeof flag, &dev->fail)) return -1;
    return flag;
}

int dnrt_gpu_state_to_host(dnrt_session *s, dnrt_error *err)
{
    struct dnrt_device *dev = s->dev;
    if (!dev || !dev->host_stale) return 0;
    if (dev->ops->read(dev->impl, dev->state, 0, s->state, (size_t)s->d->state_bytes, err)) return -1;
    dev->host_stale = 0;
    return 0;
}

void dnrt_gpu_state_changed(dnrt_session *s)
{
    if (!s->dev) return;
    s->dev->dev_stale = 1;
    s->dev->host_stale = 0;
}

int dnrt_gpu_state_io(dnrt_session *s, int to_device, size_t off, void *host, size_t n, dnrt_error *err)
{
    struct dnrt_device *dev = s->dev;
    return to_device ? dev->ops->write(dev->impl, dev->state, off, host, n, err)
                     : dev->ops->read(dev->impl, dev->state, off, host, n, err);
}

int dnrt_session_device_info(dnrt_session *s, dnrt_device_info *info, dnrt_error *err)
{
    if (!s || !info) return dnrt_fail(err, DNRT_ERR_ARG, "device_info: %s is NULL", s ? "info" : "session");
    memset(info, 0, sizeof *info);
    struct dnrt_device *dev = s->dev;
    if (!dev) return dnrt_ok(err);
    info->api = s->d->gpu->api;
    dev->ops->handles(dev->impl, &info->context, &info->queue, &info->device);
    dev->ops->describe(dev->impl, info->name, sizeof info->name);
    return dnrt_ok(err);
}
