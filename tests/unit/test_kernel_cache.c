/* test_kernel_cache.c -- the CPU backend's kernel units and their cache
 * (backends/llvm/llvm_units.c, backends/kernel_cache.c): identical kernels
 * are compiled once, a rebuild takes every kernel from the cache and gives
 * the same library, a damaged entry is compiled again, --no-cache and an
 * unusable cache folder write nothing there, the folder is trimmed to its
 * bound oldest first, and the library does not depend on how many threads
 * built it. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backends/kernel_cache.h"
#include "testlib.h"

static char out[1 << 16];

/* Three dense layers 16 -> 16, then tanh: the second and third dense are
 * one kernel (the first reads the input, whose pointer carries no 64-byte
 * alignment, so its body differs), the three tanh are one. */
static const char model[] = "model twins(x: f32[N, 16]) -> (y: f32[N, 4]) {\n"
                            "  h = x |> dense(16) |> tanh\n"
                            "  h = h |> dense(16) |> tanh\n"
                            "  h = h |> dense(16) |> tanh\n"
                            "  y = h |> dense(4)\n"
                            "}\n";

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* A fresh folder with the model file in it ('text', or the
 * model above), and the environment that puts the cache at 'under'
 * inside it. */
typedef struct Fixture {
    char dir[512], path[700], cache[700], env[800];
} Fixture;

static void setup(Fixture *t, const char *text, const char *under)
{
    dn_test_tmpdir(t->dir, sizeof t->dir, "kcache");
    snprintf(t->path, sizeof t->path, "%s/twins.dnn", t->dir);
    put(t->path, text ? text : model);
    snprintf(t->cache, sizeof t->cache, "%s/%s", t->dir, under);
    snprintf(t->env, sizeof t->env, "DNNC_CACHE_DIR='%s'", t->cache);
}

/* Runs dnnc on the model file in folder 'dir' with 'env' (e.g. "DNNC_CACHE_DIR=...") and
 * 'flags', output to dir/'so'; returns its status, output in 'out'. */
static int build(const char *dir, const char *env, const char *flags, const char *so)
{
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' twins.dnn -o %s --stats %s", dir, env, DNNC_BIN, so, flags);
    return dn_test_run(cmd, out, sizeof out);
}

/* The numbers of "K kernels, D distinct: C compiled, F from the cache". */
static void counts(int *kernels, int *distinct, int *compiled, int *cached)
{
    const char *s = strstr(out, "dnnc: ");
    cr_assert_not_null(s, "no --stats line in: %s", out);
    cr_assert_eq(
        sscanf(s, "dnnc: %d kernels, %d distinct: %d compiled, %d from the cache", kernels, distinct, compiled, cached),
        4, "%s", s);
}

static int entries(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '^[0-9a-f]*\\.o$'", dir);
    dn_test_run(cmd, out, sizeof out);
    return atoi(out);
}

static bool same_file(const char *a, const char *b)
{
    size_t la, lb;
    char *x = dn_test_slurp(a, &la), *y = dn_test_slurp(b, &lb);
    bool same = x && y && la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return same;
}

Test(kernel_cache, equal_kernels_compile_once_and_a_rebuild_compiles_none)
{
    Fixture t;
    setup(&t, NULL, "cache/nested");
    const char *dir = t.dir, *cache = t.cache, *env = t.env;

    int k, d, c, f;
    cr_assert_eq(build(dir, env, "--no-train", "a.so"), 0, "%s", out);
    counts(&k, &d, &c, &f);
    cr_expect_eq(k, 7, "%s", out); /* 4 dense, 3 tanh */
    cr_expect_eq(d, 4, "%s", out); /* dense from the input, dense 16->16 (twice), tanh (thrice), dense 16->4 */
    cr_expect_eq(c, d, "%s", out);
    cr_expect_eq(f, 0, "%s", out);
    cr_expect_eq(entries(cache), d);

    cr_assert_eq(build(dir, env, "--no-train", "b.so"), 0, "%s", out);
    counts(&k, &d, &c, &f);
    cr_expect_eq(c, 0, "%s", out);
    cr_expect_eq(f, d, "%s", out);
    cr_expect_eq(entries(cache), d);

    /* the same name, so the soname matches: byte for byte the first library */
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/a.so", dir);
    snprintf(b, sizeof b, "%s/saved.so", dir);
    cr_assert_eq(rename(a, b), 0);
    cr_assert_eq(build(dir, env, "--no-train", "a.so"), 0, "%s", out);
    cr_expect(same_file(a, b), "a library built from the cache differs from the one that filled it");
    dn_test_rmtree(dir);
}

Test(kernel_cache, a_damaged_entry_is_compiled_again)
{
    Fixture t;
    setup(&t, NULL, "cache");
    const char *dir = t.dir, *cache = t.cache, *env = t.env;
    cr_assert_eq(build(dir, env, "--no-train", "a.so"), 0, "%s", out);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cd '%s' && for e in *.o; do truncate -s 100 \"$e\"; echo \"$e\"; break; done", cache);
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0);
    out[strcspn(out, "\n")] = 0;
    char entry[1000];
    snprintf(entry, sizeof entry, "%s/%.40s", cache, out);
    cr_assert(!dn_cache_object_ok(entry), "a truncated entry passes the check");

    int k, d, c, f;
    cr_assert_eq(build(dir, env, "--no-train", "b.so"), 0, "%s", out);
    counts(&k, &d, &c, &f);
    cr_expect_eq(c, 1, "%s", out);
    cr_expect_eq(f, d - 1, "%s", out);
    cr_expect(dn_cache_object_ok(entry), "the damaged entry was not replaced");

    /* an entry that cannot be written (a folder in its place): a warning,
     * the kernel goes to a temporary object, and the library is built */
    cr_assert_eq(unlink(entry), 0);
    cr_assert_eq(mkdir(entry, 0700), 0);
    char so[700];
    snprintf(so, sizeof so, "%s/c.so", dir);
    cr_assert_eq(build(dir, env, "--no-train", "c.so"), 0, "%s", out);
    cr_expect(strstr(out, "warning") && strstr(out, "going on without it"), "%s", out);
    counts(&k, &d, &c, &f);
    cr_expect_eq(c, 1, "%s", out);
    struct stat st;
    cr_expect(stat(so, &st) == 0 && st.st_size > 0, "no library");
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c dnnc-tmp", cache);
    dn_test_run(cmd, out, sizeof out);
    cr_expect_eq(atoi(out), 0, "temporaries left in the cache");
    dn_test_rmtree(dir);
}

Test(kernel_cache, no_cache_and_an_unusable_folder_write_nothing_there)
{
    Fixture t;
    setup(&t, NULL, "cache");
    const char *dir = t.dir, *cache = t.cache, *env = t.env;
    int k, d, c, f;
    cr_assert_eq(build(dir, env, "--no-train --no-cache", "a.so"), 0, "%s", out);
    counts(&k, &d, &c, &f);
    cr_expect_eq(c, d, "%s", out);
    cr_expect(strstr(out, "(no cache)"), "%s", out);
    struct stat st;
    cr_expect_neq(stat(cache, &st), 0, "--no-cache made the cache folder");

    put(cache, "a file where the folder would be");
    cr_assert_eq(build(dir, env, "--no-train", "b.so"), 0, "%s", out);
    cr_expect(strstr(out, "warning") && strstr(out, "not usable") && strstr(out, cache), "%s", out);
    counts(&k, &d, &c, &f);
    cr_expect_eq(c, d, "%s", out);
    size_t len;
    char *text = dn_test_slurp(cache, &len);
    cr_expect(text && !strcmp(text, "a file where the folder would be"), "the file in the cache's place changed");
    free(text);
    char so[800];
    snprintf(so, sizeof so, "%s/b.so", dir);
    cr_expect_eq(stat(so, &st), 0, "no library without a cache");
    dn_test_rmtree(dir);
}

/* A file of 'kb' KiB at 'path', last used 'age' seconds ago. */
static void fake_entry(const char *path, int kb, int age)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    for (int i = 0; i < kb * 1024; i++) fputc('x', f);
    fclose(f);
    struct timespec ts[2] = {{.tv_sec = time(NULL) - age}, {.tv_sec = time(NULL) - age}};
    cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* Over $DNNC_CACHE_MAX_MB, the entries used longest ago go, down to 80% of
 * it; what was used in the last hour stays, this build's entries too.  A
 * killed build's temporaries go after an hour. */
Test(kernel_cache, the_cache_is_trimmed_to_its_bound_oldest_first)
{
    Fixture t;
    setup(&t, NULL, "cache");
    cr_assert_eq(mkdir(t.cache, 0700), 0);
    static const char *const names[4] = {"00000000000000000000000000000001.o", "00000000000000000000000000000002.o",
                                         "00000000000000000000000000000003.o", "0000000000000000000000000000000f.o"};
    char p[4][900];
    for (int i = 0; i < 4; i++) {
        snprintf(p[i], sizeof p[i], "%s/%s", t.cache, names[i]);
        fake_entry(p[i], 600, i < 3 ? 7200 + 100 * (3 - i) : 60); /* three old ones, oldest first; one recent */
    }
    char stale[1000], recent[1000]; /* temporaries of a killed build and of a running one */
    snprintf(stale, sizeof stale, "%s.dnnc-tmp.999999", p[0]);
    snprintf(recent, sizeof recent, "%s.dnnc-tmp.999998", p[1]);
    fake_entry(stale, 1, 7200);
    fake_entry(recent, 1, 10);
    char env[900];
    snprintf(env, sizeof env, "%s DNNC_CACHE_MAX_MB=1", t.env);
    int k, d, c, f;
    cr_assert_eq(build(t.dir, env, "--no-train", "a.so"), 0, "%s", out);
    counts(&k, &d, &c, &f);
    struct stat st;
    for (int i = 0; i < 3; i++) cr_expect_neq(stat(p[i], &st), 0, "old entry %d kept", i);
    cr_expect_eq(stat(p[3], &st), 0, "an entry used a minute ago was removed");
    cr_expect_eq(entries(t.cache), d + 1);
    cr_expect_neq(stat(stale, &st), 0, "a temporary from two hours ago was kept");
    cr_expect_eq(stat(recent, &st), 0, "a temporary being written was removed");

    /* under the bound nothing goes, however old */
    fake_entry(p[0], 100, 7200);
    cr_assert_eq(build(t.dir, env, "--no-train", "b.so"), 0, "%s", out);
    cr_expect_eq(stat(p[0], &st), 0, "an entry was removed under the bound");
    dn_test_rmtree(t.dir);
}

/* One thread or two: the same library, training step included. */
Test(kernel_cache, the_library_does_not_depend_on_the_thread_count)
{
    char text[1024];
    snprintf(text, sizeof text,
             "%s\ntrain twins {\n  label: i32[N]\n  loss = cross_entropy(y, label)\n  optimizer = sgd(lr=0.1)\n}\n",
             model);
    Fixture t;
    setup(&t, text, "cache");
    const char *dir = t.dir;
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/m.so", dir);
    snprintf(b, sizeof b, "%s/one.so", dir);
    cr_assert_eq(build(dir, "", "--no-cache -j1", "m.so"), 0, "%s", out);
    cr_assert_eq(rename(a, b), 0);
    cr_assert_eq(build(dir, "", "--no-cache --jobs=2", "m.so"), 0, "%s", out);
    cr_expect(same_file(a, b), "-j1 and -j2 built different libraries");
    cr_expect_eq(build(dir, "", "--jobs=0", "m.so"), 2, "%s", out);
    cr_expect(strstr(out, "--jobs=0"), "%s", out);
    cr_expect_eq(build(dir, "", "-jx", "m.so"), 2, "%s", out);
    dn_test_rmtree(dir);
}

/* --emit=code prints the host module, then each distinct kernel's module,
 * whose body the wrappers of all its ops call. */
Test(kernel_cache, emit_code_shows_each_distinct_kernel_once)
{
    Fixture t;
    setup(&t, NULL, "cache");
    const char *dir = t.dir, *path = t.path;
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "'%s' '%s' --no-train --emit=code | grep -c '^; ---- kernel dense\\.'", DNNC_BIN, path);
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s", out);
    cr_expect_eq(atoi(out), 3, "dense kernel modules: %s", out);
    snprintf(cmd, sizeof cmd, "'%s' '%s' --no-train --emit=code | grep -c '^define hidden void @\"\\?dense\\.'",
             DNNC_BIN, path);
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s", out);
    cr_expect_eq(atoi(out), 3, "dense bodies defined: %s", out);
    snprintf(cmd, sizeof cmd, "'%s' '%s' --no-train --emit=code | grep -c '^define internal void @\"\\?k[0-9]*_dense'",
             DNNC_BIN, path);
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s", out);
    cr_expect_eq(atoi(out), 4, "dense wrappers: %s", out);
    dn_test_rmtree(dir);
}

/* ---- kernel_cache.c on its own ------------------------------------------------ */

Test(kernel_cache, hash_separates_strings_and_their_split)
{
    DnHash a = dn_hash_start(), b = dn_hash_start(), c = dn_hash_start();
    dn_hash_add_str(&a, "ab");
    dn_hash_add_str(&a, "c");
    dn_hash_add_str(&b, "a");
    dn_hash_add_str(&b, "bc");
    dn_hash_add_str(&c, "ab");
    dn_hash_add_str(&c, "c");
    char ha[33], hb[33], hc[33];
    dn_hash_hex(a, ha), dn_hash_hex(b, hb), dn_hash_hex(c, hc);
    cr_expect_str_neq(ha, hb);
    cr_expect_str_eq(ha, hc);
    cr_expect_eq(strlen(ha), 32);
    DnHash s1 = dn_hash_self(), s2 = dn_hash_self();
    cr_expect(s1.a == s2.a && s1.b == s2.b);
}

Test(kernel_cache, object_check_takes_only_whole_relocatable_objects)
{
    char dir[512], o[700], cmd[1600];
    dn_test_tmpdir(dir, sizeof dir, "kcache");
    snprintf(o, sizeof o, "%s/x.o", dir);
    snprintf(cmd, sizeof cmd, "cd '%s' && echo 'int f(void) { return 1; }' > x.c && cc -c x.c -o x.o", dir);
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s", out);
    cr_expect(dn_cache_object_ok(o));
    struct stat st;
    cr_assert_eq(stat(o, &st), 0);
    cr_assert_eq(truncate(o, st.st_size - 1), 0);
    cr_expect(!dn_cache_object_ok(o), "a truncated object passes");
    put(o, "not an object at all, but long enough to hold an ELF header......");
    cr_expect(!dn_cache_object_ok(o));
    snprintf(o, sizeof o, "%s/missing.o", dir);
    cr_expect(!dn_cache_object_ok(o));
    dn_test_rmtree(dir);
}
