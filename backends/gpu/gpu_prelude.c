/* gpu_prelude.c -- the two renderings of the kernel dialect
 * (gpu_internal.h): a CUDA C prelude and an OpenCL C prelude that give the
 * same names the same meaning, and the helpers written once in the
 * dialect itself, which follow either prelude.  Everything that differs
 * between the two APIs is in the preludes; kernels never test which one
 * they are compiled with.
 */
#include "gpu_internal.h"

static const char cuda_prelude[] = "/* dnnc kernels: CUDA C prelude */\n"
                                   "typedef long long i64;\n"
                                   "typedef unsigned long long u64;\n"
                                   "typedef unsigned int u32;\n"
                                   "typedef unsigned char u8;\n"
                                   "#define KERNEL extern \"C\" __global__ void\n"
                                   "#define DEVICE static __device__ __forceinline__\n"
                                   "#define GLOBAL\n"
                                   "#define LOCAL __shared__\n"
                                   "#define LOCAL_ID ((i64)threadIdx.x)\n"
                                   "#define GROUP_ID ((i64)blockIdx.x)\n"
                                   "#define GROUP_SIZE ((i64)blockDim.x)\n"
                                   "#define NUM_GROUPS ((i64)gridDim.x)\n"
                                   "#define GLOBAL_ID (GROUP_ID * GROUP_SIZE + LOCAL_ID)\n"
                                   "#define BARRIER() __syncthreads()\n"
                                   "#define MULHI32(a, b) __umulhi((u32)(a), (u32)(b))\n"
                                   "#define FLOAT_AS_U32(x) ((u32)__float_as_uint(x))\n"
                                   "#define U32_AS_FLOAT(u) __uint_as_float((unsigned)(u))\n"
                                   "#define F32_INF __int_as_float(0x7f800000)\n"
                                   "#define ISFINITE(x) isfinite(x)\n";

static const char opencl_prelude[] = "/* dnnc kernels: OpenCL C prelude */\n"
                                     "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n"
                                     "typedef long i64;\n"
                                     "typedef ulong u64;\n"
                                     "typedef uint u32;\n"
                                     "typedef uchar u8;\n"
                                     "#define KERNEL __kernel void\n"
                                     "#define DEVICE static inline\n"
                                     "#define GLOBAL __global\n"
                                     "#define LOCAL __local\n"
                                     "#define LOCAL_ID ((i64)get_local_id(0))\n"
                                     "#define GROUP_ID ((i64)get_group_id(0))\n"
                                     "#define GROUP_SIZE ((i64)get_local_size(0))\n"
                                     "#define NUM_GROUPS ((i64)get_num_groups(0))\n"
                                     "#define GLOBAL_ID (GROUP_ID * GROUP_SIZE + LOCAL_ID)\n"
                                     "#define BARRIER() barrier(CLK_LOCAL_MEM_FENCE)\n"
                                     "#define MULHI32(a, b) mul_hi((u32)(a), (u32)(b))\n"
                                     "#define FLOAT_AS_U32(x) as_uint(x)\n"
                                     "#define U32_AS_FLOAT(u) as_float((u32)(u))\n"
                                     "#define F32_INF INFINITY\n"
                                     "#define ISFINITE(x) isfinite(x)\n"
                                     "#define expf(x) exp(x)\n"
                                     "#define logf(x) log(x)\n"
                                     "#define sqrtf(x) sqrt(x)\n"
                                     "#define tanhf(x) tanh(x)\n"
                                     "#define fabsf(x) fabs(x)\n"
                                     "#define fmaxf(a, b) fmax(a, b)\n"
                                     "#define fminf(a, b) fmin(a, b)\n"
                                     "#define fmaf(a, b, c) fma(a, b, c)\n"
                                     "#define floorf(x) floor(x)\n"
                                     "#define powf(a, b) pow(a, b)\n"
                                     "#define cosf(x) cos(x)\n"
                                     "#define rintf(x) rint(x)\n"
                                     "#define erff(x) erf(x)\n"
                                     "#define expm1f(x) expm1(x)\n";

/* Philox4x32-10 as runtime/philox.c computes it. */
const char dn_gpu_helpers[] = "/* Philox4x32-10 (runtime/philox.c): out = philox(key, ctr) */\n"
                              "DEVICE void dn_philox(u32 k0, u32 k1, u32 x0, u32 x1, u32 x2, u32 x3, u32 *out)\n"
                              "{\n"
                              "    for (int r = 0; r < 10; r++) {\n"
                              "        if (r > 0) {\n"
                              "            k0 += 0x9E3779B9u;\n"
                              "            k1 += 0xBB67AE85u;\n"
                              "        }\n"
                              "        u32 hi0 = MULHI32(0xD2511F53u, x0), lo0 = 0xD2511F53u * x0;\n"
                              "        u32 hi1 = MULHI32(0xCD9E8D57u, x2), lo1 = 0xCD9E8D57u * x2;\n"
                              "        u32 y0 = hi1 ^ x1 ^ k0, y2 = hi0 ^ x3 ^ k1;\n"
                              "        x0 = y0, x1 = lo1, x2 = y2, x3 = lo0;\n"
                              "    }\n"
                              "    out[0] = x0, out[1] = x1, out[2] = x2, out[3] = x3;\n"
                              "}\n";

/* DN_ROUND_IN(x): an operand of a convolution or matrix product as the
 * --precision computes with it (sums stay fp32): round to nearest even to
 * tf32's or fp16's 10 mantissa bits or bf16's 7 (fp16 also to its range:
 * overflow to infinity, subnormals on its 2^-24 grid); the identity for
 * fp32.  Written with bit operations, so both APIs round identically. */
static const char round_fp32[] = "#define DN_ROUND_IN(x) (x)\n";
static const char round_common[] = "DEVICE float dn_round_bits(float x, u32 drop)\n"
                                   "{\n"
                                   "    u32 u = FLOAT_AS_U32(x);\n"
                                   "    if ((u & 0x7f800000u) == 0x7f800000u) return x; /* inf, nan */\n"
                                   "    u32 bias = (1u << (drop - 1)) - 1u + ((u >> drop) & 1u);\n"
                                   "    return U32_AS_FLOAT((u + bias) & ~((1u << drop) - 1u));\n"
                                   "}\n";
static const char round_tf32[] = "#define DN_ROUND_IN(x) dn_round_bits(x, 13)\n";
static const char round_bf16[] = "#define DN_ROUND_IN(x) dn_round_bits(x, 16)\n";
static const char round_fp16[] =
    "DEVICE float dn_round_fp16(float x)\n"
    "{\n"
    "    float a = fabsf(x);\n"
    "    if (!(a < 65520.0f)) return a == a ? (x < 0.0f ? -F32_INF : F32_INF) : x;\n"
    "    if (a < 6.103515625e-05f) return rintf(x * 16777216.0f) * 5.9604644775390625e-08f;\n"
    "    return dn_round_bits(x, 13);\n"
    "}\n"
    "#define DN_ROUND_IN(x) dn_round_fp16(x)\n";

void dn_gpu_prelude_render(int api, const char *precision, DnText *out)
{
    dn_text_printf(out, "%s", api == DNRT_GPU_CUDA ? cuda_prelude : opencl_prelude);
    if (!precision || !strcmp(precision, "fp32")) {
        dn_text_printf(out, "%s", round_fp32);
        return;
    }
    dn_text_printf(out, "%s", round_common);
    dn_text_printf(out, "%s",
                   !strcmp(precision, "tf32")   ? round_tf32
                   : !strcmp(precision, "bf16") ? round_bf16
                                                : round_fp16);
}
