/* test_golden.c -- numbers against PyTorch.
 *
 * tests/golden/make_goldens.py (run by hand) wrote, for LeNet-5 and a 3-layer
 * MLP, the initial weights, inference inputs and logits at batch 1 and 7, and
 * for one training batch: the loss, the gradients, and the parameters after 1
 * and 3 steps of SGD (lr 0.1, momentum 0.9) and of Adam (lr 1e-3), with the
 * optimizer state after step 1.  Here each tests/golden/<m>_<opt>.dnn is
 * compiled with the real dnnc, driven through its descriptor's API, and
 * compared with docs/design.md's rule |got - ref| <= rtol * max|ref| + atol.
 *
 * Tolerances: rtol 1e-4, atol 1e-5 for logits, the first loss, the gradient
 * (seen as SGD's momentum buffer, which equals the gradient after step 1),
 * Adam's moments (exactly 0.1 g and 0.001 g^2 after step 1, derived here
 * from the stored gradient) and SGD's parameters after one step.  After
 * three steps each tensor has absorbed three updates, each within the
 * one-step bound, and the later gradients come from already-perturbed
 * weights, so the bound is scaled by 3: rtol 3e-4, atol 3e-5.
 * Adam's parameters get atol lr/5 = 2e-4: its first update is
 * lr * g / (|g| + eps), which near g = 0 turns a gradient rounding error d
 * into an update error of up to lr * d / eps; make_goldens.py measures this
 * for PyTorch itself (fp32 vs fp64: 0.04 lr for the MLP).  Wrong Adam
 * arithmetic (sign, bias correction, moments) is off by about lr or more on
 * most elements, so this bound still catches it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/safetensors.h"
#include "testlib.h"

#define RTOL1     1e-4
#define ATOL1     1e-5
#define RTOL3     3e-4
#define ATOL3     3e-5
#define ADAM_ATOL 2e-4

/* Compiles tests/golden/<model>_<opt>.dnn, opens a session, loads the weights. */
static dnrt_session *open_golden(const char *model, const char *opt, DnTestLib *lib)
{
    char rel[256], log[16384];
    snprintf(rel, sizeof rel, "tests/golden/%s_%s.dnn", model, opt);
    cr_assert_eq(dn_test_compile_file(rel, "", lib, log, sizeof log), 0, "%s", log);
    cr_assert_eq(lib->desc->abi_version, DNRT_ABI_VERSION);
    const dnrt_api *api = lib->desc->api;
    dnrt_options o = {.threads = 2, .seed = 1};
    dnrt_error err = {0};
    dnrt_session *s = api->create(lib->desc, &o, &err);
    cr_assert_not_null(s, "create: %s", err.message);
    snprintf(rel, sizeof rel, "tests/golden/%s_weights.safetensors", model);
    cr_assert_eq(api->load(s, dn_test_src(rel), &err), 0, "load: %s", err.message);
    return s;
}

static void check_infer(const char *model)
{
    DnTestLib lib;
    dnrt_session *s = open_golden(model, "sgd", &lib);
    const dnrt_api *api = lib.desc->api;
    char name[64];
    snprintf(name, sizeof name, "%s_infer", model);
    dnrt_st_file g;
    dn_test_golden_open(name, &g);
    const dnrt_tensor_desc *logits = &lib.desc->outputs[0];
    cr_assert(logits->rank == 2 && logits->dim[0] == -1 && logits->dim[1] == 10, "%s: logits are not f32[N, 10]",
              model);
    for (int64_t n = 1; n <= 7; n += 6) {
        snprintf(name, sizeof name, "image.b%lld", (long long)n);
        const float *x = dn_test_tensor(&g, name, DNRT_F32, n * 784);
        snprintf(name, sizeof name, "logits.b%lld", (long long)n);
        const float *ref = dn_test_tensor(&g, name, DNRT_F32, n * 10);
        float got[70];
        const void *in[1] = {x};
        void *out[1] = {got};
        dnrt_error err = {0};
        cr_assert_eq(api->infer(s, n, in, out, &err), 0, "infer: %s", err.message);
        snprintf(name, sizeof name, "%s logits at batch %lld", model, (long long)n);
        dn_test_expect_close(name, got, ref, n * 10, RTOL1, ATOL1);
    }
    dnrt_st_free(&g);
    api->destroy(s);
    dn_test_close(&lib);
}

/* The optimizer state slots checked after step 1.  Their references come
 * from the gradient g = grad.<param> of <m>_train: SGD's momentum buffer
 * is g; Adam's exp_avg is (1 - 0.9) g and exp_avg_sq (1 - 0.999) g^2. */
static const char *const sgd_slots[] = {"momentum_buffer", NULL};
static const char *const adam_slots[] = {"exp_avg", "exp_avg_sq", NULL};

static float *expected_slot(const char *slot, const float *g, int64_t n)
{
    float *want = malloc(sizeof *want * n);
    cr_assert_not_null(want);
    for (int64_t i = 0; i < n; i++)
        want[i] = !strcmp(slot, "exp_avg") ? 0.1f * g[i] : !strcmp(slot, "exp_avg_sq") ? 0.001f * g[i] * g[i] : g[i];
    return want;
}

/* Compares every weight of 'saved' with '<prefix><name>' of 'ref' and, when
 * 'slots' is not NULL, each optimizer state tensor optim.<name>.<slot>. */
static void compare_state(const char *what, const DnTestLib *lib, const dnrt_st_file *saved, const dnrt_st_file *ref,
                          const dnrt_st_file *train, const char *prefix, const char *const *slots, double rtol,
                          double atol)
{
    const dnrt_model_desc *d = lib->desc;
    int nweights = 0;
    for (int i = 0; i < d->nstate; i++) {
        const dnrt_tensor_desc *t = &d->state[i];
        if (t->kind != DNRT_STATE_WEIGHT) continue;
        nweights++;
        int64_t n = dn_test_desc_numel(t);
        char name[300], label[400];
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        snprintf(label, sizeof label, "%s: %s", what, t->name);
        dn_test_expect_close(label, dn_test_tensor(saved, t->name, DNRT_F32, n), dn_test_tensor(ref, name, DNRT_F32, n),
                             n, rtol, atol);
        for (int k = 0; slots && slots[k]; k++) {
            char sname[300];
            snprintf(sname, sizeof sname, "optim.%s.%s", t->name, slots[k]);
            snprintf(name, sizeof name, "grad.%s", t->name);
            float *want = expected_slot(slots[k], dn_test_tensor(train, name, DNRT_F32, n), n);
            snprintf(label, sizeof label, "%s: %s", what, sname);
            dn_test_expect_close(label, dn_test_tensor(saved, sname, DNRT_F32, n), want, n, RTOL1, ATOL1);
            free(want);
        }
    }
    cr_assert_gt(nweights, 0, "%s: no weights in the descriptor", what);
}

static void check_train(const char *model, const char *opt)
{
    DnTestLib lib;
    dnrt_session *s = open_golden(model, opt, &lib);
    const dnrt_api *api = lib.desc->api;
    cr_assert(lib.desc->trains, "%s_%s.dnn compiled without training", model, opt);
    const int adam = !strcmp(opt, "adam");
    char name[64];
    dnrt_st_file train, ref, saved;
    snprintf(name, sizeof name, "%s_train", model);
    dn_test_golden_open(name, &train);
    snprintf(name, sizeof name, "%s_%s", model, opt);
    dn_test_golden_open(name, &ref);
    const void *in[2] = {dn_test_tensor(&train, "image", DNRT_F32, 7 * 784),
                         dn_test_tensor(&train, "label", DNRT_I32, 7)};
    const float *ref_loss = dn_test_tensor(&ref, "loss", DNRT_F32, 3);
    float loss[3];
    for (int step = 0; step < 3; step++) {
        dnrt_error err = {0};
        cr_assert_eq(api->train_step(s, 7, in, &loss[step], &err), 0, "train_step %d: %s", step + 1, err.message);
        if (step == 0) {
            snprintf(name, sizeof name, "%s %s step 1", model, opt);
            dn_test_expect_close(name, &loss[0], ref_loss, 1, RTOL1, ATOL1);
            dn_test_saved_state(api, s, &saved);
            compare_state(name, &lib, &saved, &ref, &train, "step1.", adam ? adam_slots : sgd_slots, RTOL1,
                          adam ? ADAM_ATOL : ATOL1);
            dnrt_st_free(&saved);
        }
    }
    cr_expect_eq(api->get_step(s), 3);
    snprintf(name, sizeof name, "%s %s losses of steps 2-3", model, opt);
    dn_test_expect_close(name, loss + 1, ref_loss + 1, 2, RTOL3, ATOL3);
    dn_test_saved_state(api, s, &saved);
    snprintf(name, sizeof name, "%s %s step 3", model, opt);
    compare_state(name, &lib, &saved, &ref, &train, "step3.", NULL, RTOL3, adam ? ADAM_ATOL : ATOL3);
    dnrt_st_free(&saved);
    dnrt_st_free(&ref);
    dnrt_st_free(&train);
    api->destroy(s);
    dn_test_close(&lib);
}

Test(golden, lenet_infer) { check_infer("lenet"); }
Test(golden, mlp_infer) { check_infer("mlp"); }
Test(golden, lenet_sgd) { check_train("lenet", "sgd"); }
Test(golden, lenet_adam) { check_train("lenet", "adam"); }
Test(golden, mlp_sgd) { check_train("mlp", "sgd"); }
Test(golden, mlp_adam) { check_train("mlp", "adam"); }
