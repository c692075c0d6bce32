/* host_target.c -- the target side of the host layer: the target machine
 * (host CPU or --cpu), module verification, the new-pass-manager pipeline
 * (default<O0..3>), and writing the module as an object file or IR text.
 * Diagnostics say "llvm backend": the host code always goes through LLVM.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "../output.h"
#include "host.h"

static const DnLoc noloc = {0};

/* Code for one empty function with 'tm', in a child process whose stderr
 * goes to a pipe: LLVM reports an unknown CPU or feature only as a warning
 * on stderr when the subtarget is built, and may then abort (e.g. a CPU
 * without 64-bit mode).  Returns false, with LLVM's words in 'msg', when the
 * child printed "not a recognized" or did not exit cleanly. */
static bool probe_target(LLVMTargetMachineRef tm, char *msg, size_t len)
{
    int fd[2];
    if (pipe(fd)) return true;
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        LLVMContextRef ctx = LLVMContextCreate();
        LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("probe", ctx);
        LLVMValueRef f = LLVMAddFunction(mod, "f", LLVMFunctionType(LLVMVoidTypeInContext(ctx), NULL, 0, 0));
        LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
        LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, f, "entry"));
        LLVMBuildRetVoid(b);
        LLVMMemoryBufferRef out = NULL;
        char *err = NULL;
        _exit(LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &err, &out) ? 1 : 0);
    }
    close(fd[1]);
    size_t got = 0;
    ssize_t r;
    while (pid > 0 && got + 1 < len && (r = read(fd[0], msg + got, len - 1 - got)) > 0) got += (size_t)r;
    msg[got] = 0;
    close(fd[0]);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0) return true;
    char *nl = strchr(msg, '\n');
    if (nl) *nl = 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && !strstr(msg, "not a recognized");
}

/* Creates the target machine for the host triple, PIC, with 'o's CPU and
 * features (the host's when o->cpu is NULL).  NULL + diagnostic on failure. */
LLVMTargetMachineRef dn_host_target_machine(DnCtx *cx, const DnBackendOptions *o)
{
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    char *triple = LLVMGetDefaultTargetTriple();
    char *msg = NULL;
    LLVMTargetRef target;
    if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
        dn_error(cx, noloc, "llvm backend: no target for '%s': %s", triple, msg);
        LLVMDisposeMessage(msg);
        LLVMDisposeMessage(triple);
        return NULL;
    }
    char *host_cpu = NULL, *host_feat = NULL;
    const char *cpu = o && o->cpu ? o->cpu : (host_cpu = LLVMGetHostCPUName());
    const char *feat = o && o->features ? o->features : (o && o->cpu) ? "" : (host_feat = LLVMGetHostCPUFeatures());
    int lvl = o ? o->opt_level : 3;
    LLVMCodeGenOptLevel cg = lvl <= 0   ? LLVMCodeGenLevelNone
                             : lvl == 1 ? LLVMCodeGenLevelLess
                             : lvl == 2 ? LLVMCodeGenLevelDefault
                                        : LLVMCodeGenLevelAggressive;
    LLVMTargetMachineRef tm =
        LLVMCreateTargetMachine(target, triple, cpu, feat, cg, LLVMRelocPIC, LLVMCodeModelDefault);
    if (!tm) dn_error(cx, noloc, "llvm backend: cannot create a target machine for cpu '%s'", cpu);
    char probe[512];
    if (tm && o && (o->cpu || o->features) && !probe_target(tm, probe, sizeof probe)) {
        dn_error(cx, noloc, "llvm backend: unusable target (cpu '%s', features '%s'): %s", cpu, feat,
                 *probe ? probe : "code generation failed");
        LLVMDisposeTargetMachine(tm);
        tm = NULL;
    }
    if (host_cpu) LLVMDisposeMessage(host_cpu);
    if (host_feat) LLVMDisposeMessage(host_feat);
    LLVMDisposeMessage(triple);
    return tm;
}

int dn_host_vector_registers(const DnBackendOptions *o)
{
    if (o && (o->cpu || o->features)) return o->features && strstr(o->features, "+avx512f") ? 32 : 16;
    char *feat = LLVMGetHostCPUFeatures();
    int n = strstr(feat, "+avx512f") ? 32 : 16;
    LLVMDisposeMessage(feat);
    return n;
}

/* Verify, set the target and optimize (contract: host.h). */
char *dn_host_run_pipeline(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level)
{
    char *msg = NULL;
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
        char *ir = getenv("DNNC_DUMP_BAD_IR") ? LLVMPrintModuleToString(mod) : NULL;
        if (ir) fputs(ir, stderr);
        dn_die(__FILE__, __LINE__, "llvm backend produced an invalid module: %s", msg);
    }
    LLVMDisposeMessage(msg);
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(mod, td);
    LLVMDisposeTargetData(td);

    char pipeline[32];
    if (opt_level < 0) opt_level = 0;
    if (opt_level > 3) opt_level = 3;
    snprintf(pipeline, sizeof pipeline, "default<O%d>", opt_level);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(po, opt_level >= 2);
    LLVMPassBuilderOptionsSetSLPVectorization(po, opt_level >= 2);
    LLVMPassBuilderOptionsSetLoopUnrolling(po, opt_level >= 2);
    LLVMErrorRef err = LLVMRunPasses(mod, pipeline, tm, po);
    LLVMDisposePassBuilderOptions(po);
    if (!err) return NULL;
    char *em = LLVMGetErrorMessage(err);
    char *copy = dn_strdup(em);
    LLVMDisposeErrorMessage(em);
    return copy;
}

DnStatus dn_host_optimize(DnCtx *cx, LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level)
{
    char *err = dn_host_run_pipeline(mod, tm, opt_level);
    if (!err) return DN_OK;
    dn_error(cx, noloc, "llvm backend: pass pipeline failed: %s", err);
    free(err);
    return DN_ERR;
}

/* Object emission through 'tm' (contract: host.h). */
DnStatus dn_host_write_object(DnCtx *cx, LLVMModuleRef mod, LLVMTargetMachineRef tm, const char *path)
{
    /* Through memory, with every write checked here: LLVM's own file stream
     * aborts the process on a write error (a full disk). */
    char *msg = NULL;
    LLVMMemoryBufferRef buf = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &msg, &buf)) {
        dn_error(cx, noloc, "llvm backend: cannot write '%s': %s", path, msg);
        LLVMDisposeMessage(msg);
        return DN_ERR;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    int rc = fd < 0 ? -1 : dn_write_all(fd, LLVMGetBufferStart(buf), LLVMGetBufferSize(buf));
    int e = errno;
    if (fd >= 0 && close(fd) != 0 && rc == 0) rc = -1, e = errno;
    LLVMDisposeMemoryBuffer(buf);
    if (rc == 0) return DN_OK;
    dn_error(cx, noloc, "cannot write '%s': %s", path, strerror(e));
    return DN_ERR;
}

/* The module's text, as --emit=llvm prints it. */
void dn_host_write_text(LLVMModuleRef mod, FILE *out)
{
    char *ir = LLVMPrintModuleToString(mod);
    fputs(ir, out);
    LLVMDisposeMessage(ir);
}
