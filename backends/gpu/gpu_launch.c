/* gpu_launch.c -- the GPU backends' hooks on the host layer.
 *
 * launch: the op's generator (dn_gpu_kernels) writes its kernels into the
 * module's program and lists their launches; each launch becomes two
 * constants in the host module (its dnrt_gpu_arg array and its
 * dnrt_gpu_launch) and, in the entry function,
 *     r = dnrt_gpu_launch_kernel(c, &launch);  if (r != 0) return r;
 * which returns a guard's code (its result is in device memory, so the
 * host layer does not read it: launch_returns) or -1 when the device failed.
 * end_module: the rendered source, the kernel names and, for CUDA objects,
 * the cubins and PTX NVRTC makes of it become the dnrt_gpu_program the
 * descriptor points to.
 */
#include <stdlib.h>

#include "gpu_internal.h"
#include "nvrtc.h"

/* ORDER dnrt_gpu_arg, dnrt_gpu_launch, dnrt_gpu_image, dnrt_gpu_program (dnrt.h);
 * tests/unit/test_llvm_kernels.c checks the offsets. */
LLVMTypeRef dn_gpu_arg_type(LLVMContextRef ctx)
{
    LLVMTypeRef i32 = LLVMInt32TypeInContext(ctx), i64 = LLVMInt64TypeInContext(ctx);
    LLVMTypeRef f[] = {i32, i32, i64, i64, LLVMFloatTypeInContext(ctx)};
    return LLVMStructTypeInContext(ctx, f, 5, 0);
}

LLVMTypeRef dn_gpu_launch_type(LLVMContextRef ctx)
{
    LLVMTypeRef i32 = LLVMInt32TypeInContext(ctx), i64 = LLVMInt64TypeInContext(ctx);
    LLVMTypeRef f[] = {i32, i32, LLVMPointerTypeInContext(ctx, 0), i64, i64, i32, i32, i32};
    return LLVMStructTypeInContext(ctx, f, 8, 0);
}

LLVMTypeRef dn_gpu_image_type(LLVMContextRef ctx)
{
    LLVMTypeRef ptr = LLVMPointerTypeInContext(ctx, 0);
    LLVMTypeRef f[] = {ptr, ptr, LLVMInt64TypeInContext(ctx)};
    return LLVMStructTypeInContext(ctx, f, 3, 0);
}

LLVMTypeRef dn_gpu_program_type(LLVMContextRef ctx)
{
    LLVMTypeRef i32 = LLVMInt32TypeInContext(ctx), ptr = LLVMPointerTypeInContext(ctx, 0);
    LLVMTypeRef f[] = {i32, ptr, i32, ptr, i32, ptr};
    return LLVMStructTypeInContext(ctx, f, 6, 0);
}

static LLVMValueRef ci32(DnHost *H, int64_t v) { return LLVMConstInt(H->i32, (unsigned long long)v, 1); }
static LLVMValueRef ci64(DnHost *H, int64_t v) { return LLVMConstInt(H->i64, (unsigned long long)v, 1); }

/* A private constant global holding 'init'. */
static LLVMValueRef const_global(DnHost *H, LLVMValueRef init, const char *name)
{
    LLVMValueRef g = LLVMAddGlobal(H->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    return g;
}

static LLVMValueRef bytes_global(DnHost *H, const void *data, size_t n, const char *name)
{
    return const_global(H, LLVMConstStringInContext(H->ctx, data, (unsigned)n, 0), name);
}

static LLVMValueRef string_global(DnHost *H, const char *s, const char *name)
{
    return const_global(H, LLVMConstStringInContext(H->ctx, s, (unsigned)strlen(s), 0), name);
}

/* Emits launch 'r' of op 'l' and the return of its non-zero status. */
static void emit_launch(DnHost *H, const DnLaunch *l, const DnGpuLaunchRec *r)
{
    LLVMTypeRef at = dn_gpu_arg_type(H->ctx), lt = dn_gpu_launch_type(H->ctx);
    LLVMValueRef args[DN_GPU_MAX_ARGS];
    for (int i = 0; i < r->nargs; i++) {
        const dnrt_gpu_arg *a = &r->args[i];
        LLVMValueRef f[5] = {ci32(H, a->kind), ci32(H, a->index), ci64(H, a->a), ci64(H, a->b),
                             LLVMConstReal(H->f32, a->f)};
        args[i] = LLVMConstNamedStruct(at, f, 5);
    }
    LLVMValueRef arr =
        r->nargs ? const_global(H, LLVMConstArray2(at, args, (uint64_t)r->nargs), "gpu.args") : LLVMConstNull(H->ptr);
    LLVMValueRef f[8] = {ci32(H, r->kernel),
                         ci32(H, r->nargs),
                         arr,
                         ci64(H, r->items_n),
                         ci64(H, r->items_b),
                         ci32(H, r->group),
                         ci32(H, r->guard),
                         ci32(H, l->seq_form == DN_SEQ_ROWS ? DNRT_BATCH_NT : DNRT_BATCH_N)};
    LLVMValueRef launch = const_global(H, LLVMConstNamedStruct(lt, f, 8), "gpu.launch");
    LLVMTypeRef ft = LLVMFunctionType(H->i32, (LLVMTypeRef[]){H->ptr, H->ptr}, 2, 0);
    LLVMValueRef fn = dn_host_runtime_fn(H, "dnrt_gpu_launch_kernel", ft);
    LLVMValueRef rc = LLVMBuildCall2(H->b, ft, fn, (LLVMValueRef[]){l->c, launch}, 2, "rc");
    LLVMBasicBlockRef stop = LLVMAppendBasicBlockInContext(H->ctx, l->entry, "launch.stop");
    LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(H->ctx, l->entry, "launch.ok");
    LLVMBuildCondBr(H->b, LLVMBuildICmp(H->b, LLVMIntNE, rc, ci32(H, 0), ""), stop, go);
    LLVMPositionBuilderAtEnd(H->b, stop);
    LLVMBuildRet(H->b, rc);
    LLVMPositionBuilderAtEnd(H->b, go);
}

static DnStatus gpu_launch(DnHost *H, const DnLaunch *l)
{
    DnGpuModule *M = H->be;
    DnGpuKernelGen gen = dn_gpu_kernels[l->op->kind];
    if (!gen) {
        dn_error(H->cx, l->op->loc, "gpu backend: no kernel for op '%s'", dn_op_info[l->op->kind].name);
        return DN_ERR;
    }
    /* an op that treats every (n, t) position alike is written as the same op
       over a batch of n * t (its launches say DNRT_BATCH_NT); the others that
       take T read t (DNRT_ARG_SEQ) */
    const DnOp *kop = l->seq_form == DN_SEQ_ROWS ? dn_op_seq_rows(l->op, &H->cx->arena) : l->op;
    DnGpuGen G = {.H = H, .l = l, .op = kop, .prog = &M->prog};
    gen(&G);
    DN_ASSERT(!G.open);
    dn_text_free(&G.params), dn_text_free(&G.decls), dn_text_free(&G.body);
    if (G.failed) return DN_ERR;
    for (int i = 0; i < G.nlaunch; i++) emit_launch(H, l, &G.launch[i]);
    return DN_OK;
}

static DnStatus begin_module(DnHost *H, bool compile)
{
    DnGpuModule *M = dn_arena_alloc(&H->cx->arena, sizeof *M);
    memset(M, 0, sizeof *M);
    M->prog.arena = &H->cx->arena;
    M->prog.api = H->opt && H->opt->gpu_api ? H->opt->gpu_api : DNRT_GPU_OPENCL;
    M->prog.precision = H->opt ? H->opt->precision : NULL;
    M->compile = compile;
    H->be = M;
    return DN_OK;
}

static DnStatus begin_object(DnHost *H) { return begin_module(H, true); }
static DnStatus begin_text(DnHost *H) { return begin_module(H, false); }

/* Splits the --gpu-arch list into 'archs' (at most 8); returns the count. */
static int split_archs(const char *list, char archs[8][16])
{
    int n = 0;
    while (*list && n < 8) {
        size_t k = strcspn(list, ",");
        snprintf(archs[n], 16, "%.*s", (int)(k < 15 ? k : 15), list);
        if (k) n++;
        list += k + (list[k] == ',');
    }
    return n;
}

/* The CUDA images of 'src' into a constant dnrt_gpu_image array; *count gets their number. */
static LLVMValueRef cuda_images(DnHost *H, const char *src, int *count)
{
    char archs[8][16];
    const char *ptrs[8];
    int na = split_archs(H->opt && H->opt->gpu_arch ? H->opt->gpu_arch : "sm_80,sm_90", archs);
    for (int i = 0; i < na; i++) ptrs[i] = archs[i];
    DnGpuImage *img = NULL;
    int nimg = 0;
    if (dn_nvrtc_compile(H->cx, src, ptrs, na, &img, &nimg) != DN_OK) return NULL;
    LLVMTypeRef it = dn_gpu_image_type(H->ctx);
    LLVMValueRef *v = dn_arena_alloc(&H->cx->arena, sizeof *v * (size_t)(nimg ? nimg : 1));
    for (int i = 0; i < nimg; i++) {
        LLVMValueRef f[3] = {string_global(H, img[i].arch, "gpu.arch"),
                             bytes_global(H, img[i].data, img[i].size, "gpu.image"), ci64(H, (int64_t)img[i].size)};
        v[i] = LLVMConstNamedStruct(it, f, 3);
    }
    dn_nvrtc_free(img, nimg);
    *count = nimg;
    return const_global(H, LLVMConstArray2(it, v, (uint64_t)nimg), "gpu.images");
}

static DnStatus end_module(DnHost *H)
{
    DnGpuModule *M = H->be;
    DnText src = {0};
    dn_gpu_program_render(&M->prog, &src);
    int nimg = 0;
    LLVMValueRef images = LLVMConstNull(H->ptr);
    if (M->compile && M->prog.api == DNRT_GPU_CUDA) {
        images = cuda_images(H, src.s, &nimg);
        if (!images) {
            dn_text_free(&src);
            return DN_ERR;
        }
    }
    int nk = M->prog.nkernels;
    LLVMValueRef *names = dn_arena_alloc(&H->cx->arena, sizeof *names * (size_t)(nk ? nk : 1));
    for (int i = 0; i < nk; i++) names[i] = string_global(H, M->prog.names[i], "gpu.name");
    LLVMValueRef f[6] = {ci32(H, M->prog.api),
                         bytes_global(H, src.s, src.len + 1, "gpu.source"),
                         ci32(H, nk),
                         nk ? const_global(H, LLVMConstArray2(H->ptr, names, (uint64_t)nk), "gpu.names")
                            : LLVMConstNull(H->ptr),
                         ci32(H, nimg),
                         images};
    dn_text_free(&src);
    H->gpu_program = const_global(H, LLVMConstNamedStruct(dn_gpu_program_type(H->ctx), f, 6), "gpu.program");
    return DN_OK;
}

const DnHostHooks dn_gpu_hooks_object = {begin_object, gpu_launch, end_module, true, NULL};
const DnHostHooks dn_gpu_hooks_text = {begin_text, gpu_launch, end_module, true, NULL};
