/* data_text.h -- dnnrun's byte-level language-modelling data (--data
 * text:FILE[,FILE...]) and its train and eval commands.
 *
 * The model takes one i32[N, T] input (tokens = bytes 0..255) and returns
 * logits f32[N, T, V] first, V >= 256; its train section takes one
 * i32[N, T] label (the next bytes).  Each file is split by position: its
 * last 10% (floor(len / 10) bytes) is held out, the rest is training text.
 * Training draws windows of T + 1 bytes at seeded random offsets of the
 * training parts (inputs = the first T bytes, labels = the last T); an
 * epoch is max(1, train_bytes / T) windows.  Evaluation runs the held-out
 * parts as consecutive windows starting every T bytes (each byte is
 * predicted once) and reports the mean cross-entropy and bits per
 * character (= loss / ln 2).  --limit K caps the windows of each split. */
#ifndef DN_DATA_TEXT_H
#define DN_DATA_TEXT_H

#include "dnnrun.h"

#define TEXT_HELD_OUT_DIV 10 /* the last len / 10 bytes of each file are held out */

int text_train(const Opts *o);
int text_eval(const Opts *o);

#endif
