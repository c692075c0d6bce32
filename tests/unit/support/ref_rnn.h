/* ref_rnn.h -- a naive reference of rnn_scan and rnn_scan_bwd, exactly as
 * ir/rnn_cell.h states them (cells, layouts, save slots, masks, reverse),
 * for the kernel tests: plain loops in double over concrete shapes (the
 * batch 'n' substituted for N).  The cell is rnn_cell.h's spelling
 * ("rnn_tanh", "rnn_relu", "lstm", "gru"); 'mask' may be NULL (every step
 * valid). */
#ifndef DN_REF_RNN_H
#define DN_REF_RNN_H

#include <stdint.h>

/* The forward: xg [n, T, G*H], w_hh [G*H, H], b_hh [G*H], s0 [n, S*H],
 * mask [n, T] -> y [n, T, H], s_T [n, S*H], save [n, T, K*H].  Returns 0,
 * or -1 for an unknown cell. */
int ref_rnn_scan(const char *cell, int reverse, int64_t n, int64_t T, int64_t H, const double *xg, const double *w_hh,
                 const double *b_hh, const double *s0, const double *mask, double *y, double *s_T, double *save);

/* The backward: dy [n, T, H], ds [n, S*H], save (the forward's), w_hh,
 * mask -> dxg [n, T, G*H], dhg [n, T, G*H], ds0 [n, S*H].  Returns 0, or -1
 * for an unknown cell. */
int ref_rnn_scan_bwd(const char *cell, int reverse, int64_t n, int64_t T, int64_t H, const double *dy, const double *ds,
                     const double *save, const double *w_hh, const double *mask, double *dxg, double *dhg, double *ds0);

#endif
