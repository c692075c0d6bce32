/* json.h -- the small JSON reader behind the safetensors header parser.
 *
 * A cursor over a mutable buffer: strings are decoded in place (escapes,
 * \uXXXX with surrogate pairs to UTF-8) and NUL-terminated where their
 * closing quote was, so the parsed names point into the buffer.  Every
 * failure fills the error with "<path>: header: <what> at byte <n>" (with
 * the tensor and field the caller is reading first when it set them:
 * "<path>: header: tensor 'w': shape: integer too large at byte <n>") and
 * returns -1; only integers are accepted as numbers (all the header needs).
 */
#ifndef DNRT_JSON_H
#define DNRT_JSON_H

#include <stdint.h>

#include "internal.h"

typedef struct dnrt_json {
    char *p, *end;      /* cursor and end of the text */
    const char *base;   /* start, for byte positions in messages */
    long long base_pos; /* file offset of 'base' */
    const char *path;
    dnrt_error *err;
    const char *ctx_tensor, *ctx_field; /* what is being read, for messages; NULL for none */
} dnrt_json;

/* Skips JSON whitespace; returns the next character or 0 at the end. */
int dnrt_json_peek(dnrt_json *j);
/* Consumes 'c' (after whitespace) or fails with "expected 'c'". */
int dnrt_json_expect(dnrt_json *j, char c);
/* Consumes 'c' if it is next (after whitespace); returns 1 if it was. */
int dnrt_json_accept(dnrt_json *j, char c);
/* Reads a string; '*out' points to the decoded, NUL-terminated text. */
int dnrt_json_string(dnrt_json *j, char **out);
/* Reads an integer that fits int64 (no fraction or exponent); a longer one
 * fails with "integer too large". */
int dnrt_json_int(dnrt_json *j, int64_t *out);
/* Reads [int, int, ...] with at most 'max' elements into 'v'; '*n' = count. */
int dnrt_json_int_array(dnrt_json *j, int64_t *v, int max, int *n);
/* Fails at the cursor with "<path>: header: <msg> at byte <n>". */
int dnrt_json_fail(dnrt_json *j, const char *msg);

#endif
