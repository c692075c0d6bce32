/* session.c -- sessions of a library a test compiled, through its
 * descriptor as any program would (Criterion assertions of the calling
 * test). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "testlib.h"

dnrt_session *dn_test_session(const DnTestLib *lib, int threads, uint64_t seed)
{
    dnrt_error err = {0};
    dnrt_options opt = {.threads = threads, .seed = seed};
    dnrt_session *s = lib->desc->api->create(lib->desc, &opt, &err);
    cr_assert(s, "create: %s", err.message);
    return s;
}

float dn_test_train_step(const DnTestLib *lib, dnrt_session *s, int64_t n, const void *const *in)
{
    dnrt_error err = {0};
    float loss = NAN;
    cr_assert_eq(lib->desc->api->train_step(s, n, in, &loss, &err), 0, "train_step: %s", err.message);
    return loss;
}

void dn_test_saved_state(const dnrt_api *api, dnrt_session *s, dnrt_st_file *f)
{
    char path[] = "/tmp/dnnc-test-state-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    dnrt_error err = {0};
    cr_assert_eq(api->save(s, path, &err), 0, "save: %s", err.message);
    cr_assert_eq(dnrt_st_read(path, f, &err), 0, "reading back the saved state: %s", err.message);
    unlink(path); /* the image stays in memory */
}
