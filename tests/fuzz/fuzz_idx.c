/* fuzz_idx.c -- libFuzzer harness: bytes as a pair of IDX files (an images
 * file and a labels file, raw or gzip'd) through dn_idx_load of
 * tools/idx.h, which reads only from paths.  The input is
 *
 *     byte 0        'limit' for dn_idx_load (0: keep every example)
 *     bytes 1..4    big-endian length L of the images file
 *     next L bytes  the images file (fewer if the input ends first)
 *     the rest      the labels file
 *
 * written to two in-memory files per process (memfd_create, opened by
 * dn_idx_load through their /proc/self/fd paths: a file on disk costs more
 * than the parse).  dn_idx_load must either
 * fail with a message that starts with one of the two paths and leave the
 * set empty, or succeed with dimensions the header allows, at most 'limit'
 * examples, a raw file's size exactly header + data, and every returned
 * byte readable (ASan checks each one).  Build and run: see README.md. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char images_path[64], labels_path[64];
static int images_fd = -1, labels_fd = -1;

/* An in-memory file and its path; aborts if there is none. */
static int make_file(char *path, const char *name)
{
    int fd = memfd_create(name, 0);
    if (fd < 0) abort();
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

/* Replaces the contents of 'fd' by the 'n' bytes at 'p'. */
static void write_file(int fd, const uint8_t *p, size_t n)
{
    if (ftruncate(fd, 0) != 0) abort();
    for (size_t done = 0; done < n;) {
        ssize_t w = pwrite(fd, p + done, n - done, (off_t)done);
        if (w <= 0) abort();
        done += (size_t)w;
    }
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int is_gzip(const uint8_t *p, size_t n) { return n >= 2 && p[0] == 0x1f && p[1] == 0x8b; }

static void broken(const char *why, const char *err)
{
    fprintf(stderr, "fuzz_idx: invariant broken: %s (err: %s)\n", why, err);
    abort();
}

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (images_fd < 0) {
        images_fd = make_file(images_path, "images");
        labels_fd = make_file(labels_path, "labels");
    }
    int64_t limit = size > 0 ? data[0] : 0;
    size_t ilen = size >= 5 ? be32(data + 1) : 0, off = size >= 5 ? 5 : size;
    if (ilen > size - off) ilen = size - off;
    const uint8_t *img = data + off, *lab = data + off + ilen;
    size_t llen = size - off - ilen;
    write_file(images_fd, img, ilen);
    write_file(labels_fd, lab, llen);

    DnIdxSet set;
    memset(&set, 0xa5, sizeof set); /* dn_idx_load must set every field */
    char err[512];
    strcpy(err, "(not set)");
    int rc = dn_idx_load(images_path, labels_path, limit, &set, err, sizeof err);
    if (rc != 0) {
        if (rc != -1) broken("returned neither 0 nor -1", err);
        if (!starts_with(err, images_path) && !starts_with(err, labels_path))
            broken("the message does not start with a path", err);
        if (set.images || set.labels || set.count) broken("a failed load left the set filled", err);
        dn_idx_free(&set);
        return 0;
    }
    if (set.count < 1 || set.rows < 1 || set.cols < 1 || set.rows > 100000 || set.cols > 100000)
        broken("success with impossible dimensions", "-");
    if (!set.images || !set.labels) broken("success without data", "-");
    if (limit > 0 && set.count > limit) broken("more examples than 'limit'", "-");
    if (!is_gzip(img, ilen)) {
        if (ilen < 16 || (int64_t)be32(img + 4) < set.count || be32(img + 8) != (uint32_t)set.rows ||
            be32(img + 12) != (uint32_t)set.cols)
            broken("dimensions differ from the images header", "-");
        if ((uint64_t)ilen != 16 + (uint64_t)be32(img + 4) * (uint64_t)set.rows * (uint64_t)set.cols)
            broken("accepted an images file whose size the header does not say", "-");
    }
    if (!is_gzip(lab, llen) && (llen < 8 || (uint64_t)llen != 8 + (uint64_t)be32(lab + 4)))
        broken("accepted a labels file whose size the header does not say", "-");
    /* Read every byte handed back: ASan reports any that lies outside. */
    unsigned sum = 0;
    size_t npix = (size_t)set.count * (size_t)set.rows * (size_t)set.cols;
    for (size_t i = 0; i < npix; i++) sum += set.images[i];
    for (int64_t i = 0; i < set.count; i++) sum += set.labels[i];
    if (sum == 0xffffffffu) fputc(0, stderr); /* keeps the loads */
    dn_idx_free(&set);
    if (set.images || set.labels || set.count) broken("dn_idx_free left the set filled", "-");
    return 0;
}
