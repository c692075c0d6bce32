/* fuzz_ir_read.c -- libFuzzer harness: bytes as IR text (docs/ir.md)
 * through dn_graph_read; an accepted graph must verify, print -> read ->
 * print must be the identity, and the pass pipeline and memory plan must
 * accept it (invariants of robust.h).  Build and run: see README.md. */
#include "robust.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    const char *why = rb_check_ir("fuzz.dnir", text);
    if (why) {
        fprintf(stderr, "fuzz_ir_read: invariant broken: %s\n", why);
        abort();
    }
    free(text);
    return 0;
}
