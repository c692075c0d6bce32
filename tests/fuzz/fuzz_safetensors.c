/* fuzz_safetensors.c -- libFuzzer harness: bytes as a safetensors file.
 * They are written to one temporary file per process, which dnrt_st_read
 * must either accept with a consistent result (offsets inside the file,
 * sizes matching dtype and shape) or reject with a message that starts
 * with the path (invariants of robust.h).  Build and run: see README.md. */
#include <unistd.h>

#include "robust.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void remove_file(void) { unlink(path); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        strcpy(path, "/tmp/fuzz_st_XXXXXX");
        int fd = mkstemp(path);
        if (fd < 0) abort();
        close(fd);
        atexit(remove_file);
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f) != 0) abort();
    const char *why = rb_check_st(path, size);
    if (why) {
        fprintf(stderr, "fuzz_safetensors: invariant broken: %s\n", why);
        abort();
    }
    return 0;
}
