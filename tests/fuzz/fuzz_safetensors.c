/* fuzz_safetensors.c -- libFuzzer harness: bytes as a safetensors file.
 * They are written to one in-memory file per process (memfd_create), which
 * dnrt_st_read opens through its /proc/self/fd path (a file on disk, truncated
 * and rewritten for every input, made the disk the bottleneck), and must
 * either accept with a consistent result (offsets inside the file, sizes
 * matching dtype and shape) or reject with a message that starts with the
 * path (invariants of robust.h).  Build and run: see README.md. */
#include "robust.h" /* first: it defines _GNU_SOURCE, which memfd_create needs */

#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];
static int fd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fd < 0) {
        fd = memfd_create("safetensors", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) abort();
    for (size_t done = 0; done < size;) {
        ssize_t w = pwrite(fd, data + done, size - done, (off_t)done);
        if (w <= 0) abort();
        done += (size_t)w;
    }
    const char *why = rb_check_st(path, size);
    if (why) {
        fprintf(stderr, "fuzz_safetensors: invariant broken: %s\n", why);
        abort();
    }
    return 0;
}
