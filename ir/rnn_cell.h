/* rnn_cell.h -- the recurrent cells of rnn_scan and rnn_scan_bwd (ops.def):
 * their gate counts and the layout of the tensors the two ops share.
 *
 * One rnn_scan op is one layer in one direction of nn.RNN / nn.LSTM /
 * nn.GRU.  Its operands, for a batch item n (axis 0, N or fixed) and H the
 * hidden size:
 *   xg    [n, T, G*H]  the input projection x W_ih^T + b_ih of every step
 *                      (computed before the op, by one dense over all steps)
 *   w_hh  [G*H, H]     PyTorch's weight_hh_l<k>, gates in PyTorch's order
 *   b_hh  [G*H]        PyTorch's bias_hh_l<k> (zeros when bias=false)
 *   s0    [n, S*H]     the initial state: h (LSTM: h then c)
 *   mask  [n, T]       optional; f32, 1 where step t is part of item n's
 *                      sequence, 0 past its end (sequence_mask)
 * and its results:
 *   y     [n, T, H]    h_t at every step (0 at a masked step)
 *   s_T   [n, S*H]     the state after the last step (h, then c), which
 *                      for a masked item is the state after its last valid
 *                      step: a masked step carries the state unchanged
 *   save  [n, T, K*H]  what the backward reads; slot j of step t is
 *                      save[n, t, j*H : (j+1)*H]
 * With reverse=1 the steps run t = T-1 down to 0 (the _reverse direction
 * of a bidirectional layer); masked steps at the end then leave s0 in place
 * until the item's last valid step, as PyTorch's packed sequences do.
 *
 * Cells (hg = w_hh h_prev + b_hh, gates split in G pieces of H):
 *   rnn_tanh  G=1 S=1 K=2  h = tanh(xg + hg)
 *   rnn_relu  G=1 S=1 K=2  h = relu(xg + hg)
 *   lstm      G=4 S=2 K=7  i,f,g,o = sig, sig, tanh, sig of (xg + hg);
 *                          c = f*c_prev + i*g;  h = o*tanh(c)
 *   gru       G=3 S=1 K=5  r = sig(xg_r + hg_r); z = sig(xg_z + hg_z);
 *                          n = tanh(xg_n + r*hg_n);  h = (1-z)*n + z*h_prev
 * Save slots (every cell: slot 0 = h_prev, the h the step started from):
 *   rnn_*  1: h
 *   lstm   1: i  2: f  3: g  4: o  (activated)  5: c_prev  6: c
 *   gru    1: r  2: z  3: n  (activated)  4: hg_n (before r multiplies it)
 * At a masked step slot 0 holds the carried h and every other slot is 0.
 *
 * rnn_scan_bwd(dy [n,T,H], ds [n,S*H], save, w_hh, mask?) gives
 *   dxg   [n, T, G*H]  the gradient of xg (of the gate pre-activations)
 *   dhg   [n, T, G*H]  the gradient of hg (equal to dxg but for gru's n
 *                      gate, where it is dxg_n * r); 0 at masked steps
 *   ds0   [n, S*H]     the gradient of s0
 * so that dW_hh = sum over n, t of dhg^T h_prev (h_prev = save slot 0),
 * db_hh = sum of dhg, and the input projection's gradients follow from dxg
 * as for any dense.
 */
#ifndef DN_RNN_CELL_H
#define DN_RNN_CELL_H

#include <stdbool.h>

typedef enum DnRnnCell { DN_RNN_TANH, DN_RNN_RELU, DN_RNN_LSTM, DN_RNN_GRU } DnRnnCell;

typedef struct DnRnnCellInfo {
    const char *name; /* the cell attribute's spelling */
    DnRnnCell cell;
    int gates; /* G */
    int state; /* S */
    int saved; /* K */
} DnRnnCellInfo;

/* The cell named 'name' ("rnn_tanh", "rnn_relu", "lstm", "gru"), or NULL. */
const DnRnnCellInfo *dn_rnn_cell(const char *name);

#endif
