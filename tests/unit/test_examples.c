/* test_examples.c -- the lecture's models in examples/ compile, and the
 * ImageNet ones name their parameters exactly as torchvision does.
 *
 * The expected names are derived here the way torchvision builds the
 * modules: VGG's make_layers walks configuration D and numbers every
 * nn.Sequential entry (conv, ReLU, max pool each take an index); AlexNet's
 * features and classifier are its fixed Sequential lists.  So a state_dict
 * saved by PyTorch loads into the compiled model and back.
 * ViT-B/16's and ViT-Tiny's are checked against lists written from
 * torchvision (dn_test_expect_param_list).  (ResNet-18's are checked by
 * test_resnet against a list written by tests/golden/make_goldens.py.)
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

/* ViT-B/16 and ViT-Tiny declare the state_dicts of torchvision's vit_b_16()
 * and of its VisionTransformer at ViT-Tiny's size (the lists are written by
 * tests/golden/make_vit_goldens.py), so torchvision's weights load by name. */
Test(examples, vit_names_are_torchvisions)
{
    cr_expect_eq(dn_test_expect_param_list("examples/vit_b_16.dnn", "", "tests/golden/vit_b_16_params.txt"), 152);
    cr_expect_eq(dn_test_expect_param_list("examples/vit_tiny.dnn", "", "tests/golden/vit_tiny_params.txt"), 152);
}

/* The full-size Transformer base model and ViT-B/16 compile to inference
 * libraries (about 20 and 12 s here; not run: the tests of their layers run
 * them at reduced sizes) whose descriptors give the outputs as written. */
Test(examples, full_size_transformer_and_vit_b_16_compile, .timeout = 600)
{
    static const struct {
        const char *path;
        int rank;
        int64_t dim[3];
    } models[] = {{"examples/transformer.dnn", 3, {-1, 128, 37000}}, {"examples/vit_b_16.dnn", 2, {-1, 1000}}};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        DnTestLib lib;
        static char log[8192];
        cr_assert_eq(dn_test_compile_file(models[i].path, "--no-train", &lib, log, sizeof log), 0, "%s: %s",
                     models[i].path, log);
        const dnrt_tensor_desc *y = &lib.desc->outputs[0];
        cr_expect_eq(y->rank, models[i].rank, "%s", models[i].path);
        for (int k = 0; k < models[i].rank && k < y->rank; k++)
            cr_expect_eq(y->dim[k], models[i].dim[k], "%s: output axis %d", models[i].path, k);
        dn_test_close(&lib);
    }
}

/* Every example builds both graphs through every pass (no LLVM: the big
 * ImageNet models would take long to optimize). */
Test(examples, every_example_builds_its_training_step)
{
    static const char *const models[] = {"examples/lenet.dnn",
                                         "examples/mlp.dnn",
                                         "examples/resnet.dnn",
                                         "examples/vgg16.dnn",
                                         "examples/alexnet.dnn",
                                         "examples/char_lstm.dnn",
                                         "examples/seq2seq_attention.dnn",
                                         "examples/vit_tiny.dnn",
                                         "examples/transformer.dnn",
                                         "examples/vit_fmnist.dnn",
                                         "examples/numwords_transformer.dnn",
                                         "examples/char_transformer.dnn"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char cmd[1024];
        /* the language models' files also hold a step model: the windowed one trains */
        const char *model = strstr(models[i], "char_lstm")          ? " --model char_lstm"
                            : strstr(models[i], "char_transformer") ? " --model char_transformer"
                                                                    : "";
        snprintf(cmd, sizeof cmd, "'%s' '%s' --emit=ir-opt --graph=train%s", DNNC_BIN, dn_test_src(models[i]), model);
        cr_expect_eq(dn_test_run(cmd, out, sizeof out), 0, "%s: %s", models[i], out);
        cr_expect(strstr(out, "_update @"), "%s: no optimizer update in the training graph", models[i]);
    }
    /* and the character Transformer's step model decodes over its KV cache */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s' --model char_transformer_step --emit=ir-opt", DNNC_BIN,
             dn_test_src("examples/char_transformer.dnn"));
    cr_expect_eq(dn_test_run(cmd, out, sizeof out), 0, "char_transformer_step: %s", out);
    cr_expect(strstr(out, "cached_attention"), "char_transformer_step: no cached_attention:\n%.2000s", out);
}

/* char_lstm's two models (training windows, one step with the state passed)
 * declare the same parameters, PyTorch's names for an nn.Embedding, a
 * 2-layer nn.LSTM and an nn.Linear, so one weights file serves both. */
Test(examples, char_lstm_models_share_their_parameters)
{
    static char lines[2][8192];
    static const char *const models[] = {"char_lstm", "char_lstm_step"};
    for (int m = 0; m < 2; m++) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "'%s' '%s' --model %s --emit=ir", DNNC_BIN, dn_test_src("examples/char_lstm.dnn"),
                 models[m]);
        cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s: %s", models[m], out);
        size_t used = 0;
        lines[m][0] = 0;
        for (char *p = out; (p = strstr(p, "  param @")); p++) {
            char name[256], type[256];
            if (sscanf(p, "  param @%255[^:]: %255[^]]", name, type) == 2)
                used += (size_t)snprintf(lines[m] + used, sizeof lines[m] - used, "%s: %s]\n", name, type);
        }
    }
    static char want[8192];
    size_t used = add(want, 0, sizeof want, "embed.weight", "f32[256, 64]");
    for (int l = 0; l < 2; l++) {
        char name[64], type[64];
        snprintf(name, sizeof name, "lstm.weight_ih_l%d", l);
        snprintf(type, sizeof type, "f32[512, %d]", l ? 128 : 64);
        used = add(want, used, sizeof want, name, type);
        snprintf(name, sizeof name, "lstm.weight_hh_l%d", l);
        used = add(want, used, sizeof want, name, "f32[512, 128]");
        snprintf(name, sizeof name, "lstm.bias_ih_l%d", l);
        used = add(want, used, sizeof want, name, "f32[512]");
        snprintf(name, sizeof name, "lstm.bias_hh_l%d", l);
        used = add(want, used, sizeof want, name, "f32[512]");
    }
    linear(want, used, sizeof want, "head", 256, 128);
    cr_expect_str_eq(lines[0], want);
    cr_expect_str_eq(lines[1], want);
}
