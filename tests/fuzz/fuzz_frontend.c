/* fuzz_frontend.c -- libFuzzer harness: bytes as a .dnn source through
 * parse -> lower -> verify -> every pass (inference and training graphs)
 * -> state layout -> memory plan, with the invariants of robust.h.
 * Build and run: see README.md. */
#include "robust.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0; /* a NUL inside ends the text, as it would for dnnc */
    const char *why = rb_check_dnn("fuzz.dnn", text);
    if (why) {
        fprintf(stderr, "fuzz_frontend: invariant broken: %s\n", why);
        abort();
    }
    free(text);
    return 0;
}
