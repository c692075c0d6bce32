/* test_examples.c -- the lecture's models in examples/ compile, and the
 * ImageNet ones name their parameters exactly as torchvision does.
 *
 * The expected names are derived here the way torchvision builds the
 * modules: VGG's make_layers walks configuration D and numbers every
 * nn.Sequential entry (conv, ReLU, max pool each take an index); AlexNet's
 * features and classifier are its fixed Sequential lists.  So a state_dict
 * saved by PyTorch loads into the compiled model and back.
 * (ResNet-18's names are checked by test_resnet against a list written by
 * tests/golden/make_goldens.py.)
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "testlib.h"

static char out[1 << 20];

/* "name: f32[dims]" lines of every parameter in 'model's --emit=ir. */
static void param_lines(const char *model, char *lines, size_t len)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s' --emit=ir", DNNC_BIN, dn_test_src(model));
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s: %s", model, out);
    size_t used = 0;
    lines[0] = 0;
    for (char *p = out; (p = strstr(p, "  param @")); p++) {
        char name[256], type[256];
        if (sscanf(p, "  param @%255[^:]: %255[^]]", name, type) != 2) continue;
        used += (size_t)snprintf(lines + used, len - used, "%s: %s]\n", name, type);
    }
}

static size_t add(char *s, size_t used, size_t len, const char *name, const char *type)
{
    return used + (size_t)snprintf(s + used, len - used, "%s: %s\n", name, type);
}

/* A conv's weight and bias lines at 'prefix'. */
static size_t conv(char *s, size_t used, size_t len, const char *prefix, int out_c, int in_c, int k)
{
    char name[128], type[128];
    snprintf(name, sizeof name, "%s.weight", prefix);
    snprintf(type, sizeof type, "f32[%d, %d, %d, %d]", out_c, in_c, k, k);
    used = add(s, used, len, name, type);
    snprintf(name, sizeof name, "%s.bias", prefix);
    snprintf(type, sizeof type, "f32[%d]", out_c);
    return add(s, used, len, name, type);
}

static size_t linear(char *s, size_t used, size_t len, const char *prefix, int out_f, int in_f)
{
    char name[128], type[128];
    snprintf(name, sizeof name, "%s.weight", prefix);
    snprintf(type, sizeof type, "f32[%d, %d]", out_f, in_f);
    used = add(s, used, len, name, type);
    snprintf(name, sizeof name, "%s.bias", prefix);
    snprintf(type, sizeof type, "f32[%d]", out_f);
    return add(s, used, len, name, type);
}

Test(examples, vgg16_names_are_torchvisions)
{
    static const int cfg_d[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
    static char want[8192], got[8192];
    size_t used = 0;
    int idx = 0, in_c = 3;
    for (size_t i = 0; i < sizeof cfg_d / sizeof cfg_d[0]; i++) {
        if (cfg_d[i] == 0) { /* 'M': one max pool entry */
            idx++;
            continue;
        }
        char prefix[64];
        snprintf(prefix, sizeof prefix, "features.%d", idx);
        used = conv(want, used, sizeof want, prefix, cfg_d[i], in_c, 3);
        in_c = cfg_d[i];
        idx += 2; /* conv, ReLU */
    }
    used = linear(want, used, sizeof want, "classifier.0", 4096, 512 * 7 * 7);
    used = linear(want, used, sizeof want, "classifier.3", 4096, 4096);
    linear(want, used, sizeof want, "classifier.6", 1000, 4096);
    param_lines("examples/vgg16.dnn", got, sizeof got);
    cr_expect_str_eq(got, want);
}

Test(examples, alexnet_names_are_torchvisions)
{
    static char want[4096], got[4096];
    size_t used = 0;
    used = conv(want, used, sizeof want, "features.0", 64, 3, 11);
    used = conv(want, used, sizeof want, "features.3", 192, 64, 5);
    used = conv(want, used, sizeof want, "features.6", 384, 192, 3);
    used = conv(want, used, sizeof want, "features.8", 256, 384, 3);
    used = conv(want, used, sizeof want, "features.10", 256, 256, 3);
    used = linear(want, used, sizeof want, "classifier.1", 4096, 256 * 6 * 6);
    used = linear(want, used, sizeof want, "classifier.4", 4096, 4096);
    linear(want, used, sizeof want, "classifier.6", 1000, 4096);
    param_lines("examples/alexnet.dnn", got, sizeof got);
    cr_expect_str_eq(got, want);
}

/* Every example builds both graphs through every pass (no LLVM: the big
 * ImageNet models would take long to optimize). */
Test(examples, every_example_builds_its_training_step)
{
    static const char *const models[] = {"examples/lenet.dnn",   "examples/mlp.dnn",
                                         "examples/resnet.dnn",  "examples/vgg16.dnn",
                                         "examples/alexnet.dnn", "examples/seq2seq_attention.dnn"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "'%s' '%s' --emit=ir-opt --graph=train", DNNC_BIN, dn_test_src(models[i]));
        cr_expect_eq(dn_test_run(cmd, out, sizeof out), 0, "%s: %s", models[i], out);
        cr_expect(strstr(out, "_update @"), "%s: no optimizer update in the training graph", models[i]);
    }
}
