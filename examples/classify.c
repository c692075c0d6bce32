/* classify.c -- a C program that uses a library written by dnnc.
 *
 * Built by examples/examples.cmake: dnnc compiles examples/lenet.dnn into
 * lenet.so + lenet.h, and this program includes the header and links the
 * library directly (no dlopen, no Python).  It loads trained weights, reads
 * the first COUNT Fashion-MNIST test images (tools/idx.c, compiled in),
 * standardises them exactly like `dnnrun` does ((x/255 - 0.2860) / 0.3530),
 * classifies them one at a time, and prints predicted vs true classes, the
 * accuracy and the time per image.
 *
 *   classify WEIGHTS.safetensors [COUNT [DATA_DIR]]
 *
 * Weights come from, e.g.:  dnnrun train lenet.so --epochs 2 --save lenet.safetensors */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "idx.h"
#include "lenet.h"

#define DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"
#define SHOW_MAX         20

static const char *const class_names[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Classifies image 'i' of 'set' with 'net'; returns the class or -1. */
static int classify(lenet *net, const DnIdxSet *set, int64_t i, double *seconds)
{
    float x[28 * 28], logits[10];
    for (int p = 0; p < 28 * 28; p++) x[p] = (set->images[i * 784 + p] / 255.0f - 0.2860f) / 0.3530f;
    dnrt_error err = {0};
    double t0 = now_s();
    if (lenet_infer(net, 1, x, logits, &err)) {
        fprintf(stderr, "classify: lenet_infer: %s\n", err.message);
        return -1;
    }
    *seconds += now_s() - t0;
    int best = 0;
    for (int k = 1; k < 10; k++)
        if (logits[k] > logits[best]) best = k;
    return best;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: classify WEIGHTS.safetensors [COUNT [DATA_DIR]]\n");
        return 2;
    }
    long count = argc > 2 ? strtol(argv[2], NULL, 10) : 100;
    if (count <= 0) {
        fprintf(stderr, "classify: COUNT must be a positive number, got '%s'\n", argv[2]);
        return 2;
    }
    char ipath[4096], lpath[4096], msg[8400];
    dn_idx_paths(argc > 3 ? argv[3] : DEFAULT_DATA_DIR, 0, ipath, lpath, sizeof ipath);
    DnIdxSet set;
    if (dn_idx_load(ipath, lpath, count, &set, msg, sizeof msg)) {
        fprintf(stderr, "classify: %s\n", msg);
        return 1;
    }
    if (set.rows != 28 || set.cols != 28) {
        fprintf(stderr, "classify: %s: images are %dx%d, LeNet needs 28x28\n", ipath, set.rows, set.cols);
        return 1;
    }
    dnrt_error err = {0};
    dnrt_options opt = {.threads = 1, .seed = 0};
    lenet *net = lenet_create(&opt, &err);
    if (!net || lenet_load(net, argv[1], &err)) {
        fprintf(stderr, "classify: %s\n", err.message);
        return 1;
    }
    int64_t correct = 0;
    double seconds = 0;
    for (int64_t i = 0; i < set.count; i++) {
        int got = classify(net, &set, i, &seconds);
        if (got < 0) return 1;
        int truth = set.labels[i];
        correct += got == truth;
        if (i < SHOW_MAX)
            printf("%4lld  predicted %-12s  true %-12s  %s\n", (long long)i, class_names[got], class_names[truth],
                   got == truth ? "ok" : "WRONG");
        else if (i == SHOW_MAX)
            printf("  ... (%lld more)\n", (long long)(set.count - SHOW_MAX));
    }
    printf("accuracy: %lld/%lld = %.1f%%\n", (long long)correct, (long long)set.count, 100.0 * correct / set.count);
    printf("time per image: %.1f us (batch 1, 1 thread)\n", 1e6 * seconds / set.count);
    lenet_destroy(net);
    dn_idx_free(&set);
    return 0;
}
