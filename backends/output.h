/* output.h -- the files dnnc writes, written so that a failure never leaves
 * a truncated or damaged one (output.c).
 *
 * An output (an --emit file, the header) is collected in memory (DnOutput)
 * and only then written: to a temporary name beside its destination, every
 * write and the close checked, then renamed over it.  A failure anywhere
 * removes the temporary and leaves the destination as it was.  A symbolic
 * link is followed: its target is the destination.  Existing destinations
 * that are not regular files (/dev/null, /dev/full, a terminal, a FIFO)
 * are written in place instead, never renamed over, and never waited on.
 *
 * Temporaries carry "dnnc-tmp" and the PID of the process writing them:
 * NAME.dnnc-tmp.PID beside an output NAME (the library, linked by the C
 * compiler, too), and $TMPDIR/dnnc-tmp.PID.XXXXXX.o for the object file.
 * A process that is killed cannot remove its own, so a later run removes
 * those of processes that no longer run before it makes its own.
 */
#ifndef DN_OUTPUT_H
#define DN_OUTPUT_H

#include "../ir/support.h"

/* The memory stream writes through 'data' and 'len': a DnOutput stays where
 * dn_output_open put it until it is released. */
typedef struct DnOutput {
    FILE *f;    /* write the contents here (a memory stream until staged) */
    char *data; /* what was written, once staged */
    size_t len;
    const char *path; /* the destination as named; NULL: standard output */
    char *dest;       /* where it is, symbolic links followed (dn_output_target), once staged */
    char *tmp;        /* the written temporary beside 'dest', when staged; else NULL */
} DnOutput;

/* Starts collecting an output in memory in 'o'->f.  Returns 0, or -1 with
 * errno set (out of memory). */
int dn_output_open(DnOutput *o);
/* Closes 'o'->f and, when 'path' (a link: its target) is missing or a
 * regular file, writes the contents to its temporary (dn_tmp_name);
 * 'path' NULL (standard output) or an existing non-regular file is
 * written only by the commit.
 * Returns 0, or -1 with errno set and no temporary left ('o' still needs
 * dn_output_discard). */
int dn_output_stage(DnOutput *o, const char *path);
/* Renames the staged temporary over the destination, or writes the
 * contents to standard output or in place (a FIFO without a reader fails
 * with ENXIO instead of waiting), and releases 'o'.  Returns 0, or -1 with
 * errno set, the destination as it was (written in place: what got
 * through) and no temporary left. */
int dn_output_commit(DnOutput *o);
/* dn_output_stage then dn_output_commit; releases 'o' either way.  Returns
 * 0, or -1 with errno set. */
int dn_output_write(DnOutput *o, const char *path);
/* Removes the staged temporary, if any, and releases 'o'; safe on a zeroed
 * or released 'o'. */
void dn_output_discard(DnOutput *o);

/* 1 when 'path' exists (following symbolic links) and is not a regular file. */
int dn_path_is_special(const char *path);
/* The file that writing 'path' by renaming over it must replace: the
 * target of a symbolic link when that is a regular file (/dev/stdout's
 * too: renaming over the link itself would replace it for everyone), else
 * 'path'.  Malloc'd; dies on out of memory. */
char *dn_output_target(const char *path);
/* Removes the temporaries of 'path' that dead processes left (see above),
 * then returns the name of this process's: "PATH.dnnc-tmp.PID", malloc'd
 * (dies on out of memory); the caller removes the file it makes. */
char *dn_tmp_name(const char *path);
/* Removes this user's object temporaries that dead processes left in
 * $TMPDIR (unset or empty: /tmp), then creates an empty file
 * $TMPDIR/dnnc-tmp.PID.XXXXXX'suffix' and writes its name into 'buf' ('len'
 * bytes).  Returns 0, or -1 with errno set; the caller removes the file. */
int dn_tmp_create(char *buf, size_t len, const char *suffix);
/* Writes all 'n' bytes of 'p' to 'fd', retrying short writes.  Returns 0,
 * or -1 with errno set. */
int dn_write_all(int fd, const void *p, size_t n);

#endif
