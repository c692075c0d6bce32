/* header.c -- writes <model>.h, the typed C interface of a generated library.
 *
 * The header needs only <stdint.h>: it repeats dnrt.h's DNRT_COMMON_TYPES
 * block verbatim (same guard, so both headers can be included together) and
 * declares the functions every backend exports for model M (the wrappers of
 * backends/host/host_desc.c): M_create, M_destroy, M_load, M_save,
 * M_infer, M_describe and, with training, M_train_step, M_set_lr,
 * M_set_learning_rate, M_get_lr, M_step.  Inputs come in descriptor order (model inputs, then train-only).
 */
#include <ctype.h>

#include "backend.h"

/* ORDER DNRT_COMMON_TYPES: identical to runtime/include/dnrt.h (a unit test
 * compares the two texts). */
static const char common_types[] =
    "#ifndef DNRT_COMMON_TYPES\n"
    "#define DNRT_COMMON_TYPES\n"
    "typedef struct dnrt_options {\n"
    "    int32_t threads; /* worker threads incl. the caller; 0 = $DNRT_THREADS or all cores */\n"
    "    uint64_t seed;   /* initializers and dropout; 0 is a valid seed */\n"
    "    /* GPU targets (ABI 5): 1 = infer and train_step take device buffers instead of host pointers\n"
    "     * (CUDA: a CUdeviceptr cast to void *; OpenCL: a cl_mem), used where they are; 0 = host pointers */\n"
    "    int32_t device_io;\n"
    "} dnrt_options;\n"
    "\n"
    "typedef struct dnrt_error {\n"
    "    int32_t code;      /* 0 = no error; otherwise a dnrt_status */\n"
    "    char message[500]; /* \"lenet.safetensors: tensor 'fc1.weight': expected f32[120, 400], got f32[120, 256]\" "
    "*/\n"
    "} dnrt_error;\n"
    "#endif\n";

static const char *ctype_of(DnDType t)
{
    return t == DN_DTYPE_I32 ? "int32_t" : t == DN_DTYPE_I64 ? "int64_t" : "float";
}

/* A parameter name that cannot clash with the fixed ones (m, n, err, loss). */
static const char *pname(const char *name, char *buf, size_t len)
{
    static const char *const fixed[] = {"m", "n", "t", "err", "loss"};
    snprintf(buf, len, "%s", name);
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!strcmp(name, fixed[i])) snprintf(buf, len, "%s_", name);
    return buf;
}

/* Writes one ", const T *name" parameter line with its type as a comment. */
static void param(FILE *out, const DnValue *v, const char *name, bool is_const)
{
    char ty[128], nb[256];
    fprintf(out, ",\n    %s%s *%s /* %s */", is_const ? "const " : "", ctype_of(v->dtype), pname(name, nb, sizeof nb),
            dn_type_str(v->dtype, &v->shape, ty, sizeof ty));
}

/* The sequence length parameter, for a model with T. */
static const char *seq_param(const DnModule *m) { return dn_graph_seq_bound(m->infer) ? ", int64_t t" : ""; }

static void infer_decl(FILE *out, const DnModule *m, const char *M)
{
    fprintf(out,
            "/* Runs inference on a batch of n items; outputs are written to caller\n"
            " * buffers, which must not overlap the inputs.  Returns 0, or -1 with\n"
            " * *err filled. */\n"
            "int %s_infer(%s *m, int64_t n%s",
            M, M, seq_param(m));
    for (int i = 0; i < m->infer->inputs.len; i++)
        param(out, m->infer->inputs.data[i], m->infer->inputs.data[i]->name, true);
    for (int i = 0; i < m->infer->outputs.len; i++)
        param(out, m->infer->outputs.data[i], m->infer->output_names.data[i], false);
    fprintf(out, ",\n    dnrt_error *err);\n\n");
}

static void train_decls(FILE *out, const DnModule *m, const char *M)
{
    fprintf(out,
            "/* One compiled training step (forward, backward, optimizer update) on a\n"
            " * batch of n items; *loss receives the mean loss.\n"
            " * Returns 0, or -1 with *err filled.  A step whose loss, a gradient or a\n"
            " * new batchnorm running statistic is NaN or infinite is refused with\n"
            " * err->code DNRT_ERR_NONFINITE (6): parameters, optimizer state, running\n"
            " * statistics and the step counter stay exactly as they were (*loss still\n"
            " * receives the loss). */\n"
            "int %s_train_step(%s *m, int64_t n%s",
            M, M, seq_param(m));
    for (int i = 0; i < m->infer->inputs.len; i++)
        param(out, m->infer->inputs.data[i], m->infer->inputs.data[i]->name, true);
    for (int i = 0; i < m->train->inputs.len; i++)
        if (m->train->inputs.data[i]->train_only)
            param(out, m->train->inputs.data[i], m->train->inputs.data[i]->name, true);
    fprintf(out, ",\n    float *loss, dnrt_error *err);\n\n");
    fprintf(out,
            "/* Overrides the base learning rate (compiled: %g), which must be finite\n"
            " * and >= 0.  set_learning_rate returns -1 (err->code DNRT_ERR_ARG, 1) for\n"
            " * any other value and keeps the rate; set_lr, which cannot report, keeps\n"
            " * the rate and makes every train_step fail (DNRT_ERR_ARG) until a valid\n"
            " * one is set. */\n"
            "int %s_set_learning_rate(%s *m, float lr, dnrt_error *err);\n"
            "void %s_set_lr(%s *m, float lr);\n"
            "float %s_get_lr(%s *m);\n"
            "/* Training steps taken so far (refused steps do not count). */\n"
            "int64_t %s_step(%s *m);\n\n",
            (double)m->lr, M, M, M, M, M, M, M, M);
}

/* Writes the header of 'm' to 'out'. */
void dn_emit_header(const DnModule *m, FILE *out)
{
    const char *M = m->name;
    char guard[300];
    size_t i = 0;
    for (; M[i] && i < sizeof guard - 3; i++) guard[i] = (char)toupper((unsigned char)M[i]);
    snprintf(guard + i, sizeof guard - i, "_H");
    char seq_note[160] = "";
    int64_t bound = dn_graph_seq_bound(m->infer);
    if (bound)
        snprintf(seq_note, sizeof seq_note,
                 ";\n * T is the sequence length t, 1 <= t <= %lld, given to infer and train_step\n"
                 " * with n (a tensor [N, T, ...] holds n * t * ... elements, contiguous)",
                 (long long)bound);
    fprintf(out,
            "/* %s.h -- generated by dnnc for model '%s'; do not edit.\n"
            " * Link with %s.so.  Functions returning int return 0 on success and -1\n"
            " * on failure, filling *err (which may be NULL).  N is the batch size n%s. */\n"
            "#ifndef %s\n#define %s\n\n#include <stdint.h>\n\n"
            "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n%s\n",
            M, M, M, seq_note, guard, guard, common_types);
    fprintf(out, "typedef struct %s %s;\nstruct dnrt_model_desc;\n\n", M, M);
    fprintf(out,
            "/* Creates a session with initialised parameters (opt may be NULL).\n"
            " * Returns NULL with *err filled on failure. */\n"
            "%s *%s_create(const dnrt_options *opt, dnrt_error *err);\n"
            "void %s_destroy(%s *m);\n"
            "/* Reads / writes the state (parameters) as a safetensors file; save\n"
            " * refuses (DNRT_ERR_NONFINITE, 6) state holding a NaN or an infinity. */\n"
            "int %s_load(%s *m, const char *path, dnrt_error *err);\n"
            "int %s_save(%s *m, const char *path, dnrt_error *err);\n\n",
            M, M, M, M, M, M, M, M);
    infer_decl(out, m, M);
    if (m->train) train_decls(out, m, M);
    fprintf(out,
            "/* The generic descriptor (see dnrt.h): names, shapes, state layout. */\n"
            "const struct dnrt_model_desc *%s_describe(void);\n\n"
            "#ifdef __cplusplus\n}\n#endif\n#endif\n",
            M);
}
