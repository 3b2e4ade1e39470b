/* util.c - messages, size parsing and formatting shared by the commands. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "tool.h"

void
tool_err(const char *file, const char *fmt, ...)
{
	va_list ap;

	fputs("vhdtool: ", stderr);
	if (file)
		fprintf(stderr, "%s: ", file);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
tool_msg_save(struct tool_msg *m)
{
	const struct vhd_diag *d = vhd_last_error();

	snprintf(m->file, sizeof(m->file), "%s", d->file ? d->file : "");
	snprintf(m->text, sizeof(m->text), "%s", d->text);
	snprintf(m->message, sizeof(m->message), "%s", d->message);
	m->code = d->code;
}

/* The library's records name the file they are about ("'a.vhd': bad
 * cookie"): about file, the message alone follows "vhdtool: a.vhd: ";
 * about another (a parent), the whole text. */
const char *
tool_msg_text(const struct tool_msg *m, const char *file)
{
	if (file && m->file[0] && strcmp(m->file, file) == 0)
		return m->message;
	return m->text;
}

int tool_force_share_hint;

int
tool_msg_err(const char *name, const char *file, const struct tool_msg *m,
	     const char *hint, int err)
{
	const char *msg = tool_msg_text(m, file);

	if (!*msg)
		msg = strerror(err < 0 ? -err : err);
	if (err == -EBUSY && tool_force_share_hint && !hint)
		hint = "-U reads it anyway";
	if (hint)
		tool_err(name, "%s (%s)", msg, hint);
	else
		tool_err(name, "%s", msg);
	return err == -EBADMSG ? EXIT_DAMAGED : EXIT_ERROR;
}

/* -U, --force-share given: say once what it means. */
void
tool_force_share_note(const char *file)
{
	tool_err(file, "read with --force-share: if another program was "
		 "writing it, what is shown may be inconsistent");
}

int
tool_lib_err(const char *file, int err)
{
	struct tool_msg m;

	tool_msg_save(&m);
	return tool_msg_err(file, file, &m, NULL, err);
}

/* One line saying what is wrong, one pointing to --help (the usage text
 * itself is in --help): like GNU tools. */
int
tool_usage(const char *usage, const char *cmd, const char *why, ...)
{
	(void)usage;
	fprintf(stderr, "vhdtool: %s: ", cmd);
	if (why) {
		va_list ap;

		va_start(ap, why);
		vfprintf(stderr, why, ap);
		va_end(ap);
	} else {
		fputs("bad arguments", stderr);
	}
	fputc('\n', stderr);
	fprintf(stderr, "Try 'vhdtool %s --help' for more information.\n", cmd);
	return EXIT_USAGE;
}

int
tool_bad_option(const char *usage, char **argv, int ret)
{
	const char *opt = argv[optind - 1];

	if (ret == ':')
		return tool_usage(usage, argv[0], "option '%s' needs a value", opt);
	if (optopt && optopt != '?' && !(opt[0] == '-' && opt[1] == '-'))
		return tool_usage(usage, argv[0], "unknown option '-%c'", optopt);
	return tool_usage(usage, argv[0], "unknown option '%s'", opt);
}

int
parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (shift && strcmp(end, "iB") == 0)
		end += 2;
	else if (shift && (strcmp(end, "B") == 0 || strcmp(end, "b") == 0))
		end += 1;
	if (*end)
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

const char *
human_size(uint64_t n, char buf[32])
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
	int u = -1;
	uint64_t scale = 1;

	while (u < 4 && n >= scale * 1024) {
		scale *= 1024;
		u++;
	}
	if (u < 0) {
		snprintf(buf, 32, "%llu bytes", (unsigned long long)n);
		return buf;
	}
	/* An exact smaller unit reads better: "2040 GiB", not "1.99 TiB". */
	for (int e = u; e >= 0; e--) {
		uint64_t sc = (uint64_t)1 << (10 * (e + 1));
		if (n % sc == 0 && n / sc < 100000) {
			snprintf(buf, 32, "%llu %s", (unsigned long long)(n / sc),
				 unit[e]);
			return buf;
		}
	}
	snprintf(buf, 32, "%.2f %s", (double)n / (double)scale, unit[u]);
	return buf;
}

const char *
uuid_str(const uint8_t id[16], char buf[37])
{
	char *p = buf;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		snprintf(p, 3, "%02x", id[i]);
		p += 2;
	}
	*p = '\0';
	return buf;
}

const char *
vhd_time_str(uint32_t t, char buf[32])
{
	/* 946684800 = 2000-01-01T00:00:00Z in Unix time (VHD spec,
	 * "Time Stamp"). */
	time_t u = (time_t)t + 946684800;
	struct tm tm;

	if (!gmtime_r(&u, &tm) || !strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, 32, "%u", t);
	return buf;
}

const char *
creator_str(const char *field, char buf[32])
{
	char *p = buf;

	for (int i = 0; i < 4 && field[i]; i++) {
		unsigned char c = (unsigned char)field[i];
		if (c >= 0x20 && c < 0x7f)
			*p++ = (char)c;
		else
			p += snprintf(p, 5, "\\x%02x", c);
	}
	*p = '\0';
	/* Keep the trailing spaces out of sight: "vpc " reads as "vpc". */
	while (p > buf && p[-1] == ' ')
		*--p = '\0';
	return buf;
}

/* Length of a valid UTF-8 sequence at s, or 0. */
static int
utf8_len(const unsigned char *s)
{
	int n;
	uint32_t c;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) { n = 2; c = s[0] & 0x1f; }
	else if ((s[0] & 0xf0) == 0xe0) { n = 3; c = s[0] & 0x0f; }
	else if ((s[0] & 0xf8) == 0xf0) { n = 4; c = s[0] & 0x07; }
	else return 0;
	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) ||
	    (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return n;
}

void
json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	while (*p) {
		int n;

		if (*p == '"' || *p == '\\') {
			fputc('\\', f);
			fputc(*p++, f);
		} else if (*p == '\n') {
			fputs("\\n", f);
			p++;
		} else if (*p == '\t') {
			fputs("\\t", f);
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p++);
		} else if ((n = utf8_len(p)) > 0) {
			fwrite(p, 1, (size_t)n, f);
			p += n;
		} else {
			/* Not UTF-8: keep the byte visible as a Latin-1 code
			 * point rather than emit invalid JSON. */
			fprintf(f, "\\u%04x", *p++);
		}
	}
	fputc('"', f);
}

int
tool_need_vhd(const char *file)
{
	int r = vhd_probe(file);

	if (r < 0)
		return tool_lib_err(file, r);
	if (r == 0) {
		const char *fmt = foreign_format_file(file);
		if (fmt)
			return tool_foreign_err(file, file, fmt);
		tool_err(file, "not a VHD image (no VHD footer at its end or "
			 "at offset 0)");
		return EXIT_DAMAGED;
	}
	return EXIT_OK;
}

int
tool_one_file(const char *usage, int argc, char **argv, const char **file)
{
	if (argc - optind != 1)
		return tool_usage(usage, argv[0], argc - optind < 1 ?
				  "missing FILE" : "too many arguments");
	*file = argv[optind];
	return EXIT_OK;
}

int
tool_progress_opt(const char *usage, char **argv, const char *arg, int *mode)
{
	if ((*mode = progress_mode(arg)) < 0)
		return tool_usage(usage, argv[0], "bad --progress value '%s' "
				  "(use never, auto or always)", arg);
	return EXIT_OK;
}

const char *
foreign_format(const void *buf, size_t n)
{
	const unsigned char *p = buf;

	/* Magic numbers (VHDX, "vhdxfile" at 0, is read by the library):
	 * qcow and qcow2 "QFI\xfb", QED "QED\0", VMDK sparse extent "KDMV"
	 * (hosted) or "COWD" (ESX), a VMDK text descriptor, VDI 0xbeda107f
	 * (little-endian) at offset 64. */
	if (n >= 4 && memcmp(p, "QFI\xfb", 4) == 0)
		return "qcow2";
	if (n >= 4 && memcmp(p, "QED\0", 4) == 0)
		return "QED";
	if (n >= 4 && (memcmp(p, "KDMV", 4) == 0 || memcmp(p, "COWD", 4) == 0))
		return "VMDK";
	if (n >= 21 && memcmp(p, "# Disk DescriptorFile", 21) == 0)
		return "VMDK";
	if (n >= 68 && p[64] == 0x7f && p[65] == 0x10 && p[66] == 0xda &&
	    p[67] == 0xbe)
		return "VDI";
	return NULL;
}

const char *
foreign_format_file(const char *path)
{
	unsigned char buf[512];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return NULL;
	n = pread(fd, buf, sizeof(buf), 0);
	close(fd);
	return n > 0 ? foreign_format(buf, (size_t)n) : NULL;
}

int
tool_foreign_err(const char *file, const char *path, const char *fmt)
{
	tool_err(file, "is a %s image, which vhdtool does not read yet; convert "
		 "it with qemu-img convert -O vpc %s OUT.vhd (--from raw copies "
		 "its bytes as a raw disk)", fmt, path ? path : "FILE");
	return EXIT_ERROR;
}

void
tool_inputs_add(struct tool_inputs *in, const char *path, int fd,
		const char *what)
{
	struct stat st;

	if (in->n >= TOOL_INPUTS_MAX)
		return;
	if ((path ? stat(path, &st) : fstat(fd, &st)) < 0)
		return;
	in->dev[in->n] = (unsigned long long)st.st_dev;
	in->ino[in->n] = (unsigned long long)st.st_ino;
	snprintf(in->what[in->n], sizeof(in->what[0]), "%s", what);
	in->n++;
}

void
tool_inputs_add_chain(struct tool_inputs *in, struct vhd *v, const char *name)
{
	char what[160];
	const char *child = name;
	int depth = 0;

	for (struct vhd *p = v; p && depth < TOOL_INPUTS_MAX; p = vhd_parent(p)) {
		if (depth == 0)
			snprintf(what, sizeof(what), "%s", name);
		else if (depth == 1)
			snprintf(what, sizeof(what), "the parent of %s", name);
		else
			snprintf(what, sizeof(what), "the parent of %s (in the "
				 "chain of %s)", child, name);
		tool_inputs_add(in, vhd_path(p), -1, what);
		child = vhd_path(p);
		depth++;
	}
}

int
tool_check_output(const struct tool_inputs *in, const char *out, int fd,
		  const char *name)
{
	struct stat st;

	if ((out ? stat(out, &st) : fstat(fd, &st)) < 0)
		return EXIT_OK;         /* does not exist: not an input */
	for (int i = 0; i < in->n; i++) {
		if (in->dev[i] == (unsigned long long)st.st_dev &&
		    in->ino[i] == (unsigned long long)st.st_ino) {
			tool_err(name, "is %s, which this command reads; an "
				 "output cannot be one of its inputs (-f does "
				 "not change that)", in->what[i]);
			return EXIT_ERROR;
		}
	}
	return EXIT_OK;
}

int
tool_nonzero_runs(const char *buf, size_t n, uint64_t off, size_t granule,
		  int (*fn)(void *arg, const char *p, size_t len, uint64_t at),
		  void *arg)
{
	return vhd_nonzero_runs(buf, n, off, granule, fn, arg);
}

volatile sig_atomic_t tool_interrupted;

static void
on_signal(int sig)
{
	(void)sig;
	tool_interrupted = 1;
}

void
tool_catch_signals(int hup)
{
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (hup)
		signal(SIGHUP, on_signal);
}
