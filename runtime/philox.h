/* philox.h -- how the runtime draws random numbers from Philox 4x32-10.
 *
 * Stream layout (fixed: generated code on every backend reproduces it):
 *   key     = { seed & 0xffffffff, seed >> 32 }
 *   counter = { block & 0xffffffff, block >> 32, stream, domain }
 * where 'stream' is the state tensor index for initializers, and 'domain'
 * separates uses (DNRT_PHILOX_INIT for initializers).  Block b yields the
 * four 32-bit words used for elements 4b .. 4b+3.
 */
#ifndef DNRT_PHILOX_H
#define DNRT_PHILOX_H

#include <stdint.h>

#define DNRT_PHILOX_INIT 0x494e4954u /* "INIT" */

/* The four words of 'block' in stream ('seed', 'stream', 'domain'). */
void dnrt_philox_block(uint64_t seed, uint32_t stream, uint32_t domain, uint64_t block, uint32_t out[4]);
/* A 32-bit word as a float in [0, 1): top 24 bits times 2^-24. */
static inline float dnrt_u01(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

#endif
