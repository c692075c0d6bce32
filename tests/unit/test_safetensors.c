/* test_safetensors.c -- the safetensors reader and writer, and session
 * load/save on top of them: round trips (f32, i32, i64, rank 0, empty
 * tensors, metadata with escapes), every kind of damaged file (each error
 * must name the file and, where there is one, the tensor), strict loading
 * (shape, dtype, missing, unknown, optimizer group, step), atomic saving
 * (a failed save leaves the previous file intact), and fault injection.
 * Issue 7 ("nothing crashes, hangs or loses data"): FIFOs and other files
 * that are not regular are refused without blocking; the header and entry
 * limits, in time linear in the header; a huge file costs only its header;
 * every integer of a file is range-checked, naming its field; a file
 * truncated while being read is an error; killed saves leave temporary files
 * that the next save removes (and nothing else). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dnrt.h"
#include "runtime/fault.h"
#include "runtime/safetensors.h"

static char dir[64];

static void make_dir(void)
{
    strcpy(dir, "/tmp/dnrt_st_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(st, .init = make_dir, .fini = remove_dir);
TestSuite(load, .init = make_dir, .fini = remove_dir);

static const char *in_dir(const char *name)
{
    static char buf[4][256];
    static int slot;
    char *p = buf[slot++ % 4];
    snprintf(p, 256, "%s/%s", dir, name);
    return p;
}

/* Writes a file by hand: 8-byte length 'hlen' (the header's own length
 * when hlen < 0), the header text, then 'ndata' bytes of data. */
static const char *raw_file(const char *name, const char *header, long long hlen, size_t ndata)
{
    const char *path = in_dir(name);
    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp);
    uint64_t len = hlen < 0 ? strlen(header) : (uint64_t)hlen;
    for (int i = 0; i < 8; i++) fputc((int)(len >> (8 * i) & 0xff), fp);
    fputs(header, fp);
    for (size_t i = 0; i < ndata; i++) fputc((int)i, fp);
    fclose(fp);
    return path;
}

static void expect_read_error(const char *path, int code, const char *needle)
{
    dnrt_st_file f;
    dnrt_error err = {0};
    cr_assert_eq(dnrt_st_read(path, &f, &err), -1, "read of '%s' succeeded", path);
    cr_assert_eq(err.code, code, "code %d: %s", err.code, err.message);
    cr_assert(strncmp(err.message, path, strlen(path)) == 0, "message does not start with the path: %s", err.message);
    cr_assert(strstr(err.message, needle), "message '%s' lacks '%s'", err.message, needle);
    cr_assert_null(f.image);
}

/* ---- round trips ------------------------------------------------------- */

Test(st, round_trip_all_dtypes)
{
    float a[6] = {1.5f, -2, 3, 4, 5, 6e-30f};
    int32_t b[5] = {-1, 0, 1, 2147483647, -2147483647 - 1};
    int64_t c = -1234567890123LL;
    dnrt_st_tensor t[] = {
        {.name = "layer.0.weight", .dtype = DNRT_F32, .rank = 2, .dim = {2, 3}, .data = a, .nbytes = sizeof a},
        {.name = "idx", .dtype = DNRT_I32, .rank = 1, .dim = {5}, .data = b, .nbytes = sizeof b},
        {.name = "count", .dtype = DNRT_I64, .rank = 0, .data = &c, .nbytes = 8},
        {.name = "empty \"q\" \\ \t", .dtype = DNRT_F32, .rank = 2, .dim = {0, 4}, .data = NULL, .nbytes = 0},
    };
    const char *keys[] = {"format", "note"}, *values[] = {"pt", "caf\xc3\xa9 \"quoted\"\n"};
    const char *path = in_dir("rt.safetensors");
    dnrt_error err = {0};
    cr_assert_eq(dnrt_st_write(path, 4, t, 2, keys, values, &err), 0, "%s", err.message);

    dnrt_st_file f;
    cr_assert_eq(dnrt_st_read(path, &f, &err), 0, "%s", err.message);
    cr_assert_eq(f.ntensors, 4);
    uint64_t hlen = 0;
    memcpy(&hlen, f.image, 8);
    cr_assert_eq((8 + hlen) % 8, 0, "data section not 8-aligned");
    for (int i = 0; i < 4; i++) {
        const dnrt_st_tensor *g = dnrt_st_find(&f, t[i].name);
        cr_assert_not_null(g, "tensor '%s' lost", t[i].name);
        cr_assert_eq(g->dtype, t[i].dtype);
        cr_assert_eq(g->rank, t[i].rank);
        for (int k = 0; k < t[i].rank; k++) cr_assert_eq(g->dim[k], t[i].dim[k]);
        cr_assert_eq(g->nbytes, t[i].nbytes);
        cr_assert(t[i].nbytes == 0 || memcmp(g->data, t[i].data, t[i].nbytes) == 0);
    }
    cr_assert_str_eq(dnrt_st_find(&f, "idx")->dtype_name, "I32");
    cr_assert_str_eq(dnrt_st_meta(&f, "note"), values[1]);
    cr_assert_str_eq(dnrt_st_meta(&f, "format"), "pt");
    cr_assert_null(dnrt_st_meta(&f, "absent"));
    cr_assert_null(dnrt_st_find(&f, "absent"));
    dnrt_st_free(&f);
}

Test(st, reads_escapes_other_dtypes_and_padding)
{
    /* \u escapes incl. a surrogate pair, a dtype dnnc does not use (F16),
     * whitespace and trailing padding */
    const char *h = "{ \"w\\u00e9\\ud83d\\ude00\" : {\"shape\": [2], \"dtype\": \"F16\", \"data_offsets\": [0, 4]},"
                    " \"__metadata__\": {} }    ";
    const char *path = raw_file("esc.safetensors", h, -1, 4);
    dnrt_st_file f;
    dnrt_error err = {0};
    cr_assert_eq(dnrt_st_read(path, &f, &err), 0, "%s", err.message);
    cr_assert_eq(f.ntensors, 1);
    cr_assert_str_eq(f.tensors[0].name, "w\xc3\xa9\xf0\x9f\x98\x80");
    cr_assert_eq(f.tensors[0].dtype, -1);
    cr_assert_str_eq(f.tensors[0].dtype_name, "F16");
    cr_assert_eq(f.nmeta, 0);
    dnrt_st_free(&f);
}

Test(st, empty_file_object)
{
    const char *path = raw_file("empty.safetensors", "{}", -1, 0);
    dnrt_st_file f;
    cr_assert_eq(dnrt_st_read(path, &f, NULL), 0);
    cr_assert_eq(f.ntensors, 0);
    dnrt_st_free(&f);
}

/* ---- damaged files --------------------------------------------------------- */

#define T1 "\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

Test(st, missing_file) { expect_read_error(in_dir("nope.safetensors"), DNRT_ERR_IO, "cannot open"); }

Test(st, truncated_files)
{
    expect_read_error(raw_file("a", "", 0, 0), DNRT_ERR_FORMAT, "header length 0");
    const char *p = in_dir("tiny");
    FILE *fp = fopen(p, "wb");
    fputs("abc", fp);
    fclose(fp);
    expect_read_error(p, DNRT_ERR_FORMAT, "too short");
    /* data cut off: the tensor's bytes run past the end */
    expect_read_error(raw_file("b", "{" T1 "}", -1, 5), DNRT_ERR_FORMAT,
                      "tensor 't': data_offsets [0, 8] outside the data section (5 bytes)");
}

Test(st, header_length_too_big)
{
    expect_read_error(raw_file("a", "{}", 1000, 0), DNRT_ERR_FORMAT, "header length 1000");
    expect_read_error(raw_file("b", "{}", 1LL << 62, 0), DNRT_ERR_FORMAT, "header length");
}

Test(st, bad_json)
{
    struct {
        const char *header, *needle;
    } cases[] = {
        {"{" T1, "expected '}'"},
        {"[]", "expected '{'"},
        {"{\"t\" 1}", "expected ':'"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2,],\"data_offsets\":[0,8]}}", "expected an integer"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", "expected an integer"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}", "too large"},
        {"{\"t\":{\"dtype\":F32,\"shape\":[2],\"data_offsets\":[0,8]}}", "expected '\"'"},
        {"{\"t\\x\":{}}", "bad escape"},
        {"{\"t\\ud800\":{}}", "unpaired surrogate"},
        {"{\"t\n\":{}}", "control character"},
        {"{\"unterminated", "unterminated string"},
        {"{" T1 "} x", "unexpected text after the header"},
        {"{" T1 "," T1 "}", "tensor 't' appears twice"},
        {"{\"__metadata__\":{\"a\":1}}", "metadata values must be strings"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", "duplicate \"__metadata__\""},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}",
         "tensor 't': unknown field 'extra'"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2]}}", "tensor 't': missing \"data_offsets\""},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", "data_offsets needs 2 integers"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", "too many elements"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "bad%zu", i);
        expect_read_error(raw_file(name, cases[i].header, -1, 16), DNRT_ERR_FORMAT, cases[i].needle);
    }
}

Test(st, inconsistent_entries)
{
    struct {
        const char *header, *needle;
    } cases[] = {
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,24]}}",
         "tensor 't': data_offsets [8, 24] outside the data section (16 bytes)"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,4]}}", "tensor 't': data_offsets [8, 4]"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-4,4]}}", "tensor 't': data_offsets [-4, 4]"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
         "tensor 't': F32[3] needs 12 bytes, data_offsets give 8"},
        {"{\"t\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", "tensor 't': unknown dtype 'Q7'"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "tensor 't': bad shape F32[-2]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         "tensors 'a' and 'b' overlap"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "inc%zu", i);
        expect_read_error(raw_file(name, cases[i].header, -1, 16), DNRT_ERR_FORMAT, cases[i].needle);
    }
}

Test(st, write_rejects_bad_tensors)
{
    float x[2] = {0};
    dnrt_st_tensor t = {.name = "x", .dtype = DNRT_F32, .rank = 1, .dim = {3}, .data = x, .nbytes = sizeof x};
    dnrt_error err;
    cr_assert_eq(dnrt_st_write(in_dir("w"), 1, &t, 0, NULL, NULL, &err), -1);
    cr_assert_eq(err.code, DNRT_ERR_ARG);
    cr_assert(strstr(err.message, "tensor 'x'"), "%s", err.message);
    cr_assert_eq(access(in_dir("w"), F_OK), -1, "nothing may be written");
}

/* ---- atomic save ------------------------------------------------------------ */

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Entries of the test folder, hidden ones (temporary files) included. */
static int count_entries(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static char *slurp(const char *path, long *size)
{
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp);
    *size = file_size(path);
    char *p = malloc((size_t)*size + 1);
    cr_assert_eq(fread(p, 1, (size_t)*size, fp), (size_t)*size);
    fclose(fp);
    return p;
}

Test(st, failed_write_keeps_previous_file)
{
    float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
    dnrt_st_tensor t = {.name = "x", .dtype = DNRT_F32, .rank = 1, .dim = {4}, .data = a, .nbytes = 16};
    const char *path = in_dir("keep.safetensors");
    dnrt_error err;
    cr_assert_eq(dnrt_st_write(path, 1, &t, 0, NULL, NULL, &err), 0, "%s", err.message);
    long size0;
    char *before = slurp(path, &size0);
    t.data = b;
    int failures = 0;
    for (int nth = 1; nth < 50; nth++) {
        dnrt_fault_fail_io(nth);
        int rc = dnrt_st_write(path, 1, &t, 0, NULL, NULL, &err);
        dnrt_fault_fail_io(0);
        if (rc == 0) break;
        failures++;
        cr_assert_eq(err.code, DNRT_ERR_IO, "%s", err.message);
        cr_assert(strstr(err.message, path), "%s", err.message);
        long size1;
        char *after = slurp(path, &size1);
        cr_assert(size1 == size0 && memcmp(before, after, (size_t)size0) == 0, "file changed by failed write %d", nth);
        free(after);
        cr_assert_eq(count_entries(), 1, "temporary file left behind after failure %d", nth);
    }
    cr_assert_geq(failures, 5); /* create, 3 writes, fsync, rename */
    dnrt_st_file f;
    cr_assert_eq(dnrt_st_read(path, &f, &err), 0);
    cr_assert(memcmp(f.tensors[0].data, b, 16) == 0);
    dnrt_st_free(&f);
    free(before);
}

Test(st, write_to_missing_folder_or_directory_fails)
{
    float a[1] = {1};
    dnrt_st_tensor t = {.name = "x", .dtype = DNRT_F32, .rank = 1, .dim = {1}, .data = a, .nbytes = 4};
    dnrt_error err;
    const char *p = in_dir("no/such/folder/x.safetensors");
    cr_assert_eq(dnrt_st_write(p, 1, &t, 0, NULL, NULL, &err), -1);
    cr_assert_eq(err.code, DNRT_ERR_IO);
    cr_assert(strstr(err.message, p), "%s", err.message);
    /* the destination is a directory: rename fails, the directory stays */
    const char *d = in_dir("adir");
    cr_assert_eq(mkdir(d, 0755), 0);
    cr_assert_eq(dnrt_st_write(d, 1, &t, 0, NULL, NULL, &err), -1);
    cr_assert_eq(err.code, DNRT_ERR_IO, "%s", err.message);
    struct stat st;
    cr_assert(stat(d, &st) == 0 && S_ISDIR(st.st_mode));
    cr_assert_eq(count_entries(), 1, "temporary file left behind");
}

Test(st, read_survives_fault_injection)
{
    float a[3] = {1, 2, 3};
    dnrt_st_tensor t[2] = {{.name = "x", .dtype = DNRT_F32, .rank = 1, .dim = {3}, .data = a, .nbytes = 12},
                           {.name = "y", .dtype = DNRT_F32, .rank = 1, .dim = {3}, .data = a, .nbytes = 12}};
    const char *k[] = {"m"}, *v[] = {"1"};
    const char *path = in_dir("f.safetensors");
    cr_assert_eq(dnrt_st_write(path, 2, t, 1, k, v, NULL), 0);
    int failures = 0;
    for (int nth = 1; nth < 50; nth++) {
        dnrt_st_file f;
        dnrt_error err;
        dnrt_fault_fail_alloc(nth);
        int rc = dnrt_st_read(path, &f, &err);
        dnrt_fault_fail_alloc(0);
        if (rc == 0) {
            cr_assert_eq(f.ntensors, 2);
            dnrt_st_free(&f);
            break;
        }
        failures++;
        cr_assert_eq(err.code, DNRT_ERR_NOMEM, "%s", err.message);
    }
    cr_assert_geq(failures, 3);
    for (int nth = 1; nth <= 2; nth++) {
        dnrt_st_file f;
        dnrt_error err;
        dnrt_fault_fail_io(nth);
        cr_assert_eq(dnrt_st_read(path, &f, &err), -1);
        dnrt_fault_fail_io(0);
        cr_assert_eq(err.code, DNRT_ERR_IO, "%s", err.message);
    }
}

/* ---- session load / save ------------------------------------------------------ */

/* A model with two weights, a buffer and two optimizer tensors; its entry
 * functions are never the point here (train adds 1 to every weight). */
enum { OFF_W = 0, OFF_B = 64, OFF_N = 128, OFF_MW = 192, OFF_MB = 256, BYTES = 320 };

static int32_t infer_nothing(const dnrt_call *c)
{
    (void)c;
    return 0;
}
static int32_t train_bump(const dnrt_call *c)
{
    float *w = (float *)(c->state + OFF_W), *m = (float *)(c->state + OFF_MW);
    for (int i = 0; i < 6; i++) w[i] += 1.0f, m[i] += 0.5f;
    *(float *)c->outputs[0] = 0.0f;
    return 0;
}

static const dnrt_tensor_desc state[] = {
    {.name = "fc.weight",
     .dtype = DNRT_F32,
     .rank = 2,
     .dim = {2, 3},
     .offset = OFF_W,
     .kind = DNRT_STATE_WEIGHT,
     .trainable = 1,
     .init = DNRT_INIT_NORMAL,
     .init_a = 0,
     .init_b = 1},
    {.name = "fc.bias",
     .dtype = DNRT_F32,
     .rank = 1,
     .dim = {2},
     .offset = OFF_B,
     .kind = DNRT_STATE_WEIGHT,
     .trainable = 1,
     .init = DNRT_INIT_UNIFORM,
     .init_a = -1,
     .init_b = 1},
    {.name = "bn.num_batches_tracked", .dtype = DNRT_I64, .rank = 0, .offset = OFF_N, .kind = DNRT_STATE_BUFFER},
    {.name = "optim.fc.weight.m",
     .dtype = DNRT_F32,
     .rank = 2,
     .dim = {2, 3},
     .offset = OFF_MW,
     .kind = DNRT_STATE_OPTIM},
    {.name = "optim.fc.bias.m", .dtype = DNRT_F32, .rank = 1, .dim = {2}, .offset = OFF_MB, .kind = DNRT_STATE_OPTIM},
};
static const dnrt_tensor_desc io = {.name = "x", .dtype = DNRT_F32, .rank = 1, .dim = {-1}};
static const dnrt_model_desc desc = {
    .abi_version = DNRT_ABI_VERSION,
    .name = "tiny",
    .ninputs = 1,
    .inputs = &io,
    .noutputs = 1,
    .outputs = &io,
    .nstate = 5,
    .state = state,
    .state_bytes = BYTES,
    .infer = infer_nothing,
    .trains = 1,
    .train = train_bump,
    .lr = 0.1f,
    .api = &dnrt_api_v1,
};

static dnrt_session *make(uint64_t seed)
{
    dnrt_options opt = {.threads = 1, .seed = seed};
    dnrt_error err;
    dnrt_session *s = dnrt_session_create(&desc, &opt, &err);
    cr_assert_not_null(s, "%s", err.message);
    return s;
}

static void train(dnrt_session *s, int steps)
{
    float x = 0, loss;
    const void *ins[] = {&x};
    for (int i = 0; i < steps; i++) cr_assert_eq(dnrt_session_train_step(s, 1, ins, &loss, NULL), 0);
}

static void same_state(dnrt_session *a, dnrt_session *b)
{
    for (int i = 0; i < desc.nstate; i++)
        cr_assert(memcmp(dnrt_session_state(a, state[i].name), dnrt_session_state(b, state[i].name),
                         i == 2 ? 8 : state[i].dim[0] * (state[i].rank == 2 ? state[i].dim[1] : 1) * 4) == 0,
                  "'%s' differs", state[i].name);
}

/* Writes the tensors of 'a' plus 'extra' (may be NULL) except 'skip'. */
static const char *write_variant(dnrt_session *a, const char *name, const char *skip, const dnrt_st_tensor *extra,
                                 const char *step)
{
    dnrt_st_tensor t[8];
    int n = 0;
    for (int i = 0; i < desc.nstate; i++) {
        if (skip && strcmp(state[i].name, skip) == 0) continue;
        t[n] = (dnrt_st_tensor){.name = state[i].name,
                                .dtype = state[i].dtype,
                                .rank = state[i].rank,
                                .data = dnrt_session_state(a, state[i].name)};
        memcpy(t[n].dim, state[i].dim, sizeof state[i].dim);
        t[n].nbytes = (size_t)(state[i].dtype == DNRT_I64 ? 8 : 4 * state[i].dim[0] * (state[i].rank == 2 ? 3 : 1));
        n++;
    }
    if (extra) t[n++] = *extra;
    const char *k[] = {"dnnc.step"}, *v[] = {step};
    const char *path = in_dir(name);
    dnrt_error err;
    cr_assert_eq(dnrt_st_write(path, n, t, step ? 1 : 0, k, v, &err), 0, "%s", err.message);
    return path;
}

/* Expects load to fail with 'needle' and leave the whole state block
 * (which starts at fc.weight, offset 0) and the step untouched. */
static void expect_load_error(dnrt_session *s, const char *path, const char *needle)
{
    float before[BYTES / 4];
    memcpy(before, dnrt_session_state(s, "fc.weight"), BYTES);
    int64_t step = dnrt_session_get_step(s);
    dnrt_error err = {0};
    cr_assert_eq(dnrt_session_load(s, path, &err), -1, "load of %s succeeded", path);
    cr_assert_eq(err.code, DNRT_ERR_FORMAT, "code %d: %s", err.code, err.message);
    cr_assert(strncmp(err.message, path, strlen(path)) == 0, "message lacks the path: %s", err.message);
    cr_assert(strstr(err.message, needle), "message '%s' lacks '%s'", err.message, needle);
    cr_assert(memcmp(before, dnrt_session_state(s, "fc.weight"), BYTES) == 0, "failed load changed the state");
    cr_assert_eq(dnrt_session_get_step(s), step);
}

Test(load, save_then_load_restores_everything)
{
    dnrt_session *a = make(1), *b = make(2);
    train(a, 3);
    *(int64_t *)dnrt_session_state(a, "bn.num_batches_tracked") = 77;
    const char *path = in_dir("a.safetensors");
    dnrt_error err;
    cr_assert_eq(dnrt_session_save(a, path, &err), 0, "%s", err.message);
    cr_assert_eq(dnrt_session_load(b, path, &err), 0, "%s", err.message);
    same_state(a, b);
    cr_assert_eq(dnrt_session_get_step(b), 3);
    dnrt_st_file f;
    cr_assert_eq(dnrt_st_read(path, &f, NULL), 0);
    cr_assert_str_eq(dnrt_st_meta(&f, "dnnc.model"), "tiny");
    cr_assert_str_eq(dnrt_st_meta(&f, "dnnc.step"), "3");
    cr_assert_eq(f.ntensors, 5);
    dnrt_st_free(&f);
    /* the API table's entries are the same functions */
    cr_assert_eq(desc.api->save(b, path, NULL), 0);
    cr_assert_eq(desc.api->load(a, path, NULL), 0);
    dnrt_session_destroy(a);
    dnrt_session_destroy(b);
}

Test(load, without_optimizer_state_resets_it)
{
    dnrt_session *a = make(1), *b = make(2);
    train(b, 5);
    /* weights and buffer only (as from a PyTorch state_dict), with a step */
    const char *p1 = write_variant(a, "w1", "optim.fc.weight.m", NULL, "9");
    expect_load_error(b, p1, "missing tensor 'optim.fc.weight.m' (optimizer state must be complete or absent)");
    const char *p2 = in_dir("weights_only");
    {
        dnrt_st_tensor t[3];
        for (int i = 0; i < 3; i++) {
            t[i] = (dnrt_st_tensor){.name = state[i].name,
                                    .dtype = state[i].dtype,
                                    .rank = state[i].rank,
                                    .data = dnrt_session_state(a, state[i].name),
                                    .nbytes = (size_t)(i == 0 ? 24 : 8)};
            memcpy(t[i].dim, state[i].dim, sizeof state[i].dim);
        }
        cr_assert_eq(dnrt_st_write(p2, 3, t, 0, NULL, NULL, NULL), 0);
    }
    dnrt_error err;
    cr_assert_eq(dnrt_session_load(b, p2, &err), 0, "%s", err.message);
    cr_assert_eq(dnrt_session_get_step(b), 0);
    const float *m = dnrt_session_state(b, "optim.fc.weight.m");
    for (int i = 0; i < 6; i++) cr_assert_eq(m[i], 0.0f);
    cr_assert(memcmp(dnrt_session_state(a, "fc.weight"), dnrt_session_state(b, "fc.weight"), 24) == 0);
    dnrt_session_destroy(a);
    dnrt_session_destroy(b);
}

/* An inference library (no optimizer state) loads a training checkpoint:
 * the optimizer's entries are skipped, anything else unknown still fails. */
Test(load, inference_library_skips_optimizer_entries)
{
    dnrt_session *a = make(1);
    train(a, 2);
    const char *path = in_dir("checkpoint.safetensors");
    dnrt_error err;
    cr_assert_eq(dnrt_session_save(a, path, &err), 0, "%s", err.message);
    dnrt_model_desc infer_only = desc;
    infer_only.nstate = 3; /* fc.weight, fc.bias, bn.num_batches_tracked */
    infer_only.trains = 0;
    infer_only.train = NULL;
    dnrt_options opt = {.threads = 1, .seed = 5};
    dnrt_session *b = dnrt_session_create(&infer_only, &opt, &err);
    cr_assert_not_null(b, "%s", err.message);
    cr_assert_eq(dnrt_session_load(b, path, &err), 0, "%s", err.message);
    cr_assert(memcmp(dnrt_session_state(a, "fc.weight"), dnrt_session_state(b, "fc.weight"), 24) == 0);
    dnrt_st_tensor extra = {
        .name = "fc2.weight", .dtype = DNRT_F32, .rank = 1, .dim = {2}, .data = "01234567", .nbytes = 8};
    expect_load_error(b, write_variant(a, "x1", NULL, &extra, NULL), "unexpected tensor 'fc2.weight'");
    dnrt_session_destroy(a);
    dnrt_session_destroy(b);
}

Test(load, strict_errors_name_the_tensor)
{
    dnrt_session *a = make(1), *b = make(2);
    float w3[4] = {0};
    dnrt_st_tensor wrong_shape = {
        .name = "fc.bias", .dtype = DNRT_F32, .rank = 1, .dim = {4}, .data = w3, .nbytes = 16};
    dnrt_st_tensor wrong_rank = {
        .name = "fc.weight", .dtype = DNRT_F32, .rank = 1, .dim = {4}, .data = w3, .nbytes = 16};
    dnrt_st_tensor wrong_dtype = {.name = "fc.bias", .dtype = DNRT_I32, .rank = 1, .dim = {2}, .data = w3, .nbytes = 8};
    dnrt_st_tensor f16 = {
        .name = "fc.bias", .dtype = -1, .dtype_name = "F16", .rank = 1, .dim = {2}, .data = w3, .nbytes = 4};
    dnrt_st_tensor extra = {.name = "fc2.weight", .dtype = DNRT_F32, .rank = 1, .dim = {4}, .data = w3, .nbytes = 16};
    expect_load_error(b, write_variant(a, "s1", "fc.bias", &wrong_shape, NULL),
                      "tensor 'fc.bias': expected f32[2], got f32[4]");
    expect_load_error(b, write_variant(a, "s2", "fc.weight", &wrong_rank, NULL),
                      "tensor 'fc.weight': expected f32[2, 3], got f32[4]");
    expect_load_error(b, write_variant(a, "s3", "fc.bias", &wrong_dtype, NULL),
                      "tensor 'fc.bias': expected f32[2], got i32[2]");
    expect_load_error(b, write_variant(a, "s4", "fc.bias", &f16, NULL),
                      "tensor 'fc.bias': expected f32[2], got f16[2]");
    expect_load_error(b, write_variant(a, "s5", "fc.bias", NULL, NULL), "missing tensor 'fc.bias'");
    expect_load_error(b, write_variant(a, "s6", "bn.num_batches_tracked", NULL, NULL),
                      "missing tensor 'bn.num_batches_tracked'");
    expect_load_error(b, write_variant(a, "s7", NULL, &extra, NULL), "unexpected tensor 'fc2.weight'");
    expect_load_error(b, write_variant(a, "s8", NULL, NULL, "-3"), "dnnc.step = '-3'");
    expect_load_error(b, write_variant(a, "s9", NULL, NULL, "12x"), "dnnc.step = '12x'");
    /* damaged file: the reader's error comes through */
    expect_load_error(b, raw_file("s10", "{", -1, 0), "header");
    dnrt_error err;
    cr_assert_eq(dnrt_session_load(b, in_dir("missing"), &err), -1);
    cr_assert_eq(err.code, DNRT_ERR_IO);
    cr_assert_eq(dnrt_session_load(NULL, "x", &err), -1);
    cr_assert_eq(err.code, DNRT_ERR_ARG);
    cr_assert_eq(dnrt_session_load(b, NULL, &err), -1);
    cr_assert_eq(dnrt_session_save(b, NULL, &err), -1);
    cr_assert_eq(err.code, DNRT_ERR_ARG);
    /* a complete file with a step loads */
    cr_assert_eq(dnrt_session_load(b, write_variant(a, "ok", NULL, NULL, "41"), &err), 0, "%s", err.message);
    cr_assert_eq(dnrt_session_get_step(b), 41);
    same_state(a, b);
    dnrt_session_destroy(a);
    dnrt_session_destroy(b);
}

Test(load, failed_save_keeps_previous_file)
{
    dnrt_session *a = make(1);
    const char *path = in_dir("model.safetensors");
    cr_assert_eq(dnrt_session_save(a, path, NULL), 0);
    long size0;
    char *before = slurp(path, &size0);
    train(a, 1);
    dnrt_error err;
    dnrt_fault_fail_io(3); /* a write in the middle of the file */
    int rc = dnrt_session_save(a, path, &err);
    dnrt_fault_fail_io(0);
    cr_assert_eq(rc, -1);
    cr_assert_eq(err.code, DNRT_ERR_IO);
    cr_assert(strstr(err.message, "the previous file is unchanged"), "%s", err.message);
    long size1;
    char *after = slurp(path, &size1);
    cr_assert(size0 == size1 && memcmp(before, after, (size_t)size0) == 0);
    cr_assert_eq(count_entries(), 1);
    cr_assert_eq(dnrt_session_save(a, in_dir("gone/model.safetensors"), &err), -1);
    cr_assert_eq(err.code, DNRT_ERR_IO);
    cr_assert(strstr(err.message, "gone/model.safetensors"), "%s", err.message);
    free(before);
    free(after);
    dnrt_session_destroy(a);
}

Test(load, survives_fault_injection)
{
    dnrt_session *a = make(1), *b = make(2);
    train(a, 2);
    const char *path = in_dir("a.safetensors");
    cr_assert_eq(dnrt_session_save(a, path, NULL), 0);
    for (int nth = 1; nth < 50; nth++) {
        dnrt_error err;
        dnrt_fault_fail_alloc(nth);
        int rc = dnrt_session_load(b, path, &err);
        dnrt_fault_fail_alloc(0);
        if (rc == 0) break;
        cr_assert_eq(err.code, DNRT_ERR_NOMEM, "%s", err.message);
        cr_assert_eq(dnrt_session_get_step(b), 0, "failed load changed the step");
    }
    same_state(a, b);
    for (int nth = 1; nth < 50; nth++) {
        dnrt_error err;
        dnrt_fault_fail_alloc(nth);
        int rc = dnrt_session_save(b, in_dir("b.safetensors"), &err);
        dnrt_fault_fail_alloc(0);
        if (rc == 0) break;
        cr_assert_eq(err.code, DNRT_ERR_NOMEM, "%s", err.message);
    }
    dnrt_session_destroy(a);
    dnrt_session_destroy(b);
}

/* ---- issue 7: nothing crashes, hangs or loses data ---------------------------- */

/* Like expect_load_error for any error code: the load fails with 'code'
 * and 'needle', and the state block and the step stay bit-identical. */
static void expect_load_failure(dnrt_session *s, const char *path, int code, const char *needle)
{
    float before[BYTES / 4];
    memcpy(before, dnrt_session_state(s, "fc.weight"), BYTES);
    int64_t step = dnrt_session_get_step(s);
    dnrt_error err = {0};
    cr_assert_eq(dnrt_session_load(s, path, &err), -1, "load of %s succeeded", path);
    cr_assert_eq(err.code, code, "code %d: %s", err.code, err.message);
    cr_assert(strncmp(err.message, path, strlen(path)) == 0, "message lacks the path: %s", err.message);
    cr_assert(strstr(err.message, needle), "message '%s' lacks '%s'", err.message, needle);
    cr_assert(memcmp(before, dnrt_session_state(s, "fc.weight"), BYTES) == 0, "failed load changed the state");
    cr_assert_eq(dnrt_session_get_step(s), step);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Peak resident set size of this test's process, in MiB. */
static double peak_rss_mib(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_maxrss / 1024.0;
}

/* A FIFO without a writer blocked fopen forever.  The timeout turns such a
 * regression into a failure instead of a hung suite. */
Test(load, fifo_directory_and_device_are_refused_at_once, .timeout = 20)
{
    const char *fifo = in_dir("weights.fifo");
    cr_assert_eq(mkfifo(fifo, 0600), 0, "mkfifo: %s", strerror(errno));
    double t0 = now();
    expect_read_error(fifo, DNRT_ERR_IO, "cannot read: a FIFO, not a regular file");
    dnrt_session *s = make(1);
    train(s, 2);
    expect_load_failure(s, fifo, DNRT_ERR_IO, "a FIFO, not a regular file");
    /* with a writer attached, reads would block instead of open */
    int w = open(fifo, O_RDWR | O_NONBLOCK);
    cr_assert_geq(w, 0);
    expect_load_failure(s, fifo, DNRT_ERR_IO, "a FIFO, not a regular file");
    close(w);
    const char *sub = in_dir("folder");
    cr_assert_eq(mkdir(sub, 0755), 0);
    expect_load_failure(s, sub, DNRT_ERR_IO, "a directory, not a regular file");
    /* a character device (some sandboxes replace /dev/null with a plain file) */
    const char *devs[] = {"/dev/zero", "/dev/full", "/dev/urandom", "/dev/null"}, *dev = NULL;
    struct stat st;
    for (size_t i = 0; !dev && i < sizeof devs / sizeof devs[0]; i++)
        if (stat(devs[i], &st) == 0 && S_ISCHR(st.st_mode)) dev = devs[i];
    if (dev) {
        expect_read_error(dev, DNRT_ERR_IO, "a character device, not a regular file");
        expect_load_failure(s, dev, DNRT_ERR_IO, "a character device, not a regular file");
    }
    cr_assert_lt(now() - t0, 5.0);
    dnrt_session_destroy(s);
}

/* A header of 'n' tensors t0, t1, ... (F32[1] each, contiguous) whose
 * entry 'dup' (if >= 0) repeats the name of entry 0, and 'nmeta' metadata
 * pairs; 4 * n data bytes.  Returns the path. */
static const char *many_tensors(const char *name, int n, int dup, int nmeta)
{
    size_t cap = (size_t)(n + nmeta) * 80 + 64, len = 0;
    char *h = malloc(cap);
    cr_assert_not_null(h);
    len += (size_t)sprintf(h + len, "{\"__metadata__\":{");
    for (int i = 0; i < nmeta; i++) len += (size_t)sprintf(h + len, "%s\"k%d\":\"v\"", i ? "," : "", i);
    len += (size_t)sprintf(h + len, "}");
    for (int i = 0; i < n; i++)
        len += (size_t)sprintf(h + len, ",\"t%d\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%d,%d]}",
                               i == dup ? 0 : i, 4 * i, 4 * i + 4);
    len += (size_t)sprintf(h + len, "}");
    cr_assert_lt(len, cap);
    const char *path = in_dir(name);
    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp);
    for (int i = 0; i < 8; i++) fputc((int)((uint64_t)len >> (8 * i) & 0xff), fp);
    cr_assert_eq(fwrite(h, 1, len, fp), len);
    cr_assert_eq(ftruncate(fileno(fp), (off_t)(8 + len + 4 * (size_t)n)), 0);
    fclose(fp);
    free(h);
    return path;
}

/* The duplicate check was quadratic: 200,000 tensors were not rejected
 * after 10 minutes.  Now the count is capped and the checks are linear. */
Test(st, many_tensors_are_capped_and_fast, .timeout = 60)
{
    char needle[96];
    snprintf(needle, sizeof needle, "more than %d tensors (the limit, DNRT_ST_MAX_ENTRIES)", DNRT_ST_MAX_ENTRIES);
    const char *p200k = many_tensors("200k", 200000, -1, 0);
    double t0 = now();
    expect_read_error(p200k, DNRT_ERR_FORMAT, needle);
    double t200k = now() - t0;
    /* at the limit, with the last entry repeating the first: found in linear time */
    const char *pdup = many_tensors("dup", DNRT_ST_MAX_ENTRIES, DNRT_ST_MAX_ENTRIES - 1, 0);
    t0 = now();
    expect_read_error(pdup, DNRT_ERR_FORMAT, "tensor 't0' appears twice");
    double tdup = now() - t0;
    /* at the limit, all distinct: reads, and every name is found */
    const char *pok = many_tensors("ok", DNRT_ST_MAX_ENTRIES, -1, 0);
    dnrt_st_file f;
    dnrt_error err;
    t0 = now();
    cr_assert_eq(dnrt_st_read(pok, &f, &err), 0, "%s", err.message);
    double tok = now() - t0;
    cr_assert_eq(f.ntensors, DNRT_ST_MAX_ENTRIES);
    char name[16];
    for (int i = 0; i < DNRT_ST_MAX_ENTRIES; i += 997) {
        snprintf(name, sizeof name, "t%d", i);
        const dnrt_st_tensor *t = dnrt_st_find(&f, name);
        cr_assert(t && t->data_offsets[0] == 4 * i, "'%s' not found", name);
    }
    dnrt_st_free(&f);
    cr_log_info("200,000 tensors refused in %.3f s; %d with a duplicate in %.3f s; read in %.3f s", t200k,
                DNRT_ST_MAX_ENTRIES, tdup, tok);
    cr_expect_lt(t200k, 1.0);
    cr_expect_lt(tdup, 1.0);
    cr_expect_lt(tok, 1.0);
    /* metadata pairs have the same limit, and a key may not appear twice */
    snprintf(needle, sizeof needle, "more than %d metadata pairs (the limit", DNRT_ST_MAX_ENTRIES);
    expect_read_error(many_tensors("meta", 1, -1, DNRT_ST_MAX_ENTRIES + 1), DNRT_ERR_FORMAT, needle);
    expect_read_error(raw_file("dupmeta", "{\"__metadata__\":{\"dnnc.step\":\"1\",\"dnnc.step\":\"2\"}}", -1, 0),
                      DNRT_ERR_FORMAT, "metadata key 'dnnc.step' appears twice");
}

/* A header length over the format's limit is refused before anything of
 * that size is allocated (the file is sparse). */
Test(st, header_over_the_limit)
{
    char needle[96];
    snprintf(needle, sizeof needle, "header length %d is over the limit of %d bytes (DNRT_ST_MAX_HEADER)",
             DNRT_ST_MAX_HEADER + 1, DNRT_ST_MAX_HEADER);
    const char *path = raw_file("big_header", "{}", DNRT_ST_MAX_HEADER + 1, 0);
    cr_assert_eq(truncate(path, 8 + DNRT_ST_MAX_HEADER + 1), 0);
    double rss0 = peak_rss_mib();
    expect_read_error(path, DNRT_ERR_FORMAT, needle);
    cr_expect_lt(peak_rss_mib() - rss0, 50.0);
}

/* 'path' grown to 'bytes' without writing (a sparse tail); skips the test
 * where the file system would really allocate them. */
static void make_sparse(const char *path, long long bytes)
{
    cr_assert_eq(truncate(path, (off_t)bytes), 0, "truncate: %s", strerror(errno));
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    if ((long long)st.st_blocks * 512 > (64LL << 20)) {
        unlink(path);
        cr_skip_test("the file system does not keep %s sparse", path);
    }
}

#define HUGE_FILE (8LL << 30) /* 8 GiB, sparse */

/* The loader used to read the whole file first: a 4 GB damaged file cost
 * 4.2 GB.  Now it reads the header, checks it against the model and the
 * file's size, then reads only the model's tensors. */
Test(load, huge_file_costs_only_its_header, .timeout = 60)
{
    dnrt_session *a = make(1), *b = make(2);
    train(a, 3);
    double rss0 = peak_rss_mib(), t0 = now();
    /* a good file followed by 8 GiB of padding: loads */
    const char *good = in_dir("padded.safetensors");
    cr_assert_eq(dnrt_session_save(a, good, NULL), 0);
    make_sparse(good, HUGE_FILE);
    dnrt_error err;
    cr_assert_eq(dnrt_session_load(b, good, &err), 0, "%s", err.message);
    same_state(a, b);
    cr_assert_eq(dnrt_session_get_step(b), 3);
    dnrt_st_file f;
    cr_assert_eq(dnrt_st_read(good, &f, &err), 0, "%s", err.message);
    cr_assert_eq(f.size, (size_t)HUGE_FILE);
    dnrt_st_free(&f);
    /* a header declaring an 8 GiB tensor the model does not have: refused */
    const char *junk =
        raw_file("junk.safetensors",
                 "{\"junk\":{\"dtype\":\"F32\",\"shape\":[2147483648],\"data_offsets\":[0,8589934592]}}", -1, 0);
    make_sparse(junk, 8 + 80 + HUGE_FILE);
    expect_load_error(b, junk, "unexpected tensor 'junk'");
    /* a damaged header in front of 8 GiB: refused */
    const char *bad = raw_file("bad.safetensors", "{\"fc.weight\":{\"dtype\":\"F32\",", -1, 0);
    make_sparse(bad, HUGE_FILE);
    expect_load_error(b, bad, "header");
    double secs = now() - t0, mib = peak_rss_mib() - rss0;
    cr_log_info("three loads of 8 GiB files: %.3f s, peak RSS grew by %.1f MiB", secs, mib);
    cr_assert_lt(mib, 200.0, "peak RSS grew by %.1f MiB", mib);
    cr_expect_lt(secs, 5.0);
    dnrt_session_destroy(a);
    dnrt_session_destroy(b);
}

/* Offsets are checked against the file on disk, and a file that shrinks
 * between the header and the data is an error, not garbage. */
Test(st, file_truncated_while_reading)
{
    float a[4] = {1, 2, 3, 4};
    dnrt_st_tensor t = {.name = "x", .dtype = DNRT_F32, .rank = 1, .dim = {4}, .data = a, .nbytes = 16};
    const char *path = in_dir("shrinks.safetensors");
    cr_assert_eq(dnrt_st_write(path, 1, &t, 0, NULL, NULL, NULL), 0);
    dnrt_st_file f;
    dnrt_error err;
    cr_assert_eq(dnrt_st_open(path, &f, &err), 0, "%s", err.message);
    cr_assert_null(f.tensors[0].data);
    cr_assert_eq(truncate(path, (off_t)(f.data_start + 8)), 0);
    float got[4];
    cr_assert_eq(dnrt_st_read_data(&f, &f.tensors[0], got, &err), -1);
    cr_assert_eq(err.code, DNRT_ERR_IO);
    cr_assert(strstr(err.message, "inside tensor 'x' (was it truncated while being read?)"), "%s", err.message);
    dnrt_st_free(&f);
    expect_read_error(path, DNRT_ERR_FORMAT, "tensor 'x': data_offsets [0, 16] outside the data section (8 bytes)");
}

/* Every integer of a file is range-checked, and the message names it. */
Test(st, integers_are_range_checked_by_field)
{
    struct {
        const char *header, *needle;
    } cases[] = {
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}",
         "tensor 't': shape: integer too large"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9223372036854775808]}}",
         "tensor 't': data_offsets: integer too large"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-9223372036854775808,8]}}",
         "tensor 't': data_offsets: integer too large"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2, -1],\"data_offsets\":[0,8]}}",
         "tensor 't': bad shape F32[2, -1]: dimension 1 is negative"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",
         "tensor 't': bad shape F32[4294967296, 4294967296]: its byte count overflows 64 bits"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9223372036854775807]}}",
         "tensor 't': data_offsets [0, 9223372036854775807] outside the data section (16 bytes)"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}",
         "tensor 't': data_offsets: expected an integer"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
         "tensor 't': shape: too many elements"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "int%zu", i);
        expect_read_error(raw_file(name, cases[i].header, -1, 16), DNRT_ERR_FORMAT, cases[i].needle);
    }
}

/* "dnnc.step" = "99999999999999999999999" became INT64_MAX, and the next
 * train_step overflowed. */
Test(load, step_counter_is_range_checked)
{
    dnrt_session *a = make(1), *b = make(2);
    train(b, 4);
    struct {
        const char *step, *needle;
    } bad[] = {
        {"99999999999999999999999", "dnnc.step = '99999999999999999999999' is out of range (0 to 9007199254740992"},
        {"9223372036854775807", "dnnc.step = '9223372036854775807' is out of range"},
        {"9223372036854775808", "dnnc.step = '9223372036854775808' is out of range"},
        {"9007199254740993", "dnnc.step = '9007199254740993' is out of range"},
        {"-1", "dnnc.step = '-1' is out of range"},
        {"", "dnnc.step = '' is not a step count"},
        {" 5", "dnnc.step = ' 5' is not a step count"},
        {"+5", "dnnc.step = '+5' is not a step count"},
        {"5 ", "dnnc.step = '5 ' is not a step count"},
        {"0x10", "dnnc.step = '0x10' is not a step count"},
        {"1e3", "dnnc.step = '1e3' is not a step count"},
        {"1234567890123456789012345678901234567890123456789", "'1234567890123456789012345678901234567890...' is out"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "step%zu", i);
        expect_load_error(b, write_variant(a, name, NULL, NULL, bad[i].step), bad[i].needle);
    }
    dnrt_error err;
    cr_assert_eq(dnrt_session_load(b, write_variant(a, "max", NULL, NULL, "9007199254740992"), &err), 0, "%s",
                 err.message);
    cr_assert_eq(dnrt_session_get_step(b), DNRT_MAX_STEP);
    train(b, 2);
    cr_assert_eq(dnrt_session_get_step(b), DNRT_MAX_STEP + 2);
    dnrt_session_destroy(a);
    dnrt_session_destroy(b);
}

/* A failed read of the data, at any point, leaves the session as it was. */
Test(load, io_failure_while_reading_changes_nothing)
{
    dnrt_session *a = make(1), *b = make(2);
    train(a, 2);
    train(b, 5);
    const char *path = in_dir("a.safetensors");
    cr_assert_eq(dnrt_session_save(a, path, NULL), 0);
    int failures = 0;
    for (int nth = 1; nth < 50; nth++) {
        float before[BYTES / 4];
        memcpy(before, dnrt_session_state(b, "fc.weight"), BYTES);
        dnrt_error err;
        dnrt_fault_fail_io(nth);
        int rc = dnrt_session_load(b, path, &err);
        dnrt_fault_fail_io(0);
        if (rc == 0) break;
        failures++;
        cr_assert_eq(err.code, DNRT_ERR_IO, "%s", err.message);
        cr_assert(strncmp(err.message, path, strlen(path)) == 0, "%s", err.message);
        cr_assert(memcmp(before, dnrt_session_state(b, "fc.weight"), BYTES) == 0, "failed load %d changed state", nth);
        cr_assert_eq(dnrt_session_get_step(b), 5);
    }
    cr_assert_geq(failures, 3 + desc.nstate); /* open, length, header, each tensor */
    same_state(a, b);
    dnrt_session_destroy(a);
    dnrt_session_destroy(b);
}

/* A pid that no process has: a child that has exited and been reaped. */
static pid_t dead_pid(void)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) _exit(0);
    cr_assert_eq(waitpid(pid, NULL, 0), pid);
    return pid;
}

static void touch(const char *path)
{
    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp, "%s: %s", path, strerror(errno));
    fputs("partial", fp);
    fclose(fp);
}

/* Temporaries are named .<name>.dnrt-tmp.<host>.<pid>.XXXXXX; a save
 * removes those of its destination whose process is gone, and nothing
 * else. */
Test(st, save_removes_stale_temporaries_only)
{
    dnrt_session *a = make(1);
    const char *path = in_dir("m.safetensors");
    char prefix[512], other[512];
    cr_assert_gt(dnrt_st_temp_prefix(path, prefix, sizeof prefix), 0);
    cr_assert_gt(dnrt_st_temp_prefix(in_dir("other.safetensors"), other, sizeof other), 0);
    char expect[300];
    snprintf(expect, sizeof expect, "%s/.m.safetensors.dnrt-tmp.", dir);
    cr_assert(strncmp(prefix, expect, strlen(expect)) == 0, "prefix %s", prefix);
    pid_t dead = dead_pid();
    char stale[600], live[600], self[600], other_dest[600], longer[600], odd_pid[600], folder[600];
    snprintf(stale, sizeof stale, "%s%d.a1B2c3", prefix, (int)dead);
    snprintf(live, sizeof live, "%s%d.a1B2c3", prefix, (int)getppid());
    snprintf(self, sizeof self, "%s%d.zzzzzz", prefix, (int)getpid());
    snprintf(other_dest, sizeof other_dest, "%s%d.a1B2c3", other, (int)dead);
    snprintf(longer, sizeof longer, "%s%d.a1B2c3.bak", prefix, (int)dead);
    snprintf(odd_pid, sizeof odd_pid, "%s%dx.a1B2c3", prefix, (int)dead);
    snprintf(folder, sizeof folder, "%s%d.d1r2c3", prefix, (int)dead);
    const char *keep[] = {
        live, self, other_dest, longer, odd_pid, in_dir("m.safetensors.tmp.a1B2c3"), in_dir("m.safetensors.bak")};
    touch(stale);
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) touch(keep[i]);
    cr_assert_eq(mkdir(folder, 0755), 0);
    dnrt_error err;
    cr_assert_eq(dnrt_session_save(a, path, &err), 0, "%s", err.message);
    cr_assert_eq(access(stale, F_OK), -1, "stale temporary %s left behind", stale);
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        cr_assert_eq(access(keep[i], F_OK), 0, "%s was removed", keep[i]);
    cr_assert_eq(access(folder, F_OK), 0, "a folder was removed");
    cr_assert_eq(count_entries(), 2 + (int)(sizeof keep / sizeof keep[0]));
    dnrt_session_destroy(a);
}

/* Saves of 4 MiB killed with SIGKILL in the middle: the next save leaves
 * only the weights (43 of 50 such kills used to leave *.tmp.XXXXXX). */
Test(st, killed_saves_are_cleaned_up_by_the_next_save, .timeout = 120)
{
    enum { N = 1 << 20 };
    float *w = calloc(N, sizeof *w);
    cr_assert_not_null(w);
    dnrt_st_tensor t = {.name = "w", .dtype = DNRT_F32, .rank = 1, .dim = {N}, .data = w, .nbytes = 4 * N};
    const char *path = in_dir("big.safetensors");
    char prefix[512];
    cr_assert_gt(dnrt_st_temp_prefix(path, prefix, sizeof prefix), 0);
    const char *base = strrchr(prefix, '/') + 1;
    dnrt_error err;
    cr_assert_eq(dnrt_st_write(path, 1, &t, 0, NULL, NULL, &err), 0, "%s", err.message);
    int left = 0;
    for (int round = 0; round < 5; round++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0)
            for (;;) dnrt_st_write(path, 1, &t, 0, NULL, NULL, NULL);
        /* kill it once its temporary file exists */
        int seen = 0;
        for (double t0 = now(); !seen && now() - t0 < 10;) {
            DIR *d = opendir(dir);
            for (struct dirent *e; (e = readdir(d));) seen |= strncmp(e->d_name, base, strlen(base)) == 0;
            closedir(d);
        }
        kill(pid, SIGKILL);
        cr_assert_eq(waitpid(pid, NULL, 0), pid);
        left += count_entries() > 1;
    }
    cr_log_info("%d of 5 killed saves left a temporary file", left);
    cr_expect_gt(left, 0, "no kill landed inside a save; the test proved nothing");
    cr_assert_eq(dnrt_st_write(path, 1, &t, 0, NULL, NULL, &err), 0, "%s", err.message);
    cr_assert_eq(count_entries(), 1, "temporary files of killed saves left behind");
    dnrt_st_file f;
    cr_assert_eq(dnrt_st_read(path, &f, &err), 0, "%s", err.message);
    dnrt_st_free(&f);
    free(w);
}
