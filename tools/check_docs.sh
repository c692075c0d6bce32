#!/bin/sh
# check_docs.sh -- checks that the docs and the source comments name only
# things that exist.
#
# usage (from the repository root):  sh tools/check_docs.sh DNNC DNNRUN
#
# (a) Paths.  In every Markdown file (whole text), in the comments of every
#     C source, header and .def table (/* */ and //), and in the # comments
#     of shell scripts, CMake files, Python scripts, .dnn models, .ci/run
#     and .clang-format, a word that looks like a path must name something
#     in the tree:
#       - a name with a known extension (.c .h .def .md .cmake .sh .py .txt
#         .ir .dnn .dnir), with or without folders: `ir/read.c`, `docs/ir.md`,
#         `sema.c`;
#       - a path without such an extension whose first folder is a top-level
#         folder of the tree: `tests/e2e/`, `backends/llvm`.
#     A path with a '/' is resolved against the repository root and against
#     the referring file's folder ("../x" must stay inside the repository);
#     a bare name may live in the referring file's folder or anywhere in the
#     tree.  Not checked: absolute paths and URLs, names in <...> (system
#     headers, placeholders such as <model>.h), words that continue into a
#     glob or placeholder (for `tests/unit/test_*.c` only the folder
#     `tests/unit/` is checked), and the generated or external names of the
#     allow-list below.
# (b) Flags.  In every Markdown file, each command-line flag shown after the
#     word dnnc or dnnrun in code (fenced or indented blocks, `inline code`)
#     appears in `DNNC --help` or `DNNRUN --help`; the pass of -fno-PASS,
#     --print-after=PASS and --passes=A,B must be one --help lists, the kind
#     of --emit=KIND one it mentions, and dnnrun's COMMAND one of its
#     commands.
#
# Each failure prints as FILE:LINE: message; the exit status is 1 if there
# is any, 2 on wrong usage, 0 otherwise.  POSIX sh, grep, sed and awk only.

if [ $# -ne 2 ]; then
    echo "usage: sh tools/check_docs.sh DNNC DNNRUN   (from the repository root)" >&2
    exit 2
fi
dnnc=$1
dnnrun=$2
if [ ! -f tools/check_docs.sh ]; then
    echo "check_docs: run me from the repository root" >&2
    exit 2
fi
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

# ---- the allow-list: names that are not files of the tree, with why --------
cat >"$tmp/allow" <<'EOF'
lenet.h      generated: the header `dnnc examples/lenet.dnn -o lenet.so` writes
model.h      generated: the header of a library named model.so
M.h          generated: the header of model M (backends/header.c's notation)
model.dnn    placeholder for the user's model in usage examples
file.dnir    placeholder for an IR text file in usage examples
MODEL.dnn    placeholder for the user's model in usage lines
MODEL.dnir   placeholder: the IR text of MODEL.dnn (tests/unit/test_driver.c)
m.dnn        a file name inside example locations of test graphs (tests/unit/test_backends.c)
bad.dnir     the file name in an example diagnostic (docs/ir.md)
f.dnn        a file name inside an example loc("f.dnn":L:C) (tests/fuzz/robust.h)
NAME.dnn     placeholder: a test case of tests/ir/
NAME.ir      placeholder: the expected output of a test case of tests/ir/
lenet.so     generated: the build writes examples/lenet.so (examples/examples.cmake)
prog.c       generated: the program tests/unit/test_example.c writes and compiles
dir/name.h   placeholder path in a comment of tools/dnnc.c
b.c          a dotted parameter name in docs/language.md (freeze a, b.c)
cases.txt    generated: the case list tests/gpu/prepare.sh writes for tests/gpu/run.sh
EOF

# ---- the tree: tracked and untracked-but-not-ignored files ----------------
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files --cached --others --exclude-standard >"$tmp/tree.all" || exit 2
else
    find . -type f ! -path './.git/*' ! -path './build/*' ! -path './build-*' | sed 's|^\./||' >"$tmp/tree.all"
fi
# a deleted file that git still lists is not in the tree
while IFS= read -r f; do [ -e "$f" ] && printf '%s\n' "$f"; done <"$tmp/tree.all" >"$tmp/tree"

# Files to scan: docs, C sources, tables, scripts, build files; not this
# script, whose comment shows wrong references on purpose.
grep -E '\.(md|c|h|def|sh|cmake|py|dnn)$|(^|/)CMakeLists\.txt$|^\.ci/run$|^\.clang-format$' "$tmp/tree" |
    grep -v '^tools/check_docs\.sh$' >"$tmp/scan"

# ---- (a) paths ------------------------------------------------------------
# shellcheck disable=SC2046 # file names of the tree have no spaces
awk -v treefile="$tmp/tree" -v allowfile="$tmp/allow" '
function norm(p,   n, parts, out, i, k, s) {
    n = split(p, parts, "/")
    k = 0
    for (i = 1; i <= n; i++) {
        if (parts[i] == "" || parts[i] == ".") continue
        if (parts[i] == "..") { if (k == 0) return "\001"; k--; continue }
        out[++k] = parts[i]
    }
    s = ""
    for (i = 1; i <= k; i++) s = s (i > 1 ? "/" : "") out[i]
    return s
}
function dirname(p,   i) {
    for (i = length(p); i > 0; i--) if (substr(p, i, 1) == "/") return substr(p, 1, i - 1)
    return ""
}
function basename(p,   i) {
    for (i = length(p); i > 0; i--) if (substr(p, i, 1) == "/") return substr(p, i + 1)
    return p
}
BEGIN {
    while ((getline f < treefile) > 0) {
        isfile[f] = 1
        base[basename(f)] = 1
        d = f
        while ((d = dirname(d)) != "") isdir[d] = 1
        split(f, c, "/")
        if (f ~ /\//) top[c[1]] = 1
    }
    while ((getline line < allowfile) > 0) { split(line, w, " "); allow[w[1]] = 1 }
    ext = "^(c|h|def|md|cmake|sh|py|txt|ir|dnn|dnir)$"
    bad = 0
}
FNR == 1 { inblk = 0; kind = kindof(FILENAME) }
function kindof(f) {
    if (f ~ /\.md$/) return "md"
    if (f ~ /\.(c|h|def)$/) return "c"
    return "hash"
}
# The comment text of one line of C (state: inblk, a /* */ comment open).
function ccomments(s,   out, i, j, n, c, c2) {
    if (!inblk && index(s, "/") == 0) return ""
    out = ""; i = 1; n = length(s)
    while (i <= n) {
        if (inblk) {
            j = index(substr(s, i), "*/")
            if (j == 0) return out " " substr(s, i)
            out = out " " substr(s, i, j - 1); i += j + 1; inblk = 0; continue
        }
        c = substr(s, i, 1)
        if (c == "\"" || c == "\047") {
            for (i++; i <= n; i++) {
                c2 = substr(s, i, 1)
                if (c2 == "\\") i++
                else if (c2 == c) break
            }
            i++; continue
        }
        if (c == "/") {
            c2 = substr(s, i + 1, 1)
            if (c2 == "/") return out " " substr(s, i + 2)
            if (c2 == "*") { inblk = 1; i += 2; continue }
        }
        i++
    }
    return out
}
# The # comment of a line of a shell, CMake or Python file.
function hcomment(s,   i) {
    if (substr(s, 1, 1) == "#") return substr(s, 2)
    i = match(s, /[ \t]#/)
    return i ? substr(s, RSTART + 2) : ""
}
function fail(msg) { printf "%s:%d: %s\n", FILENAME, FNR, msg; bad = 1 }
function exists(p) { return (p in isfile) || (p in isdir) }
function check(tok, prev, nx,   b, c, e, dot, r1, r2, here, glob) {
    if (tok ~ /^[\/-]/ || prev == "/") return                 # absolute, URL, flag
    if (prev == "<" && nx == ">") return                      # <stdint.h>, <model>
    sub(/\.+$/, "", tok)                                        # end of a sentence
    if (tok == "" || tok == "." || tok == "..") return
    glob = (nx ~ /[*?\[{<$]/)
    if (tok in allow || basename(tok) in allow) return
    split(norm(tok), c, "/")
    if (c[1] ~ /^build(-|$)/) return                            # build folders (.gitignore)
    b = basename(tok)
    dot = 0
    for (e = length(b); e > 1; e--) if (substr(b, e, 1) == ".") { dot = e; break }
    if (!glob && dot && substr(b, dot + 1) ~ ext && substr(b, dot - 1, 1) ~ /[A-Za-z0-9_]/) {
        here = dirname(FILENAME)
        if (tok !~ /\//) {
            if (!(b in base)) fail("no file named " tok " in the tree")
            return
        }
    } else {
        # a folder (or a file without a known extension) under a top folder
        if (tok !~ /\//) return
        split(tok, c, "/")
        if (!(c[1] in top) && c[1] != "." && c[1] != "..") return
        if (glob) { tok = dirname(tok); if (tok == "") return }
        here = dirname(FILENAME)
    }
    r1 = norm(tok)
    r2 = norm((here == "" ? "" : here "/") tok)
    if (r2 == "\001" && (r1 == "\001" || tok ~ /^\.\./)) { fail(tok " is outside the repository"); return }
    if (exists(r1) || exists(r2)) return
    fail("no " tok " in the tree")
}
{
    if (kind == "md") s = $0
    else if (kind == "c") s = ccomments($0)
    else s = hcomment($0)
    while (match(s, /[A-Za-z0-9_.\/-]+/)) {
        tok = substr(s, RSTART, RLENGTH)
        prev = RSTART > 1 ? substr(s, RSTART - 1, 1) : ""
        nx = substr(s, RSTART + RLENGTH, 1)
        check(tok, prev, nx)
        s = substr(s, RSTART + RLENGTH)
    }
}
END { exit bad }
' $(cat "$tmp/scan") || status=1

# ---- (b) flags ------------------------------------------------------------
if ! "$dnnc" --help >"$tmp/help.dnnc" 2>&1; then
    echo "check_docs: '$dnnc --help' failed" >&2
    exit 2
fi
if ! "$dnnrun" --help >"$tmp/help.dnnrun" 2>&1; then
    echo "check_docs: '$dnnrun --help' failed" >&2
    exit 2
fi
grep -E '\.md$' "$tmp/tree" >"$tmp/md"
# shellcheck disable=SC2046
awk -v hc="$tmp/help.dnnc" -v hr="$tmp/help.dnnrun" '
function load(file, prog,   line, n, i, w, inpasses, incmds) {
    inpasses = 0; incmds = 0
    while ((getline line < file) > 0) {
        help[prog] = help[prog] "\n" line " "
        if (line ~ /^(passes|stages)/) { inpasses = 1; continue }
        if (line ~ /^commands/) { incmds = 1; continue }
        if (line !~ /^  /) { inpasses = 0; incmds = 0; continue }
        split(line, w, " ")
        if (inpasses) pass[w[1]] = 1
        if (incmds) cmd[w[1]] = 1
        n = split(line, w, /[^A-Za-z0-9_-]+/)
        for (i = 1; i <= n; i++) word[prog, w[i]] = 1
    }
}
BEGIN { load(hc, "dnnc"); load(hr, "dnnrun"); bad = 0 }
FNR == 1 { fence = 0 }
function fail(msg) { printf "%s:%d: %s\n", FILENAME, FNR, msg; bad = 1 }
# Is flag "name" (e.g. --emit, -o, -fno-) shown as a flag in prog'"'"'s help?
function inhelp(prog, name,   h, i, p, c) {
    h = help[prog]
    while ((i = index(h, name)) > 0) {
        p = substr(h, i - 1, 1); c = substr(h, i + length(name), 1)
        if (p ~ /[ \n,\[]/ && (c ~ /[ =,\]]/ || c == "" || name ~ /-$/)) return 1
        h = substr(h, i + length(name))
    }
    return 0
}
function passlist(prog, flag, v,   n, i, it) {
    n = split(v, it, ",")
    for (i = 1; i <= n; i++)
        if (it[i] ~ /^[a-z][a-z0-9-]+$/ && it[i] != "all" && !(it[i] in pass))
            fail(prog " " flag ": " it[i] " is not a pass of `" prog " --help`")
}
function checkflag(prog, f,   name, v, eq) {
    sub(/^[(]/, "", f); sub(/[),.;:]+$/, "", f)
    if (f !~ /^--?[A-Za-z]/) return
    eq = index(f, "=")
    name = eq ? substr(f, 1, eq - 1) : f
    v = eq ? substr(f, eq + 1) : ""
    if (name ~ /^-fno-/) {
        if (!inhelp(prog, "-fno-")) fail(prog " " f ": no -fno- in `" prog " --help`")
        else passlist(prog, f, substr(name, 6))
        return
    }
    if (!inhelp(prog, name)) { fail(prog " " f ": " name " is not in `" prog " --help`"); return }
    if (name == "--print-after" || name == "--passes") passlist(prog, f, v)
    if (name == "--emit" && v != "" && v !~ /^[A-Z]/ && !((prog, v) in word))
        fail(prog " " f ": --help does not list the kind " v)
}
# Flags after the word dnnc or dnnrun in one piece of code.
function command(s,   prog, n, w, i, first) {
    while (match(s, /(^|[ \t\/(])dnn(c|run)([ \t]|$)/)) {
        s = substr(s, RSTART + (substr(s, RSTART, 1) ~ /[ \t\/(]/))
        prog = s ~ /^dnnrun/ ? "dnnrun" : "dnnc"
        s = substr(s, length(prog) + 1)
        i = match(s, /&&|;| \| |(^|[ \t\/(])dnn(c|run)([ \t]|$)/)
        piece = i ? substr(s, 1, RSTART - 1) : s
        s = i ? substr(s, RSTART) : ""
        if (s ~ /^(&&|;| \| )/) s = substr(s, 3)
        n = split(piece, w, /[ \t]+/)
        first = 1
        for (i = 1; i <= n; i++) {
            if (w[i] == "") continue
            if (w[i] ~ /^[(]?-/) checkflag(prog, w[i])
            else if (first && prog == "dnnrun" && w[i] ~ /^[a-z]+$/ && !(w[i] in cmd))
                fail("dnnrun " w[i] ": not a command of `dnnrun --help`")
            first = 0
        }
    }
}
/^[ \t]*(```|~~~)/ { fence = !fence; next }
{
    if (fence || $0 ~ /^(    |\t)/) { command($0); next }
    s = $0
    while ((i = index(s, "`")) > 0) {
        s = substr(s, i + 1)
        j = index(s, "`")
        if (j == 0) break
        command(substr(s, 1, j - 1))
        s = substr(s, j + 1)
    }
}
END { exit bad }
' $(cat "$tmp/md") || status=1

exit ${status:-0}
