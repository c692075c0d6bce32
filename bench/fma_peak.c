/* fma_peak.c -- the single-core peak of fp32 fused multiply-adds: 12
 * independent chains of vector FMAs (enough to cover the FMA latency on
 * every x86 core we know), registers only, for 256-bit vectors (AVX2) and,
 * where the CPU has them, 512-bit ones (AVX-512).  Prints one line per
 * width, "fma256 X GFLOP/s", the best of 5 runs.
 *
 *   cc -O2 bench/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
 *
 * The chains start from different values and every one is consumed at the
 * end, so the compiler can neither merge nor drop them.  The number is what
 * the machine gives one thread, which on a VM or a part with double-pumped
 * 512-bit units can be the same for both widths.
 */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

enum { ITERS = 50000000, CHAINS = 12, RUNS = 5 };

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Each chain: a = a * b + c, ITERS times; returns GFLOP/s. */
#define PEAK_BODY(T, SET1, FMA, ADD, LANES)                                                                            \
    T b = SET1(0.999999f), c = SET1(1e-7f), a[CHAINS];                                                                 \
    for (int j = 0; j < CHAINS; j++) a[j] = SET1(seed + (float)j);                                                     \
    T a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3], a4 = a[4], a5 = a[5];                                                \
    T a6 = a[6], a7 = a[7], a8 = a[8], a9 = a[9], a10 = a[10], a11 = a[11];                                            \
    double t = now_s();                                                                                                \
    for (long i = 0; i < ITERS; i++) {                                                                                 \
        a0 = FMA(a0, b, c), a1 = FMA(a1, b, c), a2 = FMA(a2, b, c), a3 = FMA(a3, b, c);                                \
        a4 = FMA(a4, b, c), a5 = FMA(a5, b, c), a6 = FMA(a6, b, c), a7 = FMA(a7, b, c);                                \
        a8 = FMA(a8, b, c), a9 = FMA(a9, b, c), a10 = FMA(a10, b, c), a11 = FMA(a11, b, c);                            \
        __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5));                             \
        __asm__ volatile("" : "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));                           \
    }                                                                                                                  \
    t = now_s() - t;                                                                                                   \
    T s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));                                           \
    s = ADD(s, ADD(ADD(a8, a9), ADD(a10, a11)));                                                                       \
    float out[LANES];                                                                                                  \
    __builtin_memcpy(out, &s, sizeof out);                                                                             \
    *sink += out[0];                                                                                                   \
    return (double)ITERS * CHAINS * LANES * 2 / t / 1e9;

__attribute__((target("avx2,fma"))) static double peak256(float seed, float *sink)
{
    PEAK_BODY(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, 8)
}

__attribute__((target("avx512f"))) static double peak512(float seed, float *sink)
{
    PEAK_BODY(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, 16)
}

static double best(double (*f)(float, float *), float *sink)
{
    double b = 0;
    for (int r = 0; r < RUNS; r++) {
        double g = f((float)r, sink);
        if (g > b) b = g;
    }
    return b;
}

int main(void)
{
    float sink = 0;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        printf("fma_peak: this CPU has no AVX2 and FMA\n");
        return 1;
    }
    printf("fma256 %.1f GFLOP/s\n", best(peak256, &sink));
    if (__builtin_cpu_supports("avx512f")) printf("fma512 %.1f GFLOP/s\n", best(peak512, &sink));
    return sink == 12345.0f; /* never: keeps the sums live */
}
