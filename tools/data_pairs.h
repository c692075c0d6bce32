/* data_pairs.h -- dnnrun's sequence-to-sequence data (--data pairs:FILE)
 * and its train, eval and infer commands.
 *
 * A pairs file holds one pair a line, 'source<TAB>target' (a final '\r' is
 * dropped), whose UTF-8 bytes are the tokens; an empty line is an error.
 * The model's tensors are found by name:
 *   src: i32[N, S]      source bytes, then 0 padding (a longer source is an error naming the line)
 *   src_len: i32[N]     optional: the source's length in bytes
 *   tgt_in: i32[N, T]   PAIRS_BOS, then the target bytes, then 0 padding
 *   label: i32[N, T]    train only: the target bytes, then PAIRS_EOS, then -100
 *                       (cross_entropy's ignore_index); a target longer than T - 1 is an error
 *   logits: f32[N, T, 256]  an output
 * train learns from FILE and evaluates on --test FILE2 after each epoch (it
 * is required); eval and infer read --test FILE2, or FILE without it.
 * Evaluation decodes greedily: tgt_in = [BOS, 0, ...], then T times infer
 * and put the argmax at position t into tgt_in[t + 1], stopping a row at
 * EOS; it reports the exact-match accuracy (the decoded bytes equal the
 * target) and the mean teacher-forced cross-entropy over the labelled
 * positions.  infer shows source -> decoded -> expected for --count pairs. */
#ifndef DN_DATA_PAIRS_H
#define DN_DATA_PAIRS_H

#include "dnnrun.h"

#define PAIRS_BOS    1
#define PAIRS_EOS    2
#define PAIRS_IGNORE (-100)

int pairs_train(const Opts *o);
int pairs_eval(const Opts *o);
int pairs_infer(const Opts *o);

#endif
