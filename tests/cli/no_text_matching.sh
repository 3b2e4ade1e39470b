# No code decides by the wording of a message (issue 16): nothing in the
# library or the tools compares or searches the text of an error or a
# problem (vhd_errmsg(), a record's text or message, a saved message);
# they decide by the record's code.  A scan of the sources, which must also
# catch the known forms (checked on a sample first).
. "$TOP/tests/lib.sh"
need python3 python3

cat > scan.py <<'PY'
import re, sys
call = re.compile(r'\b(strstr|strcasestr|strcmp|strncmp|strcasecmp|'
                  r'strncasecmp|memcmp|strspn|strchr|strrchr)\s*\(')
# What holds message text: the library's message, a record's text or
# message, and the names the tools gave saved messages.
# (A record's file, code, offset and values are not its text.)
text = re.compile(r'vhd_errmsg|\berrmsg\b'
                  r'|(->|\.)(text|message|first|last)\b'
                  r'(?!\s*(->|\.)\s*(file|code|offset|expected|found)\b)'
                  r'|\b(msg|m|problem|why|pmsg|damaged)\b(?!\s*(->|\.))')
bad = 0
for path in sys.argv[1:]:
    src = open(path, encoding="utf-8", errors="replace").read()
    for mt in call.finditer(src):
        # the call's arguments, up to its closing parenthesis
        depth, i = 1, mt.end()
        while i < len(src) and depth:
            depth += {"(": 1, ")": -1}.get(src[i], 0)
            i += 1
        args = src[mt.end():i - 1]
        if text.search(args):
            line = src.count("\n", 0, mt.start()) + 1
            print("%s:%d: %s(%s)" % (path, line, mt.group(1),
                                      " ".join(args.split())))
            bad += 1
sys.exit(1 if bad else 0)
PY

# The scan catches what the tree used to do.
cat > sample.c <<'C'
static int f(struct vhd_problems *p1, const char *m, const struct vhd_diag *d)
{
	if (strstr(vhd_errmsg(), "checksum")) return 1;
	if (strstr(p1->first, "cookie")) return 2;
	if (strncmp(m, "warning: ", 9) == 0) return 3;
	if (strcmp(d->text, "x") == 0) return 4;
	return strcmp(m->file, "a.vhd");   /* a file name: allowed */
}
C
python3 scan.py sample.c > found && fail "sample passed the scan"
[ "$(wc -l < found)" -eq 4 ] || fail "sample: $(cat found)"

files=$(find "$TOP/libvhd" "$TOP/vhdtool" "$TOP/nbd" "$TOP/vhdfuse" \
	-name '*.c' -o -name '*.h' | sort)
[ -n "$files" ] || fail "no sources"
# shellcheck disable=SC2086
python3 scan.py $files > found || fail "message text compared: $(cat found)"
echo ok
